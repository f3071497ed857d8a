import { defineConfig } from '@playwright/test';
import path from 'node:path';

// Debian's Chromium, never a downloaded browser. WebGPU comes from SwiftShader with
// --enable-unsafe-webgpu; the "no-webgpu" project launches without it.
const chromium = process.env.EDDY_CHROMIUM ?? '/usr/bin/chromium';
const root = path.resolve(__dirname, '..');
const port = Number(process.env.EDDY_TEST_PORT ?? 3100);
const serverBin = process.env.EDDY_SERVER_BIN ?? path.join(root, 'target/debug/server');
const models = path.join(root, 'target/e2e/models');

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    headless: true,
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'webgpu',
      testIgnore: /no-webgpu\.spec\.ts/,
      use: { launchOptions: { executablePath: chromium, args: ['--enable-unsafe-webgpu'] } },
    },
    {
      name: 'no-webgpu',
      testMatch: /no-webgpu\.spec\.ts/,
      use: { launchOptions: { executablePath: chromium, args: [] } },
    },
  ],
  webServer: {
    command: `${serverBin} serve --addr 127.0.0.1:${port} --site-root ${path.join(root, 'target/site')} --models-dir ${models}`,
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
