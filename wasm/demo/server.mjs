// server.mjs: a static HTTP server (node:http) for the demo page: the files
// of wasm/demo/ at /, and the built module (walloc_module.mjs with the copy
// of walloc.mjs next to it, from build-wasm/wasm/) at /walloc_module.mjs and
// /walloc.mjs, where demo.mjs imports it. Used by browser.test.mjs; by hand:
//
//   node wasm/demo/server.mjs [build-wasm/wasm] [port]    then open the URL it prints
//
// Only GET and HEAD; paths are resolved inside the two directories (no "..").
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const demoDir = path.dirname(fileURLToPath(import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.ts': 'text/plain; charset=utf-8', '.png': 'image/png',
  '.glsl': 'text/plain; charset=utf-8', '.txt': 'text/plain; charset=utf-8',
};
const FROM_BUILD = new Set(['/walloc.mjs', '/walloc_module.mjs', '/walloc.d.ts']);

// moduleDir: the directory of the built walloc_module.mjs. Resolves to
// { server, url, requests } once listening (port 0: any free port).
export async function startServer({ moduleDir, port = 0, host = '127.0.0.1' }) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let pathname;
    try { pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { pathname = null; }
    requests.push({ method: req.method, path: pathname });
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405); res.end(); return; }
    if (pathname === null || pathname.includes('\0')) { res.writeHead(400); res.end(); return; }
    if (pathname === '/') pathname = '/index.html';
    const root = FROM_BUILD.has(pathname) ? moduleDir : demoDir;
    const file = path.resolve(root, '.' + pathname);
    if (file !== root && !file.startsWith(root + path.sep)) { res.writeHead(403); res.end(); return; }
    let body;
    try { body = await fs.readFile(file); } catch { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-store',
      // cross-origin isolation: browsers give shared memory (the pthreads
      // build's module) only to isolated pages; everything here is same-origin
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, url: `http://${host}:${server.address().port}/`, requests };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const moduleDir = path.resolve(process.argv[2] ?? path.join(demoDir, '..', '..', 'build-wasm', 'wasm'));
  const { url } = await startServer({ moduleDir, port: Number(process.argv[3] ?? 8080) });
  console.log(`walloc demo: ${url} (module from ${moduleDir})`);
}
