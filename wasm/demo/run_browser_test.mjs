// run_browser_test.mjs: what meson's browser_demo test runs. Exits 77
// (meson: skipped) when Chromium or playwright-core is absent, and otherwise
// runs `node --test browser.test.mjs` and exits with its status. (Under
// node --test a test file's own exit status 77 would count as a failure.)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromiumPath = process.env.WALLOC_CHROMIUM ?? '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath)) {
  console.log(`SKIP: no browser at ${chromiumPath} (apt-get install chromium)`);
  process.exit(77);
}
try {
  createRequire(import.meta.url).resolve('playwright-core');
} catch {
  console.log('SKIP: playwright-core is not installed (npm ci --prefix wasm)');
  process.exit(77);
}
const r = spawnSync(process.execPath, ['--test', path.join(here, 'browser.test.mjs')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
