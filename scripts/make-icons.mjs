// Renders the app's PNG icons from SVG with the system Chromium (Playwright drives it).
// The PNGs are committed (a few KB each); run this again when the SVGs change:
//   node scripts/make-icons.mjs      (from the repo root, after scripts/setup.sh)
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const any = readFileSync(new URL('../public/favicon.svg', import.meta.url), 'utf8');
// Maskable: full-bleed background, the mark inside the central 80% safe zone.
const maskable = readFileSync(new URL('../public/icons/maskable.svg', import.meta.url), 'utf8');
const icons = [
  [any, 192, 'icon-192.png'],
  [any, 512, 'icon-512.png'],
  [maskable, 192, 'maskable-192.png'],
  [maskable, 512, 'maskable-512.png'],
  [maskable, 180, 'apple-touch-icon.png'],
];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
for (const [svg, size, name] of icons) {
  const page = await browser.newPage({ viewport: { width: size, height: size } });
  const sized = svg.replace('<svg ', `<svg width="${size}" height="${size}" `);
  await page.setContent(`<html><body style="margin:0;background:transparent">${sized}</body></html>`);
  await page.screenshot({ path: new URL(`../public/icons/${name}`, import.meta.url).pathname, omitBackground: true });
  await page.close();
}
await browser.close();
