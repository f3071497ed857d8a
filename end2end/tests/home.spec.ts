import { test, expect } from '@playwright/test';
import { collectErrors } from './console';

test('the first page shows the WebGPU adapter and a passed self-test', async ({ page }) => {
  const errors = collectErrors(page);
  await page.goto('/');
  // Server-rendered before hydration.
  await expect(page.getByRole('heading', { name: 'Eddy' })).toBeVisible();
  await page.locator('summary', { hasText: 'This device' }).click();

  const status = page.getByTestId('selftest-status');
  await expect(status).toBeVisible();
  await expect(status).toHaveAttribute('data-passed', 'true');
  await expect(status).toContainText('passed');

  await expect(page.getByTestId('adapter-name')).not.toBeEmpty();
  // SwiftShader has no shader-f16; the page must say so rather than assume it.
  await expect(page.getByTestId('feature-shader-f16')).toHaveText('no');
  // Chromium's SwiftShader offers subgroups (of 4): the engine's device has them and the kernels use them.
  await expect(page.getByTestId('feature-subgroups')).toHaveText('yes');
  await expect(page.getByTestId('limit-max-storage-binding')).toContainText('iB');
  await expect(page.getByTestId('webgpu-unavailable')).toHaveCount(0);

  console.log('adapter:', await page.getByTestId('adapter-name').textContent());
  console.log('self-test:', await status.textContent());
  expect(errors).toEqual([]);
});
