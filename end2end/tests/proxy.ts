// A misbehaving network between the browser and a real server, for the download tests: it
// forwards everything, and for the shard requests a test picks it can cut the connection
// mid-body, send a short body, or answer a Range request with the whole file (200). The faults
// live here, in the tests, not in the server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'drop' | 'short' | 'ignore-range';

export interface ProxiedRequest {
  path: string;
  range: string;
  fault: Fault | null;
}

export interface Proxy {
  url: string;
  requests: ProxiedRequest[];
  /** Which fault a shard request gets; `n` counts earlier requests for the same range. */
  fault: (r: { path: string; range: string; n: number }) => Fault | null;
  /** Replaces the body of a manifest.json answer (null: pass it on). */
  manifest: (json: any) => any | null;
  close(): Promise<void>;
}

export async function startProxy(upstream: string): Promise<Proxy> {
  const up = new URL(upstream);
  const proxy: Proxy = { url: '', requests: [], fault: () => null, manifest: () => null, close: async () => {} };
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const range = String(req.headers.range ?? '-');
    const n = proxy.requests.filter((r) => r.path === path && r.range === range).length;
    const fault = path.includes('/shards/') ? proxy.fault({ path, range, n }) : null;
    proxy.requests.push({ path, range, fault });
    const headers = { ...req.headers, host: up.host };
    if (fault === 'ignore-range') delete headers.range;
    if (path.endsWith('/manifest.json')) {
      // Fresh answers only, so that a rewritten body is what the client sees.
      delete headers['if-none-match'];
      delete headers['if-modified-since'];
    }
    const forward = http.request({ host: up.hostname, port: up.port, path, method: req.method, headers }, (answer) => {
      if (path.endsWith('/manifest.json') && answer.statusCode === 200) {
        const parts: Buffer[] = [];
        answer.on('data', (b: Buffer) => parts.push(b));
        answer.on('end', () => {
          const replaced = proxy.manifest(JSON.parse(Buffer.concat(parts).toString('utf8')));
          const body = replaced === null ? Buffer.concat(parts) : Buffer.from(JSON.stringify(replaced));
          const h = { ...answer.headers, 'content-length': String(body.length) };
          delete h.etag;
          res.writeHead(200, h);
          res.end(body);
        });
        return;
      }
      if (fault !== 'drop' && fault !== 'short') {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const parts: Buffer[] = [];
      answer.on('data', (b: Buffer) => parts.push(b));
      answer.on('end', () => {
        const body = Buffer.concat(parts);
        const half = body.subarray(0, Math.floor(body.length / 2));
        if (fault === 'short') {
          // A complete, well-formed answer that is simply shorter than asked for.
          res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'content-length': String(half.length) });
          res.end(half);
        } else {
          // The promised length, half the bytes, then the connection goes away.
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.write(half, () => res.socket?.destroy());
        }
      });
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return proxy;
}

/** Requests for shard bytes `range` that the proxy let through unharmed. */
export function cleanRanges(p: Proxy): string[] {
  return p.requests.filter((r) => r.path.includes('/shards/') && r.fault === null).map((r) => r.range);
}
