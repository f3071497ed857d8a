import { test, expect } from '@playwright/test';
import { collectErrors } from './console';

test('without WebGPU the page explains why and what to do', async ({ page }) => {
  const errors = collectErrors(page);
  // Launched without --enable-unsafe-webgpu; also hide navigator.gpu in case this
  // Chromium enables WebGPU by default.
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/');
  const notice = page.getByTestId('webgpu-unavailable');
  await expect(notice).toBeVisible();
  await expect(notice).toContainText('does not offer WebGPU');
  await expect(notice).toContainText('Chrome');
  await expect(notice).toContainText('enable-unsafe-webgpu');
  await expect(page.getByTestId('selftest-status')).toHaveCount(0);
  expect(errors).toEqual([]);
});
