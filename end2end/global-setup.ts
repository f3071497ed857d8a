// Prepares the models the tests serve: imports them with `server import` into target/e2e
// (fresh every run), plus broken variants for the error tests.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { paths } from './tests/paths';

function importModel(models: string, source: string, id: string, chunk: number) {
  execFileSync(paths.server, ['import', source, '--models-dir', models, '--id', id, '--chunk-size', String(chunk)], { stdio: 'pipe' });
}

export default async function globalSetup() {
  fs.rmSync(paths.e2e, { recursive: true, force: true });
  const { models, corrupt, fake } = paths;
  importModel(models, path.join(paths.fixtures, 'models/tiny-lfm2/tiny-lfm2-f32.gguf'), 'tiny-lfm2', 65536);
  importModel(models, path.join(paths.fixtures, 'models/tiny-lfm2-moe'), 'tiny-lfm2-moe', 65536);
  importModel(models, path.join(paths.cache, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'), 'smollm2-135m-instruct', 8 << 20);
  importModel(models, path.join(paths.cache, 'models/gemma-3-270m-q4_k_m.gguf'), 'gemma-3-270m', 16 << 20);
  // A model over 1 GiB (SwiftShader's largest buffer), in a folder of its own.
  const huge = path.join(paths.cache, 'models/lfm2-2.6b-q4_0-random.gguf');
  if (fs.existsSync(huge)) importModel(paths.big, huge, 'lfm2-2.6b-random', 16 << 20);

  // A copy of tiny-lfm2 whose shard is corrupted on disk after import.
  importModel(corrupt, path.join(paths.fixtures, 'models/tiny-lfm2/tiny-lfm2-f32.gguf'), 'tiny-lfm2', 65536);
  const manifest = JSON.parse(fs.readFileSync(path.join(corrupt, 'tiny-lfm2/manifest.json'), 'utf8'));
  const shard = path.join(corrupt, 'tiny-lfm2', manifest.files[0].shard);
  const bytes = fs.readFileSync(shard);
  fs.rmSync(shard); // imports copy shards, but never write through one
  for (let i = 0; i < 64; i++) bytes[5 * 65536 + 1000 + i] ^= 0xff; // inside chunk 5
  fs.writeFileSync(shard, bytes);

  // Models whose manifests ask for more than the browser or the GPU can give.
  importModel(fake, path.join(paths.fixtures, 'models/tiny-lfm2/tiny-lfm2-f32.gguf'), 'huge', 65536);
  importModel(fake, path.join(paths.fixtures, 'models/tiny-lfm2/tiny-lfm2-f32.gguf'), 'wide', 65536);
  const edit = (id: string, f: (m: any) => void) => {
    const p = path.join(fake, id, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(p, 'utf8'));
    f(m);
    fs.writeFileSync(p, JSON.stringify(m, null, 1));
  };
  // A well-formed manifest (the client validates them) of a 2 PB file in two 1 PB chunks.
  edit('huge', (m) => {
    const c = m.files[0].chunks;
    m.chunk_size = 1e15;
    m.files[0].chunks = [{ offset: 0, length: 1e15, sha256: c[0].sha256 }, { offset: 1e15, length: 1e15, sha256: c[1].sha256 }];
    m.files[0].size = m.total_bytes = 2e15;
  });
  edit('wide', (m) => { m.requirements.min_binding_bytes = 64 * 2 ** 40; });
  // The catalog lists the size the huge manifest claims.
  const index = path.join(fake, 'index.json');
  const catalog = JSON.parse(fs.readFileSync(index, 'utf8'));
  for (const e of catalog.models) if (e.id === 'huge') e.total_bytes = 2e15;
  fs.writeFileSync(index, JSON.stringify(catalog, null, 1));
}
