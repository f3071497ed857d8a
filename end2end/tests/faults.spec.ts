// Downloads fail safe (issue 12, item 5): a connection cut mid-chunk, a short body, a Range
// request answered 200, a malformed manifest, a tab closed mid-write and the storage quota
// running out half-way each end in a retry or in a clear error with Retry, never in a stored
// byte that was not verified, and Retry resumes from what was kept.
import { chromium, test, expect, Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { paths } from './paths';
import { cleanRanges, startProxy } from './proxy';
import { completedShardRanges, startServer, stopServer } from './server';
import { lastReplyIds, send, storedKeys, waitReady } from './app';

const reference = JSON.parse(fs.readFileSync(path.join(paths.fixtures, 'models/tiny-lfm2/reference.json'), 'utf8'));
const chat = reference.prompts.find((p: any) => p.name === 'chat');
const [system, user] = chat.messages;
const manifest = JSON.parse(fs.readFileSync(path.join(paths.models, 'tiny-lfm2/manifest.json'), 'utf8'));
const chunks: any[] = manifest.files[0].chunks;
const rangeOf = (c: any) => `bytes=${c.offset}-${c.offset + c.length - 1}`;
const chunkKeys = chunks.map((c) => `tiny-lfm2/${c.sha256}`).sort();
const chatUrl = (base: string) => `${base}/?model=tiny-lfm2&temperature=0&max_tokens=20&system=${encodeURIComponent(system.content)}`;

/** The reference chat answers with the reference tokens: every stored byte is right. */
async function answersLikeTheReference(page: Page) {
  await waitReady(page);
  await expect(page.getByTestId('retry')).toBeHidden();
  await send(page, user.content);
  expect(await lastReplyIds(page)).toEqual(chat.greedy_ids);
}

test('a connection cut mid-chunk and a short body are retried, and the model arrives byte-exact', async ({ page }) => {
  const s = await startServer();
  const p = await startProxy(s.url);
  p.fault = ({ range, n }) => (n > 0 ? null : range === rangeOf(chunks[3]) ? 'drop' : range === rangeOf(chunks[6]) ? 'short' : null);
  try {
    await page.goto(chatUrl(p.url));
    await answersLikeTheReference(page);
    expect(p.requests.filter((r) => r.range === rangeOf(chunks[3])).map((r) => r.fault)).toEqual(['drop', null]);
    expect(p.requests.filter((r) => r.range === rangeOf(chunks[6])).map((r) => r.fault)).toEqual(['short', null]);
    expect(cleanRanges(p).sort()).toEqual(chunks.map(rangeOf).sort());
    expect((await storedKeys(page, 'eddy', 'chunks')).sort()).toEqual(chunkKeys);
  } finally {
    await p.close();
    await stopServer(s);
  }
});

test('a connection that keeps failing is retried a bounded number of times, then Retry resumes', async ({ page }) => {
  const s = await startServer();
  const p = await startProxy(s.url);
  const bad = rangeOf(chunks[5]);
  p.fault = ({ range }) => (range === bad ? 'drop' : null);
  try {
    await page.goto(chatUrl(p.url));
    await expect(page.getByTestId('model-status')).toContainText('7 times for the chunk at byte', { timeout: 90_000 });
    await expect(page.getByTestId('model-status')).toContainText('press Retry');
    expect(p.requests.filter((r) => r.range === bad).length).toBe(7);
    const kept = await storedKeys(page, 'eddy', 'chunks');
    expect(kept).not.toContain(`tiny-lfm2/${chunks[5].sha256}`);
    expect(kept.length).toBeGreaterThan(0);
    // The network heals; Retry fetches only what is missing.
    p.fault = () => null;
    const before = p.requests.length;
    await page.getByTestId('retry').click();
    await answersLikeTheReference(page);
    const again = p.requests.slice(before).filter((r) => r.path.includes('/shards/')).map((r) => r.range);
    expect(again).toContain(bad);
    expect(again.length).toBe(chunks.length - kept.length);
  } finally {
    await p.close();
    await stopServer(s);
  }
});

test('a Range request answered 200 and a malformed manifest are refused, and nothing is stored', async ({ page }) => {
  const s = await startServer();
  const p = await startProxy(s.url);
  try {
    p.fault = () => 'ignore-range';
    await page.goto(`${p.url}/?model=tiny-lfm2`);
    await expect(page.getByTestId('model-status')).toContainText('ignored the range request', { timeout: 30_000 });
    await expect(page.getByTestId('retry')).toBeVisible();
    expect(await storedKeys(page, 'eddy', 'chunks')).toEqual([]);

    // A manifest whose chunks leave a gap: refused before any shard request.
    p.fault = () => null;
    p.manifest = (m) => {
      m.files[0].chunks.splice(4, 1);
      return m;
    };
    const before = p.requests.length;
    await page.getByTestId('retry').click();
    await expect(page.getByTestId('model-status')).toContainText('manifest of tiny-lfm2 is refused', { timeout: 30_000 });
    await expect(page.getByTestId('model-status')).toContainText('not where chunk 3 ended');
    expect(p.requests.slice(before).filter((r) => r.path.includes('/shards/'))).toEqual([]);
    expect(await storedKeys(page, 'eddy', 'chunks')).toEqual([]);
  } finally {
    await p.close();
    await stopServer(s);
  }
});

test('a tab closed mid-download leaves only verified chunks, and the next tab resumes', async ({ context }) => {
  const s = await startServer({ throttle: 150_000 });
  try {
    let page = await context.newPage();
    await page.goto(chatUrl(s.url));
    await expect.poll(() => completedShardRanges(s.log).length, { timeout: 60_000 }).toBeGreaterThanOrEqual(4);
    await page.close();
    const before = completedShardRanges(s.log);
    expect(before.length).toBeLessThan(chunks.length);
    page = await context.newPage();
    await page.goto(chatUrl(s.url));
    await answersLikeTheReference(page);
    const after = completedShardRanges(s.log).slice(before.length);
    expect(after.length).toBeLessThan(chunks.length);
    expect(new Set([...before, ...after]).size).toBe(chunks.length);
    expect((await storedKeys(page, 'eddy', 'chunks')).sort()).toEqual(chunkKeys);
  } finally {
    await stopServer(s);
  }
});

test('the storage quota running out half-way stops with a clear error, and Retry finishes once there is room', async () => {
  // The browser's real quota, through the DevTools protocol. Chromium enforces an override only
  // in a profile on disk and only when set before the site first touches its storage; the
  // estimate the app checks before downloading still shows the disk's room, so the quota runs
  // out half-way, as when another site fills the disk. No service worker, so that only the
  // model's chunks count.
  const profile = fs.mkdtempSync(path.join(paths.e2e, 'profile-quota-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.EDDY_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--enable-unsafe-webgpu'],
    serviceWorkers: 'block',
  });
  const s = await startServer();
  try {
    const page = await browser.newPage();
    const cdp = await browser.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: s.url, quotaSize: Math.floor(manifest.total_bytes / 2) });
    await page.goto(chatUrl(s.url));
    await expect(page.getByTestId('model-status')).toContainText("the browser's storage for this site is full", { timeout: 60_000 });
    await expect(page.getByTestId('retry')).toBeVisible();
    const kept = await storedKeys(page, 'eddy', 'chunks');
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(chunks.length);
    expect(chunkKeys).toEqual(expect.arrayContaining(kept));
    // Room again (the user deleted something): Retry fetches the rest.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: s.url });
    const before = completedShardRanges(s.log).length;
    await page.getByTestId('retry').click();
    await answersLikeTheReference(page);
    expect(completedShardRanges(s.log).length - before).toBe(chunks.length - kept.length);
    expect((await storedKeys(page, 'eddy', 'chunks')).sort()).toEqual(chunkKeys);
  } finally {
    await stopServer(s);
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});
