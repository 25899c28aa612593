// Put at the top of walloc_module.mjs (--extern-pre-js): Emscripten 3.1.6's
// ES6 module output runs require() and __dirname under node, which an ES
// module does not have. Under node they are made from import.meta.url; in a
// browser both stay undefined and the code that reads them never runs.
const { require, __dirname } = typeof process == 'object' && process.versions && process.versions.node
  ? await (async () => {
    const { createRequire } = await import('node:module');
    const { fileURLToPath } = await import('node:url');
    const path = await import('node:path');
    return { require: createRequire(import.meta.url), __dirname: path.dirname(fileURLToPath(import.meta.url)) };
  })()
  : {};
