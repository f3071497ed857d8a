import { expect, Page } from '@playwright/test';

/** Waits until the model status says ready (loading a model can take a while on SwiftShader). */
export async function waitReady(page: Page, timeout = 240_000) {
  await expect(page.getByTestId('model-status')).toContainText('ready', { timeout });
}

export async function send(page: Page, text: string) {
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('send').click();
}

/** The token ids of the last assistant message, once it finished. */
export async function lastReplyIds(page: Page, timeout = 240_000): Promise<number[]> {
  const last = page.getByTestId('message-assistant').last();
  await expect(last).toHaveAttribute('aria-busy', 'false', { timeout });
  const ids = (await last.getAttribute('data-token-ids')) ?? '';
  return ids ? ids.split(',').map(Number) : [];
}
