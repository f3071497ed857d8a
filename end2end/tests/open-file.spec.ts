// A model from the user's own disk (issue 14, item 1): picked or dropped, read in chunks in the
// worker, stored like a download, never uploaded; it chats, and again offline after a reload.
import { test, expect, Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { paths } from './paths';
import { accessLines, startServer, stopServer } from './server';
import { hydrated, lastReplyIds, send, setSystemPrompt, storedKeys, waitReady } from './app';

const smolFile = path.join(paths.cache, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');

async function controlled(page: Page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller?.state ?? 'none'), { timeout: 60_000 }).toBe('activated');
}

test('a GGUF opened from disk is stored like a download, chats, and chats again offline after a reload', async ({ page, context }) => {
  test.setTimeout(900_000);
  const smol = JSON.parse(fs.readFileSync(path.join(paths.root, 'engine/tests/reference/smollm2/reference.json'), 'utf8'));
  const greedy: number[] = smol.f32_reference.greedy.ids;
  const n = 2;
  const s = await startServer();
  const bodies: number[] = [];
  page.on('request', (r) => bodies.push(r.postDataBuffer()?.length ?? 0));
  try {
    await page.goto(`${s.url}/?temperature=0&max_tokens=${n}`);
    await controlled(page);
    await hydrated(page);
    await page.getByTestId('open-model-file').setInputFiles(smolFile);
    await expect(page.getByTestId('download-progress')).toContainText('nothing is uploaded', { timeout: 60_000 });
    await waitReady(page, 300_000);
    await expect(page.getByTestId('model-status')).toContainText('local-smollm2-135m-instruct.q4_1 ready');
    await send(page, smol.chat.messages[0].content);
    expect(await lastReplyIds(page, 500_000)).toEqual(greedy.slice(0, n));
    // Stored in chunks under its own id; listed with its size.
    const size = fs.statSync(smolFile).size;
    const keys = (await storedKeys(page, 'eddy', 'chunks')).filter((k) => k.startsWith('local-smollm2-135m-instruct.q4_1/'));
    expect(keys.length).toBe(Math.ceil(size / (8 << 20)));
    await expect(page.getByTestId('cached-model').filter({ hasText: 'SmolLM2' })).toHaveAttribute('data-complete', 'true');
    // Nothing was uploaded: no request carried a body, none asked the server for this model.
    expect(bodies.filter((b) => b > 0)).toEqual([]);
    expect(accessLines(s.log).filter((l) => l.path.includes('local-'))).toEqual([]);

    await context.setOffline(true);
    await page.reload();
    await waitReady(page, 300_000);
    await send(page, smol.chat.messages[0].content);
    expect(await lastReplyIds(page, 500_000)).toEqual(greedy.slice(0, n));
  } finally {
    await context.setOffline(false);
    await stopServer(s);
  }
});

test('a dropped file that is not a model gets a clear error and leaves nothing stored; a dropped GGUF loads', async ({ page }) => {
  await page.goto('/?temperature=0&max_tokens=3');
  await hydrated(page);
  const drop = async (name: string, bytes: Buffer) => {
    const transfer = await page.evaluateHandle(
      ([n, b64]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], n));
        return dt;
      },
      [name, bytes.toString('base64')] as const,
    );
    await page.dispatchEvent('.app', 'drop', { dataTransfer: transfer });
  };
  await drop('garbage.gguf', Buffer.from('this is not a model file at all, only text'));
  await expect(page.getByTestId('model-status')).toContainText('not a GGUF file', { timeout: 60_000 });
  await expect(page.getByTestId('model-status')).toContainText('garbage.gguf');
  expect(await storedKeys(page, 'eddy', 'chunks')).toEqual([]);
  expect(await storedKeys(page, 'eddy', 'models')).toEqual([]);

  await drop('tiny.gguf', fs.readFileSync(path.join(paths.fixtures, 'models/tiny-lfm2/tiny-lfm2-f32.gguf')));
  await waitReady(page);
  await expect(page.getByTestId('model-status')).toContainText('local-tiny ready');
  await send(page, 'hello');
  expect((await lastReplyIds(page)).length).toBeGreaterThan(0);
});

test('a Hugging Face folder opened from disk is stored, chats with the reference tokens, and survives a reload; a folder without a tokenizer is refused', async ({ page }) => {
  const moe = JSON.parse(fs.readFileSync(path.join(paths.fixtures, 'models/tiny-lfm2-moe/reference.json'), 'utf8'));
  const chat = moe.prompts.find((p: any) => p.name === 'chat');
  const [system, user] = chat.messages;
  // A folder missing its tokenizer: a clear error, nothing stored.
  const broken = path.join(paths.e2e, 'folder-without-tokenizer');
  fs.rmSync(broken, { recursive: true, force: true });
  fs.mkdirSync(broken, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(paths.fixtures, 'models/tiny-lfm2-moe', f), path.join(broken, f));
  await page.goto('/?temperature=0&max_tokens=20');
  await hydrated(page);
  await page.getByTestId('open-model-folder').setInputFiles(broken);
  await expect(page.getByTestId('model-status')).toContainText('has no tokenizer.json', { timeout: 60_000 });
  expect(await storedKeys(page, 'eddy', 'chunks')).toEqual([]);
  expect(await storedKeys(page, 'eddy', 'models')).toEqual([]);

  // The real folder (with other files in it, which are left alone).
  await page.getByTestId('open-model-folder').setInputFiles(path.join(paths.fixtures, 'models/tiny-lfm2-moe'));
  await waitReady(page);
  await expect(page.getByTestId('model-status')).toContainText('local-tiny-lfm2-moe ready');
  const stored = await storedKeys(page, 'eddy', 'chunks');
  const sizes = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
    .map((f) => Math.ceil(fs.statSync(path.join(paths.fixtures, 'models/tiny-lfm2-moe', f)).size / (8 << 20)));
  expect(stored.length).toBe(sizes.reduce((a, b) => a + b, 0));
  await setSystemPrompt(page, system.content);
  await send(page, user.content);
  expect(await lastReplyIds(page)).toEqual(chat.greedy_ids);

  await page.reload();
  await waitReady(page);
  await expect(page.getByTestId('model-status')).toContainText('local-tiny-lfm2-moe ready');
});
