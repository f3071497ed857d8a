// Starting our own server for tests that kill it, slow it down or read its access log.
import { spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { paths } from './paths';

export interface Served {
  url: string;
  log: string;
  proc: ChildProcess;
}

let next = 3300;

export async function startServer(opts: { models?: string; site?: string; throttle?: number; port?: number; log?: string } = {}): Promise<Served> {
  const port = opts.port ?? next++;
  const log = opts.log ?? path.join(paths.e2e, `server-${port}-${Date.now()}.log`);
  const out = fs.openSync(log, 'a');
  const args = ['serve', '--addr', `127.0.0.1:${port}`, '--site-root', opts.site ?? paths.site, '--models-dir', opts.models ?? paths.models];
  if (opts.throttle) args.push('--throttle', String(opts.throttle));
  const proc = spawn(paths.server, args, { stdio: ['ignore', out, out] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (fs.readFileSync(log, 'utf8').includes('serving on')) return { url, log, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on ${port} did not start: ${fs.readFileSync(log, 'utf8')}`);
}

export async function stopServer(s: Served) {
  if (s.proc.exitCode !== null) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGKILL');
  await exited;
}

export interface AccessLine {
  method: string;
  path: string;
  range: string;
  status: number;
  bytes: number;
  outcome: string;
}

export function accessLines(log: string): AccessLine[] {
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('access '))
    .map((l) => {
      const m = l.match(/^access (\S+) (\S+) range=(\S+) status=(\d+) bytes=(\d+)(?: (\w+))?/);
      if (!m) throw new Error(`bad access line: ${l}`);
      return { method: m[1], path: m[2], range: m[3], status: Number(m[4]), bytes: Number(m[5]), outcome: m[6] ?? 'complete' };
    });
}

/** Range requests for model shards that the server answered in full. */
export function completedShardRanges(log: string): string[] {
  return accessLines(log)
    .filter((l) => l.path.includes('/shards/') && l.status === 206 && l.outcome === 'complete')
    .map((l) => l.range);
}
