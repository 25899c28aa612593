// Shared by the node tests of wasm/walloc.mjs: where the built module is.
// meson test sets WALLOC_MJS_MODULE (build-wasm/wasm/walloc_module.mjs);
// run by hand: WALLOC_MJS_MODULE=build-wasm/wasm/walloc_module.mjs node --test wasm/js/
import { createWalloc } from '../walloc.mjs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const modulePath = process.env.WALLOC_MJS_MODULE
  ?? path.join(here, '..', '..', 'build-wasm', 'wasm', 'walloc_module.mjs');

export function open(options = {}) {
  return createWalloc({ modulePath: pathToFileURL(path.resolve(modulePath)).href, ...options });
}

// assert.throws matcher for a WallocError with this status.
export function wallocError(status) {
  return (e) => e?.name === 'WallocError' && e.status === status && e.message.startsWith(status);
}
