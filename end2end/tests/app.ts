import { expect, Page } from '@playwright/test';

/** Waits until the model status says ready (loading a model can take a while on SwiftShader). */
export async function waitReady(page: Page, timeout = 240_000) {
  await expect(page.getByTestId('model-status')).toContainText('ready', { timeout });
}

export async function send(page: Page, text: string) {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('send').click();
}

/** Sets the open conversation's system prompt through the settings panel. */
export async function setSystemPrompt(page: Page, text: string) {
  await page.getByTestId('settings-toggle').click();
  await page.getByTestId('system-prompt').fill(text);
  await page.getByTestId('system-prompt').blur();
  await page.getByTestId('settings-close').click();
}

/** The token ids of the last assistant message, once it finished. */
export async function lastReplyIds(page: Page, timeout = 240_000): Promise<number[]> {
  const last = page.getByTestId('message-assistant').last();
  await expect(last).toHaveAttribute('aria-busy', 'false', { timeout });
  const ids = (await last.getAttribute('data-token-ids')) ?? '';
  return ids ? ids.split(',').map(Number) : [];
}

/** The keys in an IndexedDB object store of the page's origin. */
export function storedKeys(page: Page, db: string, store: string): Promise<string[]> {
  return page.evaluate(async ([name, storeName]) => {
    const d: IDBDatabase = await new Promise((ok, err) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = err; });
    const keys: IDBValidKey[] = await new Promise((ok, err) => { const r = d.transaction(storeName).objectStore(storeName).getAllKeys(); r.onsuccess = () => ok(r.result); r.onerror = err; });
    d.close();
    return keys.map(String);
  }, [db, store]);
}

/** Deletes keys from an IndexedDB object store (to play the browser evicting data). */
export function deleteKeys(page: Page, db: string, store: string, keys: string[]): Promise<void> {
  return page.evaluate(async ([name, storeName, gone]) => {
    const d: IDBDatabase = await new Promise((ok, err) => { const r = indexedDB.open(name as string); r.onsuccess = () => ok(r.result); r.onerror = err; });
    const tx = d.transaction(storeName as string, 'readwrite');
    for (const k of gone as string[]) tx.objectStore(storeName as string).delete(k);
    await new Promise((ok) => (tx.oncomplete = ok));
    d.close();
  }, [db, store, keys] as const);
}

/** Waits until the app is hydrated (its event handlers attached): the catalog it fetches is listed. */
export async function hydrated(page: Page) {
  await expect(page.getByTestId('model-picker').locator('option:not([value=""])').first()).toBeAttached({ timeout: 60_000 });
}
