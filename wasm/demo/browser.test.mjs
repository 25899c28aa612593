// node --test: the demo page (index.html, demo.mjs) in a real headless
// Chromium, Debian's /usr/bin/chromium driven by playwright-core (npm, in
// wasm/node_modules: npm ci --prefix wasm). A local server (server.mjs)
// serves the page and the built module; the test waits for data-ready="1",
// checks the tier table shows allocations in every tier and that the assets
// loaded and stayed live, that no console error, page error or failed request
// happened, and saves a screenshot.
//
// Environment (meson test sets the first two):
//   WALLOC_BUILD_WASM       the wasm build directory (build-wasm); the module is
//                           in its wasm/ directory
//   WALLOC_SCREENSHOT       where to save the PNG (default: $WALLOC_BUILD_WASM/wasm/demo.png)
//   WALLOC_UPDATE_SCREENSHOT=1   also copy it to docs/wasm-demo.png
//   WALLOC_CHROMIUM         the browser (default /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, demoDir } from './server.mjs';

// Without the browser or playwright-core the test is skipped (node --test
// reports it; run_browser_test.mjs, which meson runs, exits 77 instead).
const repo = path.resolve(demoDir, '..', '..');
const buildDir = path.resolve(process.env.WALLOC_BUILD_WASM ?? path.join(repo, 'build-wasm'));
const moduleDir = path.join(buildDir, 'wasm');
const chromiumPath = process.env.WALLOC_CHROMIUM ?? '/usr/bin/chromium';
const screenshot = path.resolve(process.env.WALLOC_SCREENSHOT ?? path.join(moduleDir, 'demo.png'));

let skip = fs.existsSync(chromiumPath) ? false : `no browser at ${chromiumPath} (apt-get install chromium)`;
let chromium;
if (!skip) {
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    skip = 'playwright-core is not installed (npm ci --prefix wasm)';
  }
}
if (!skip && !fs.existsSync(path.join(moduleDir, 'walloc_module.mjs'))) {
  throw new Error(`no ${path.join(moduleDir, 'walloc_module.mjs')}: build the wasm build first (WALLOC_BUILD_WASM)`);
}

let srv;
let browser;
before(async () => {
  if (skip) return;
  srv = await startServer({ moduleDir });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // As root Chromium refuses to start with its sandbox.
    args: ['--no-sandbox'],
  });
});
after(async () => {
  await browser?.close();
  srv?.server.close();
});

test('the demo page works in headless Chromium, with no console or page error', { skip }, async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const consoleErrors = [];
  const pageErrors = [];
  const failedRequests = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location()?.url ?? ''})`); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('requestfailed', (r) => failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) failedRequests.push(`${r.url()}: HTTP ${r.status()}`); });

  await page.goto(srv.url, { waitUntil: 'load' });
  await page.waitForSelector('html[data-ready]', { timeout: 30000 });
  const ready = await page.getAttribute('html', 'data-ready');
  const demoError = await page.evaluate(() => globalThis.wallocDemoError ?? null);
  assert.equal(ready, '1', `the page reported an error: ${demoError}`);
  assert.equal(demoError, null);

  // Let the frame loop run a few more frames: the table must keep changing.
  const allocationsOf = () => page.$$eval('#tier-stats tbody tr', (rows) => Object.fromEntries(rows.map((r) => [
    r.dataset.tier,
    Object.fromEntries([...r.querySelectorAll('td[data-field]')].map((td) => [td.dataset.field, Number(td.dataset.value)])),
  ])));
  const first = await allocationsOf();
  await page.waitForFunction((n) => {
    const td = document.querySelector('#tier-stats tr[data-tier="entity"] td[data-field="allocations"]');
    return Number(td.dataset.value) > n;
  }, first.entity.allocations, { timeout: 10000 });
  const table = await allocationsOf();
  assert.deepEqual(Object.keys(table), ['render', 'scene', 'entity', 'fallback']);
  for (const [tier, s] of Object.entries(table)) {
    assert.ok(s.allocations > 0, `${tier}: allocations ${s.allocations}`);
    assert.ok(s.capacity > 0 || tier === 'fallback', `${tier}: capacity ${s.capacity}`);
  }
  assert.ok(table.entity.deallocations > 0, 'entities are freed each frame');
  assert.ok(table.render.allocations > first.render.allocations, 'the render tier is used each frame');

  // The assets: one loadAsset and three in a batch, fetched over HTTP, live.
  const demo = await page.evaluate(() => { globalThis.wallocDemo.stop(); return globalThis.wallocDemo; });
  assert.deepEqual(demo.assets.map((a) => [a.path, a.httpStatus]),
    [['config.json', 200], ['checker.rgba', 200], ['quad.mesh', 200], ['basic.frag.glsl', 200]]);
  for (const a of demo.assets) {
    assert.equal(a.size, fs.statSync(path.join(demoDir, 'assets', a.path)).size, a.path);
  }
  const liveRows = await page.$$eval('#assets tbody tr', (rows) => rows.map((r) => [r.dataset.path, r.dataset.live]));
  assert.deepEqual(liveRows, demo.assets.map((a) => [a.path, '1']));
  for (const p of ['/assets/config.json', '/assets/checker.rgba', '/assets/quad.mesh', '/assets/basic.frag.glsl']) {
    assert.ok(srv.requests.some((r) => r.path === p), `the server saw no request for ${p}`);
  }
  assert.equal(demo.view.count, 64);

  // The canvas shows the texture read from its block: the checker's two colours.
  const px = await page.evaluate(() => {
    const d = document.getElementById('texture').getContext('2d').getImageData(0, 0, 16, 16).data;
    return [Array.from(d.slice(0, 4)), Array.from(d.slice(4 * 4, 4 * 4 + 4))];
  });
  assert.deepEqual(px, [[0xf5, 0xa6, 0x23, 255], [0x2e, 0x86, 0xde, 255]]);

  assert.deepEqual(pageErrors, [], 'page errors');
  assert.deepEqual(consoleErrors, [], 'console errors');
  assert.deepEqual(failedRequests, [], 'failed requests');

  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
  if (process.env.WALLOC_UPDATE_SCREENSHOT === '1') {
    const doc = path.join(repo, 'docs', 'wasm-demo.png');
    fs.copyFileSync(screenshot, doc);
    console.log(`copied to ${doc}`);
  }
  await page.close();
});
