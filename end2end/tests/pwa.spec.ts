// The installable app (issue: PWA): the app shell from the service worker, models from
// IndexedDB, offline; updates; installability; no shard in Cache Storage.
import { test, expect, chromium, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { paths } from './paths';
import { startServer, stopServer } from './server';
import { lastReplyIds, send, setSystemPrompt, waitReady } from './app';

const reference = JSON.parse(fs.readFileSync(path.join(paths.fixtures, 'models/tiny-lfm2/reference.json'), 'utf8'));
const chat = reference.prompts.find((p: any) => p.name === 'chat');
const [system, user] = chat.messages;

/** Waits until the service worker has precached the shell and controls the page. */
async function controlled(page: Page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller?.state ?? 'none'), { timeout: 60_000 }).toBe('activated');
}

/** Every URL in Cache Storage, by cache name. */
async function cacheContents(page: Page): Promise<Record<string, string[]>> {
  return page.evaluate(async () => {
    const out: Record<string, string[]> = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      out[name] = (await cache.keys()).map((r) => new URL(r.url).pathname);
    }
    return out;
  });
}

function shellVersion(site: string): string {
  const m = fs.readFileSync(path.join(site, 'sw.js'), 'utf8').match(/const VERSION = '([0-9a-f]+)'/);
  if (!m) throw new Error('sw.js has no version: was the site built with scripts/pwa-assets.sh?');
  return m[1];
}

test('offline: the app opens from the service worker, loads the model from IndexedDB and chats', async ({ page, context }) => {
  await page.goto('/?model=tiny-lfm2&temperature=0&max_tokens=20');
  await waitReady(page);
  await controlled(page);
  await expect(page.getByTestId('offline')).toBeHidden();

  await context.setOffline(true);
  await expect(page.getByTestId('offline')).toBeVisible();
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Eddy' })).toBeVisible();
  await expect(page.getByTestId('offline')).toBeVisible();
  await waitReady(page);

  // Models not downloaded are listed as unavailable, and cannot be chosen; no error is shown.
  const picker = page.getByTestId('model-picker');
  await expect(picker.locator('option[value="tiny-lfm2-moe"]')).toContainText('unavailable offline');
  await expect(picker.locator('option[value="tiny-lfm2-moe"]')).toBeDisabled();
  await expect(picker.locator('option[value="tiny-lfm2"]')).toContainText('downloaded');
  await expect(picker.locator('option[value="tiny-lfm2"]')).toBeEnabled();
  await expect(page.getByTestId('notice')).toHaveCount(0);

  await setSystemPrompt(page, system.content);
  await send(page, user.content);
  expect(await lastReplyIds(page)).toEqual(chat.greedy_ids);

  // Shards live once, in IndexedDB: Cache Storage holds the shell and nothing under /models/.
  const cached = await cacheContents(page);
  const urls = Object.values(cached).flat();
  expect(urls).toContain('/pkg/eddy.wasm');
  expect(urls).toContain('/');
  expect(urls.filter((u) => u.startsWith('/models/'))).toEqual([]);

  // Back online: the indicator goes away and the catalog returns.
  await context.setOffline(false);
  await expect(page.getByTestId('offline')).toBeHidden();
  await expect(picker.locator('option[value="tiny-lfm2-moe"]')).toContainText('not downloaded');
});

test('a new release is offered after it installs, and the old cache is removed', async ({ page }) => {
  const site = path.join(paths.e2e, `site-update-${Date.now()}`);
  fs.cpSync(paths.site, site, { recursive: true });
  const server = await startServer({ site });
  try {
    await page.goto(`${server.url}/`);
    await controlled(page);
    const first = shellVersion(site);
    expect(Object.keys(await cacheContents(page))).toEqual([`eddy-shell-${first}`]);
    expect(await page.evaluate(() => getComputedStyle(document.body).getPropertyValue('--second-build'))).toBe('');

    // A second build: a changed stylesheet, and the service worker regenerated from it.
    fs.appendFileSync(path.join(site, 'pkg/eddy.css'), '\nbody { --second-build: yes; }\n');
    execFileSync(path.join(paths.root, 'scripts/pwa-assets.sh'), [site], { stdio: 'pipe' });
    const second = shellVersion(site);
    expect(second).not.toBe(first);

    // Until the user agrees, the page keeps running the release it started with.
    await page.reload();
    await expect(page.getByTestId('update-ready')).toBeVisible({ timeout: 60_000 });
    expect(await page.evaluate(() => getComputedStyle(document.body).getPropertyValue('--second-build'))).toBe('');

    const reloaded = page.waitForEvent('framenavigated');
    await page.getByTestId('update-reload').click();
    await reloaded;
    await page.waitForLoadState('load');
    await expect.poll(() => page.evaluate(() => getComputedStyle(document.body).getPropertyValue('--second-build').trim()).catch(() => 'navigating'), { timeout: 60_000 }).toBe('yes');
    await expect(page.getByTestId('update-ready')).toBeHidden();
    await expect.poll(async () => Object.keys(await cacheContents(page))).toEqual([`eddy-shell-${second}`]);
  } finally {
    await stopServer(server);
  }
});

test('Chromium finds the app installable, and the install button follows the browser offer', async ({ baseURL }) => {
  // Installation is never offered in an incognito profile, which is what Playwright's contexts
  // are: this test runs in a profile on disk.
  const profile = fs.mkdtempSync(path.join(paths.e2e, 'profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.EDDY_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu'],
    headless: true,
    baseURL,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto('/');
    await controlled(page);
    const cdp = await context.newCDPSession(page);
    const manifest = await cdp.send('Page.getAppManifest');
    expect(manifest.errors).toEqual([]);
    expect(manifest.url).toMatch(/\/manifest\.webmanifest$/);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors).toEqual([]);

    // The browser offers installation (beforeinstallprompt); the app shows its button, and the
    // button hands over to the browser's own install dialog.
    const install = page.getByTestId('install');
    await expect(install).toBeVisible();
    await install.click();
    await expect(install).toBeHidden();
  } finally {
    await context.close();
  }
});
