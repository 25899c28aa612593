// node --test: the asset functions of wasm/walloc.mjs against a local HTTP
// server (node:http) started here: 200, 404, 500, an empty body, a body cut
// short, and a refused connection. fetch is node 20's own (on).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { AssetType, Tier } from '../walloc.mjs';
import { open, wallocError } from './helpers.mjs';

const files = {
  '/a.bin': Uint8Array.from({ length: 1000 }, (_, i) => i & 255),
  '/tex/b.bin': new Uint8Array(70000).fill(7),
  '/c.json': new TextEncoder().encode('{"x": 1}'),
  '/empty': new Uint8Array(0),
};
let server;
let base;
let requests = 0;

before(async () => {
  server = http.createServer((req, res) => {
    requests++;
    const url = req.url.split('?')[0];
    if (url === '/500') { res.writeHead(500); res.end('boom'); return; }
    if (url === '/cut') { // promises 1000 bytes, sends 10, hangs up
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10));
      setTimeout(() => res.socket.destroy(), 20);
      return;
    }
    const body = files[url];
    if (!body) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.from(body));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(() => server.close());

const live = (w, t) => { const s = w.tierStats(t); return s.allocations - s.deallocations; };

test('fetch is on in this node (the loader needs it)', () => {
  assert.equal(typeof globalThis.fetch, 'function');
});

// A browser's fetch throws "Illegal invocation" unless its `this` is the
// window: the loader must call it as a plain function, never as a method.
test('loadAsset calls fetch as a plain function (no `this`), as browsers require', async () => {
  let calls = 0;
  const w = await open({
    fetch: function strictFetch(url) {
      'use strict';
      calls++;
      if (this !== undefined && this !== globalThis) throw new TypeError("Failed to execute 'fetch': Illegal invocation");
      return globalThis.fetch(url);
    },
  });
  w.setBaseUrl(base);
  const r = await w.loadAsset('a.bin');
  assert.equal(r.size, 1000);
  assert.equal(calls, 1);
});

test('setBaseUrl: http(s) and file URLs; other schemes refused; relative paths need a base', async () => {
  const w = await open();
  assert.throws(() => w.setBaseUrl('ftp://x/'), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.setBaseUrl('http://a b/'), wallocError('WALLOC_ERR_INVALID'));
  await assert.rejects(w.loadAsset('a.bin'), (e) => wallocError('WALLOC_ERR_INVALID')(e) && /no base URL/.test(e.message));
  w.setBaseUrl(base.slice(0, -1)); // a missing '/' is added
  assert.equal(w.baseUrl, base.slice(0, -1));
  const r = await w.loadAsset('a.bin');
  assert.equal(r.size, 1000);
  w.setBaseUrl('');
  const whole = await w.loadAsset(base + 'c.json', AssetType.JSON); // whole URLs without a base
  assert.equal(whole.size, files['/c.json'].length);
  w.setBaseUrl(null);
});

test('loadAsset: bytes in the type\'s tier, registered; getAsset; a second load is cached', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const r = await w.loadAsset('tex/b.bin', AssetType.TEXTURE);
  assert.equal(r.tier, Tier.RENDER);
  assert.equal(r.type, AssetType.TEXTURE);
  assert.equal(r.httpStatus, 200);
  assert.equal(r.cached, false);
  assert.equal(typeof r.handle, 'bigint');
  assert.deepEqual(w.readData(r.handle, 0, r.size), files['/tex/b.bin']);
  const md = w.getAsset('tex/b.bin');
  assert.equal(md.handle, r.handle);
  assert.equal(md.size, 70000);
  assert.equal(md.tier, Tier.RENDER);
  assert.equal(md.type, AssetType.TEXTURE);
  assert.ok(Math.abs(md.loadedAtMs - Date.now()) < 60000);
  const n = requests;
  const again = await w.loadAsset('tex/b.bin', AssetType.TEXTURE);
  assert.equal(again.cached, true);
  assert.equal(again.handle, r.handle);
  assert.equal(requests, n, 'no second request');
  const j = await w.loadAsset('/c.json', AssetType.JSON); // a leading '/' stays under the base
  assert.equal(j.tier, Tier.SCENE);
  assert.equal(new TextDecoder().decode(w.readData(j.handle, 0, j.size)), '{"x": 1}');
  const e = await w.loadAsset('empty');
  assert.equal(e.size, 0);
  assert.equal(w.getAsset('empty').size, 0);
  assert.equal(w.getAsset('never'), null);
  assert.equal(w.view(r.handle).byteLength >= 70000, true);
});

test('loadAsset: HTTP 404 and 500, a cut body, a refused connection: WALLOC_ERR_IO, nothing registered, no block', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const blocks = [0, 1, 2].map((t) => live(w, t));
  await assert.rejects(w.loadAsset('missing.bin'), (e) => wallocError('WALLOC_ERR_IO')(e) && e.httpStatus === 404
    && /HTTP 404/.test(e.message) && e.path === 'missing.bin');
  await assert.rejects(w.loadAsset('500', AssetType.MESH), (e) => wallocError('WALLOC_ERR_IO')(e) && e.httpStatus === 500);
  await assert.rejects(w.loadAsset('cut'), (e) => wallocError('WALLOC_ERR_IO')(e) && e.httpStatus === 200);
  for (const p of ['missing.bin', '500', 'cut']) assert.equal(w.getAsset(p), null, p);
  w.setBaseUrl('http://127.0.0.1:1/'); // nothing listens on port 1
  await assert.rejects(w.loadAsset('x'), (e) => wallocError('WALLOC_ERR_IO')(e) && e.httpStatus === 0);
  assert.equal(w.getAsset('x'), null);
  assert.deepEqual([0, 1, 2].map((t) => live(w, t)), blocks, 'no block left behind');
});

test('loadAsset: bad paths and types are refused before any request', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const n = requests;
  for (const p of ['../a.bin', 'x/../../a.bin', '%2e%2e/a.bin', 'http://example.com/a', '//example.com/a', 'a b']) {
    await assert.rejects(w.loadAsset(p), wallocError('WALLOC_ERR_INVALID'), p);
  }
  await assert.rejects(w.loadAsset(''), wallocError('WALLOC_ERR_INVALID'));
  await assert.rejects(w.loadAsset(42), wallocError('WALLOC_ERR_INVALID'));
  await assert.rejects(w.loadAsset('a.bin', 99), wallocError('WALLOC_ERR_INVALID'));
  await assert.rejects(w.loadAsset('a.bin', 'texture'), wallocError('WALLOC_ERR_INVALID'));
  assert.equal(requests, n);
});

test('loadAsset: a tier with no room: WALLOC_ERR_NOMEM, nothing registered', async () => {
  const w = await open({ tierMemory: 1 << 20 }); // render tier 512 KiB
  w.setBaseUrl(base);
  const big = new Uint8Array(4 << 20);
  files['/big'] = big;
  try {
    await assert.rejects(w.loadAsset('big', AssetType.TEXTURE), wallocError('WALLOC_ERR_NOMEM'));
    assert.equal(w.getAsset('big'), null);
    assert.equal(live(w, Tier.RENDER), 0);
  } finally {
    delete files['/big'];
  }
});

test('loadAsset: two loads of one path at once keep one block', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const before = live(w, Tier.SCENE);
  const [x, y] = await Promise.all([w.loadAsset('a.bin'), w.loadAsset('a.bin')]);
  assert.equal(x.handle, y.handle);
  assert.equal(live(w, Tier.SCENE), before + 1, 'the loser\'s block was given back');
  assert.equal(w.getAsset('a.bin').handle, x.handle);
});

test('loadAsset after a reset: the stale registration is replaced', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const r = await w.loadAsset('a.bin');
  w.resetTier(Tier.SCENE);
  assert.throws(() => w.readData(r.handle, 0, 1), wallocError('WALLOC_ERR_STALE'));
  const again = await w.loadAsset('a.bin');
  assert.equal(again.cached, false);
  assert.notEqual(again.handle, r.handle);
  assert.equal(w.getAsset('a.bin').handle, again.handle);
  assert.deepEqual(w.readData(again.handle, 0, 1000), files['/a.bin']);
});

test('loadAssetsBatch: one failure does not fail the others', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const res = await w.loadAssetsBatch(['a.bin', { path: 'tex/b.bin', type: AssetType.TEXTURE }, 'nope', { path: '500' }, '../x', { path: 'c.json', type: AssetType.JSON }]);
  assert.deepEqual(res.map((r) => r.ok), [true, true, false, false, false, true]);
  assert.deepEqual(res.map((r) => r.path), ['a.bin', 'tex/b.bin', 'nope', '500', '../x', 'c.json']);
  assert.equal(res[2].status, 'WALLOC_ERR_IO');
  assert.equal(res[2].httpStatus, 404);
  assert.equal(res[3].httpStatus, 500);
  assert.equal(res[4].status, 'WALLOC_ERR_INVALID');
  assert.equal(res[1].tier, Tier.RENDER);
  for (const r of res) {
    if (r.ok) assert.equal(w.getAsset(r.path).handle, r.handle);
    else assert.equal(w.getAsset(r.path), null);
  }
  assert.deepEqual(await w.loadAssetsBatch([]), []);
  await assert.rejects(w.loadAssetsBatch('a.bin'), wallocError('WALLOC_ERR_INVALID'));
});

test('evictAsset / evictAssetsBatch: entry gone, handle stale', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const [a, b, c] = (await w.loadAssetsBatch(['a.bin', 'tex/b.bin', 'c.json'])).map((r) => r.handle);
  assert.equal(w.evictAsset('a.bin'), true);
  assert.equal(w.getAsset('a.bin'), null);
  assert.throws(() => w.readData(a, 0, 1), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.view(a), wallocError('WALLOC_ERR_STALE'));
  assert.equal(w.evictAsset('a.bin'), false);
  assert.equal(w.evictAssetsBatch(['tex/b.bin', 'c.json', 'never']), 2);
  for (const h of [b, c]) assert.throws(() => w.readData(h, 0, 1), wallocError('WALLOC_ERR_STALE'));
  assert.equal(w.evictAssetsBatch([]), 0);
  assert.throws(() => w.evictAssetsBatch('a'), wallocError('WALLOC_ERR_INVALID'));
  const again = await w.loadAsset('a.bin'); // loads afresh
  assert.equal(again.cached, false);
});

test('registerAsset: a block the caller filled, under a key; a taken key is refused', async () => {
  const w = await open();
  const h = w.allocate(5, Tier.SCENE);
  w.writeData(h, 0, [1, 2, 3, 4, 5]);
  assert.equal(w.registerAsset('mine', { handle: h, size: 5, tier: Tier.SCENE }), true);
  assert.equal(w.registerAsset('mine', { handle: h, size: 5, tier: Tier.SCENE }), false);
  assert.deepEqual(w.getAsset('mine'), { handle: h, size: 5, tier: Tier.SCENE, type: AssetType.BINARY, loadedAtMs: 0 });
  const r = await w.loadAsset(`${base}a.bin`); // another path, a whole URL
  assert.equal(r.size, 1000);
  assert.equal(w.evictAsset('mine'), true);
  assert.throws(() => w.readData(h, 0, 1), wallocError('WALLOC_ERR_STALE'));
});
