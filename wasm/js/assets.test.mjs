// node --test: the asset functions of wasm/walloc.mjs against a local HTTP
// server (node:http) started here: 200, 404, 500, an empty body, a body cut
// short, and a refused connection; for the asset options, a stalled
// response, a route failing once with 500, bodies over the size limit (with
// and without Content-Length) and a slow route that counts the requests in
// flight. fetch is node 20's own (on).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { AssetType, Tier, DEFAULT_ASSET_OPTIONS } from '../walloc.mjs';
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
const hits = new Map(); // path -> requests seen
const stalled = new Set(); // responses never finished, destroyed in after()
let inFlight = 0;
let maxInFlight = 0;
const chunked = Uint8Array.from({ length: 200001 }, (_, i) => (i * 7) & 255);

before(async () => {
  server = http.createServer((req, res) => {
    requests++;
    const url = req.url.split('?')[0];
    hits.set(url, (hits.get(url) ?? 0) + 1);
    if (url === '/stall') { stalled.add(res); return; } // never answers
    if (url === '/stall-body') { // headers and some bytes, then nothing
      res.writeHead(200, { 'content-length': '100' });
      res.write(Buffer.alloc(10));
      stalled.add(res);
      return;
    }
    if (url.startsWith('/flaky/')) { // 500 the first time, 200 after
      if (hits.get(url) === 1) { res.writeHead(500); res.end('once'); return; }
      res.writeHead(200); res.end(Buffer.from('fine')); return;
    }
    if (url.startsWith('/gone/')) { res.writeHead(410); res.end('gone'); return; }
    if (url === '/large-cl') { // 5000 bytes, Content-Length given
      res.writeHead(200, { 'content-length': '5000' });
      res.end(Buffer.alloc(5000, 1));
      return;
    }
    if (url === '/large-chunked' || url === '/chunked') { // no Content-Length, sent in pieces
      const body = url === '/chunked' ? Buffer.from(chunked) : Buffer.alloc(5000, 2);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let off = 0;
      const step = () => {
        if (off >= body.length) { res.end(); return; }
        const n = Math.min(body.length - off, 1000 + (off % 7919));
        res.write(body.subarray(off, off + n));
        off += n;
        setImmediate(step);
      };
      step();
      return;
    }
    if (url.startsWith('/slow/')) { // counts the requests in flight
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => { inFlight--; res.writeHead(200); res.end(Buffer.from(url)); }, 40);
      return;
    }
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
after(() => {
  for (const r of stalled) r.destroy();
  server.closeAllConnections?.();
  server.close();
});

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

test('loadAsset: HTTP 404 (WALLOC_ERR_NOT_FOUND) and 500, a cut body, a refused connection (WALLOC_ERR_IO): nothing registered, no block', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const blocks = [0, 1, 2].map((t) => live(w, t));
  await assert.rejects(w.loadAsset('missing.bin'), (e) => wallocError('WALLOC_ERR_NOT_FOUND')(e) && e.httpStatus === 404
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
  assert.equal(res[2].status, 'WALLOC_ERR_NOT_FOUND');
  assert.equal(res[2].httpStatus, 404);
  assert.equal(res[3].status, 'WALLOC_ERR_IO');
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

// ---- asset options: timeout, retries, size limit, batch concurrency ------

test('asset options: the native defaults; setAssetOptions merges and checks; createWalloc takes them', async () => {
  const w = await open();
  assert.deepEqual(w.getAssetOptions(), { ...DEFAULT_ASSET_OPTIONS });
  assert.deepEqual(DEFAULT_ASSET_OPTIONS, { timeoutMs: 60000, maxSize: 256 * 1024 * 1024, retries: 2, retryBackoffMs: 100, concurrency: 8 });
  assert.equal(w.setAssetOptions({ retries: 0 }).retries, 0);
  assert.equal(w.getAssetOptions().timeoutMs, 60000, 'fields left out keep their value');
  for (const bad of [{ retries: -1 }, { timeoutMs: 1.5 }, { maxSize: 2 ** 32 }, { concurrency: 0 }, { nope: 1 }, { retries: '2' }]) {
    assert.throws(() => w.setAssetOptions(bad), wallocError('WALLOC_ERR_INVALID'), JSON.stringify(bad));
  }
  assert.throws(() => w.setAssetOptions(null), wallocError('WALLOC_ERR_INVALID'));
  assert.equal(w.getAssetOptions().retries, 0, 'a refused change changes nothing');
  const v = await open({ assetOptions: { concurrency: 2, maxSize: 1000 } });
  assert.equal(v.getAssetOptions().concurrency, 2);
  assert.equal(v.getAssetOptions().maxSize, 1000);
  assert.equal(v.getAssetOptions().retries, 2);
  await assert.rejects(open({ assetOptions: { timeoutMs: -1 } }), wallocError('WALLOC_ERR_INVALID'));
  await assert.rejects(w.loadAsset('a.bin', AssetType.BINARY, { retries: -3 }), wallocError('WALLOC_ERR_INVALID'));
});

test('timeout: a server that never answers, or stops mid-body: WALLOC_ERR_IO (timedOut) after the retries, nothing left', async () => {
  const w = await open();
  w.setBaseUrl(base);
  w.setAssetOptions({ timeoutMs: 150, retries: 1, retryBackoffMs: 10 });
  const blocks = [0, 1, 2].map((t) => live(w, t));
  const t0 = Date.now();
  await assert.rejects(w.loadAsset('stall'), (e) => wallocError('WALLOC_ERR_IO')(e) && e.timedOut === true
    && e.attempts === 2 && e.httpStatus === 0 && /timed out after 150 ms/.test(e.message));
  assert.equal(hits.get('/stall'), 2, 'a timeout is retried');
  await assert.rejects(w.loadAsset('stall-body', AssetType.BINARY, { retries: 0 }),
    (e) => wallocError('WALLOC_ERR_IO')(e) && e.timedOut === true && e.httpStatus === 200 && e.attempts === 1);
  assert.equal(hits.get('/stall-body'), 1);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  for (const p of ['stall', 'stall-body']) assert.equal(w.getAsset(p), null);
  assert.deepEqual([0, 1, 2].map((t) => live(w, t)), blocks, 'no block left behind');
});

test('retries: a 500 then 200 route loads with retries, fails with retries 0; backoff between tries', async () => {
  const w = await open();
  w.setBaseUrl(base);
  w.setAssetOptions({ retryBackoffMs: 50 });
  const t0 = Date.now();
  const r = await w.loadAsset('flaky/one');
  assert.ok(Date.now() - t0 >= 45, 'waited the backoff');
  assert.equal(r.attempts, 2);
  assert.equal(r.httpStatus, 200);
  assert.equal(hits.get('/flaky/one'), 2);
  assert.equal(new TextDecoder().decode(w.readData(r.handle, 0, r.size)), 'fine');
  w.setAssetOptions({ retries: 0 });
  await assert.rejects(w.loadAsset('flaky/two'), (e) => wallocError('WALLOC_ERR_IO')(e) && e.httpStatus === 500 && e.attempts === 1);
  assert.equal(hits.get('/flaky/two'), 1);
  assert.equal(w.getAsset('flaky/two'), null);
  // Retries are counted: 500 every time, 1 + 2 requests, 10 ms then 20 ms apart.
  w.setAssetOptions({ retries: 2, retryBackoffMs: 10 });
  const n = hits.get('/500') ?? 0;
  await assert.rejects(w.loadAsset('500'), (e) => wallocError('WALLOC_ERR_IO')(e) && e.attempts === 3);
  assert.equal(hits.get('/500'), n + 3);
});

test('retries: 404 and 410 are WALLOC_ERR_NOT_FOUND and never retried', async () => {
  const w = await open();
  w.setBaseUrl(base);
  w.setAssetOptions({ retries: 3, retryBackoffMs: 1 });
  await assert.rejects(w.loadAsset('no/such'), (e) => wallocError('WALLOC_ERR_NOT_FOUND')(e) && e.httpStatus === 404 && e.attempts === 1);
  assert.equal(hits.get('/no/such'), 1);
  await assert.rejects(w.loadAsset('gone/x'), (e) => wallocError('WALLOC_ERR_NOT_FOUND')(e) && e.httpStatus === 410);
  assert.equal(hits.get('/gone/x'), 1);
});

test('maxSize: too large is WALLOC_ERR_NOMEM, with and without Content-Length, never retried, nothing left', async () => {
  const w = await open();
  w.setBaseUrl(base);
  w.setAssetOptions({ maxSize: 4096 });
  const blocks = [0, 1, 2].map((t) => live(w, t));
  const tierAllocs = w.tierStats(Tier.SCENE).allocations;
  await assert.rejects(w.loadAsset('large-cl'), (e) => wallocError('WALLOC_ERR_NOMEM')(e) && e.maxSize === 4096
    && /5000 bytes/.test(e.message) && e.attempts === 1);
  assert.equal(hits.get('/large-cl'), 1);
  await assert.rejects(w.loadAsset('large-chunked'), (e) => wallocError('WALLOC_ERR_NOMEM')(e) && e.attempts === 1);
  assert.equal(hits.get('/large-chunked'), 1);
  for (const p of ['large-cl', 'large-chunked']) assert.equal(w.getAsset(p), null);
  assert.deepEqual([0, 1, 2].map((t) => live(w, t)), blocks, 'no block left behind');
  assert.equal(w.tierStats(Tier.SCENE).allocations, tierAllocs, 'refused before any block was allocated');
  // At the limit it loads; a larger limit for one load.
  const ok = await w.loadAsset('large-cl', AssetType.BINARY, { maxSize: 5000 });
  assert.equal(ok.size, 5000);
  const ok2 = await w.loadAsset('large-chunked', AssetType.BINARY, { maxSize: 5000 });
  assert.equal(ok2.size, 5000);
  assert.deepEqual(w.readData(ok2.handle, 0, 5000), new Uint8Array(5000).fill(2));
});

test('a body without Content-Length in many pieces arrives whole (the buffer grows)', async () => {
  const w = await open();
  w.setBaseUrl(base);
  const r = await w.loadAsset('chunked');
  assert.equal(r.size, chunked.length);
  assert.deepEqual(w.readData(r.handle, 0, r.size), chunked);
});

test('loadAssetsBatch: never more than `concurrency` requests in flight', async () => {
  const w = await open({ assetOptions: { concurrency: 3 } });
  w.setBaseUrl(base);
  inFlight = 0;
  maxInFlight = 0;
  const paths = Array.from({ length: 12 }, (_, i) => `slow/a${i}`);
  const res = await w.loadAssetsBatch(paths);
  assert.ok(res.every((r) => r.ok));
  assert.deepEqual(res.map((r) => r.path), paths);
  assert.equal(maxInFlight, 3);
  // The default, 8; and options for one batch.
  maxInFlight = 0;
  const w8 = await open();
  w8.setBaseUrl(base);
  const res8 = await w8.loadAssetsBatch(Array.from({ length: 20 }, (_, i) => `slow/b${i}`));
  assert.ok(res8.every((r) => r.ok));
  assert.equal(maxInFlight, 8);
  maxInFlight = 0;
  const res1 = await w8.loadAssetsBatch(['slow/c0', 'nope', 'slow/c1', 'slow/c2'], AssetType.BINARY, { concurrency: 1 });
  assert.deepEqual(res1.map((r) => r.ok), [true, false, true, true]);
  assert.equal(res1[1].status, 'WALLOC_ERR_NOT_FOUND');
  assert.equal(maxInFlight, 1);
});
