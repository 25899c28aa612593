// node --test: the tier, data, view and statistics functions of wasm/walloc.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tier, AssetType, WallocError, STATUS_NAMES, NULL_HANDLE, createWalloc } from '../walloc.mjs';
import { open, wallocError, modulePath } from './helpers.mjs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const w = await open();
const live = (t) => { const s = w.tierStats(t); return s.allocations - s.deallocations; };

test('createWalloc: module, version, constants, status names match C', async () => {
  assert.equal(w.version(), '0.1.0');
  assert.equal(w.Tier, Tier);
  assert.equal(w.AssetType, AssetType);
  assert.deepEqual(Object.values(Tier), [0, 1, 2, 3]);
  assert.equal(AssetType.JSON, 5);
  STATUS_NAMES.forEach((name, i) => assert.ok(w.statusString(i).startsWith(name + ':'), name));
  assert.ok(w.memoryBytes() >= 16 << 20);
  // The factory can be handed in directly, and the default options work.
  const { default: factory } = await import(pathToFileURL(path.resolve(modulePath)).href);
  const w2 = await createWalloc({ createModule: factory });
  assert.equal(w2.version(), '0.1.0');
});

test('createWalloc: with no options, the copy of walloc.mjs next to the built module finds it', async () => {
  const copy = path.join(path.dirname(path.resolve(modulePath)), 'walloc.mjs');
  const mod = await import(pathToFileURL(copy).href);
  const w3 = await mod.createWalloc();
  assert.equal(w3.version(), '0.1.0');
  await assert.rejects(createWalloc({ modulePath: '/nonexistent/walloc_module.mjs' }));
  const rel = path.relative(process.cwd(), path.resolve(modulePath)); // a path relative to the working directory
  assert.equal((await createWalloc({ modulePath: rel })).version(), '0.1.0');
});

test('createWalloc: walloc_init config (tierMemory, percentages) and a bad config', async () => {
  const small = await open({ tierMemory: 8 << 20, tierPercent: [50, 25, 25] });
  const caps = [0, 1, 2].map((t) => small.tierStats(t).capacity);
  assert.ok(caps.reduce((a, b) => a + b) <= 8 << 20, String(caps));
  assert.ok(caps[0] > caps[1], String(caps));
  await assert.rejects(open({ tierPercent: [90, 90, 90] }), wallocError('WALLOC_ERR_INVALID'));
  await assert.rejects(open({ tierMemory: -1 }), wallocError('WALLOC_ERR_INVALID'));
});

test('WallocError: an Error with the status name', () => {
  const e = new WallocError('WALLOC_ERR_STALE', 'x', { index: 3 });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'WallocError');
  assert.equal(e.status, 'WALLOC_ERR_STALE');
  assert.equal(e.index, 3);
  assert.equal(e.message, 'WALLOC_ERR_STALE: x');
});

test('allocate: BigInt handles in every tier, past 2^53, by number or name', () => {
  for (const t of [Tier.RENDER, Tier.SCENE, Tier.ENTITY, Tier.FALLBACK, 'render', 'Scene', 'entity', 'fallback']) {
    const h = w.allocate(100, t);
    assert.equal(typeof h, 'bigint');
    assert.notEqual(h, NULL_HANDLE);
    assert.ok(w.handleSize(h) >= 100);
    w.deallocate(h);
  }
  // A fallback handle has bit 63 set: far past Number.MAX_SAFE_INTEGER.
  const f = w.allocate(16, Tier.FALLBACK);
  assert.ok(f > BigInt(Number.MAX_SAFE_INTEGER));
  w.deallocate(f);
  const a = w.allocate(0, Tier.ENTITY); // zero bytes: a valid, smallest block
  assert.ok(w.handleSize(a) >= 0);
  w.deallocate(a);
});

test('allocate: bad tier, bad size, too big', () => {
  for (const t of [4, 9, 0x7fffffff]) assert.throws(() => w.allocate(8, t), wallocError('WALLOC_ERR_INVALID'));
  for (const t of [-1, 1.5, 'nope', null, undefined, 2n]) assert.throws(() => w.allocate(8, t), wallocError('WALLOC_ERR_INVALID'));
  for (const n of [-1, 1.5, NaN, '8', 8n]) assert.throws(() => w.allocate(n, Tier.ENTITY), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.allocate(2 ** 32, Tier.ENTITY), wallocError('WALLOC_ERR_NOMEM')); // would wrap to 0 in C
  const cap = w.tierStats(Tier.ENTITY).capacity;
  assert.throws(() => w.allocate(cap + 1, Tier.ENTITY), (e) => wallocError('WALLOC_ERR_NOMEM')(e) && e.tier === 2);
});

test('allocateBatch: sizes or requests; all or nothing', () => {
  const hs = w.allocateBatch([16, 32, 64], Tier.SCENE);
  assert.equal(hs.length, 3);
  assert.equal(new Set(hs).size, 3);
  hs.forEach((h) => w.deallocate(h));
  const mixed = w.allocateBatch([{ size: 8, tier: Tier.RENDER }, { size: 8, tier: 'fallback' }, { size: 8 }]);
  assert.equal(mixed.length, 3);
  mixed.forEach((h) => w.deallocate(h));
  assert.deepEqual(w.allocateBatch([]), []);

  const before = [0, 1, 2].map(live);
  const cap = w.tierStats(Tier.ENTITY).capacity;
  assert.throws(() => w.allocateBatch([{ size: 8, tier: 0 }, { size: 8, tier: 1 }, { size: cap * 2, tier: 2 }, { size: 8, tier: 2 }]),
    (e) => wallocError('WALLOC_ERR_NOMEM')(e) && e.index === 2);
  assert.deepEqual([0, 1, 2].map(live), before, 'the blocks of the batch that failed were given back');
  assert.throws(() => w.allocateBatch([{ size: 8, tier: 6 }]), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.allocateBatch('x'), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.allocateBatch([-5]), wallocError('WALLOC_ERR_INVALID'));
});

test('deallocate: twice is stale; null, foreign and non-BigInt handles are refused', () => {
  for (const t of [Tier.ENTITY, Tier.FALLBACK]) {
    const h = w.allocate(64, t);
    w.deallocate(h);
    assert.throws(() => w.deallocate(h), (e) => ['WALLOC_ERR_STALE', 'WALLOC_ERR_INVALID'].includes(e.status));
  }
  const h = w.allocate(64, Tier.ENTITY);
  w.deallocate(h);
  assert.throws(() => w.deallocate(h), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.deallocate(NULL_HANDLE), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.deallocate(123), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.deallocate(-1n), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.deallocate(1n << 64n), wallocError('WALLOC_ERR_INVALID'));
});

test('resetTier: every handle of the tier goes stale, others stay; FALLBACK and bad tiers refused', () => {
  const a = w.allocate(64, Tier.SCENE);
  const b = w.allocate(64, Tier.ENTITY);
  w.writeData(b, 0, [7]);
  const resets = w.tierStats(Tier.SCENE).resets;
  w.resetTier(Tier.SCENE);
  assert.equal(w.tierStats(Tier.SCENE).resets, resets + 1);
  assert.throws(() => w.readData(a, 0, 1), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.writeData(a, 0, [1]), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.view(a), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.deallocate(a), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.handleSize(a), wallocError('WALLOC_ERR_STALE'));
  assert.deepEqual([...w.readData(b, 0, 1)], [7]);
  assert.throws(() => w.resetTier(Tier.FALLBACK), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.resetTier(8), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.resetTier('x'), wallocError('WALLOC_ERR_INVALID'));
  w.deallocate(b);
});

test('fastCompactTier: blocks below preserveBytes survive, the rest go stale', () => {
  w.resetTier(Tier.RENDER);
  const keep = w.allocate(128, Tier.RENDER);
  w.writeData(keep, 0, [1, 2, 3]);
  const used = w.tierStats(Tier.RENDER).used;
  const drop = w.allocate(1 << 16, Tier.RENDER);
  w.fastCompactTier(Tier.RENDER, used);
  assert.deepEqual([...w.readData(keep, 0, 3)], [1, 2, 3]);
  assert.throws(() => w.readData(drop, 0, 1), wallocError('WALLOC_ERR_STALE'));
  w.fastCompactTier(Tier.RENDER); // preserve nothing
  assert.throws(() => w.readData(keep, 0, 1), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.fastCompactTier(Tier.FALLBACK), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.fastCompactTier(5), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.fastCompactTier(Tier.RENDER, -1), wallocError('WALLOC_ERR_INVALID'));
});

test('tierStats, heapStats, stats', () => {
  const s0 = w.tierStats(Tier.ENTITY);
  for (const k of ['capacity', 'used', 'peak', 'freeListBytes', 'allocations', 'deallocations', 'resets', 'generation']) {
    assert.equal(typeof s0[k], 'number', k);
  }
  const h = w.allocate(1000, Tier.ENTITY);
  const s1 = w.tierStats(Tier.ENTITY);
  assert.equal(s1.allocations, s0.allocations + 1);
  assert.ok(s1.used > s0.used);
  w.deallocate(h);
  assert.equal(w.tierStats(Tier.ENTITY).deallocations, s1.deallocations + 1);
  assert.throws(() => w.tierStats(7), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.tierStats(-2), wallocError('WALLOC_ERR_INVALID'));
  const heap = w.heapStats();
  assert.ok(heap.allocations >= heap.frees && heap.liveBlocks >= 0 && heap.mappedBytes > 0);
  const all = w.stats();
  assert.equal(all.memoryBytes, w.memoryBytes());
  assert.deepEqual(Object.keys(all.tiers), ['render', 'scene', 'entity', 'fallback']);
  assert.ok(all.heap.allocations >= heap.allocations);
});

test('writeData / readData: round trip, copies, every kind of data, bounds', () => {
  const h = w.allocate(64, Tier.ENTITY);
  const size = w.handleSize(h);
  w.writeData(h, 0, new Uint8Array([1, 2, 3, 4]));
  w.writeData(h, 4, new Uint16Array([0x0605]));
  w.writeData(h, 6, new Uint8Array([7, 8]).buffer);
  w.writeData(h, 8, [9, 10]);
  w.writeData(h, 10, new DataView(new Uint8Array([0, 11, 12]).buffer, 1));
  const r = w.readData(h, 0, 12);
  assert.deepEqual([...r], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  r[0] = 99; // a copy: the block does not change
  assert.equal(w.readData(h, 0, 1)[0], 1);
  assert.equal(w.readData(h, size, 0).length, 0);
  w.writeData(h, size, []);
  assert.throws(() => w.writeData(h, size - 1, [1, 2]), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.writeData(h, size + 1, []), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.readData(h, 0, size + 1), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.readData(h, size + 1, 0), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.readData(h, 2 ** 32, 1), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.readData(h, 0, 2 ** 32 + 1), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.readData(h, -1, 1), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.writeData(h, 0, 'text'), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.readData(NULL_HANDLE, 0, 1), wallocError('WALLOC_ERR_INVALID'));
  w.deallocate(h);
  assert.throws(() => w.readData(h, 0, 1), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.writeData(h, 0, [1]), wallocError('WALLOC_ERR_STALE'));
  // A stale handle is reported as such before any scratch copy is made.
  assert.throws(() => w.readData(h, 0, 2 ** 32 - 1), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.writeData(h, 0, new Uint8Array(1 << 20)), wallocError('WALLOC_ERR_STALE'));
  const f = w.allocate(32, Tier.FALLBACK); // the fallback tier too
  w.writeData(f, 0, [5, 6]);
  assert.deepEqual([...w.readData(f, 0, 2)], [5, 6]);
  w.deallocate(f);
});

test('bulkCopy: copies, overlapping copies, and a partial failure that names the bad ops', () => {
  const a = w.allocate(64, Tier.SCENE);
  const b = w.allocate(64, Tier.RENDER);
  w.writeData(a, 0, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(w.bulkCopy([{ dst: b, dstOffset: 0, src: a, srcOffset: 0, length: 8 }, { dst: b, dstOffset: 8, src: a, length: 2 }]), 2);
  assert.deepEqual([...w.readData(b, 0, 10)], [1, 2, 3, 4, 5, 6, 7, 8, 1, 2]);
  assert.equal(w.bulkCopy([{ dst: a, dstOffset: 2, src: a, srcOffset: 0, length: 6 }]), 1); // memmove
  assert.deepEqual([...w.readData(a, 0, 8)], [1, 2, 1, 2, 3, 4, 5, 6]);
  assert.equal(w.bulkCopy([]), 0);

  const gone = w.allocate(64, Tier.ENTITY);
  w.deallocate(gone);
  const size = w.handleSize(b);
  assert.throws(() => w.bulkCopy([
    { dst: b, dstOffset: size - 1, src: a, srcOffset: 0, length: 2 }, // bounds
    { dst: b, dstOffset: 20, src: a, srcOffset: 0, length: 1 },       // fine: done
    { dst: gone, dstOffset: 0, src: a, srcOffset: 0, length: 1 },     // stale
  ]), (e) => wallocError('WALLOC_ERR_BOUNDS')(e) && e.completed === 1
    && JSON.stringify(e.failures) === JSON.stringify([{ index: 0, status: 'WALLOC_ERR_BOUNDS' }, { index: 2, status: 'WALLOC_ERR_STALE' }]));
  assert.equal(w.readData(b, 20, 1)[0], 1, 'the valid op of a failed batch was done');
  assert.throws(() => w.bulkCopy([{ dst: 1, src: a, length: 1 }]), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.bulkCopy(null), wallocError('WALLOC_ERR_INVALID'));
  w.deallocate(a);
  w.deallocate(b);
});

test('view: typed arrays on the block, offsets, alignment, bounds, stale', () => {
  const h = w.allocate(256, Tier.RENDER);
  const f32 = w.view(h, Float32Array);
  assert.equal(f32.length, w.handleSize(h) / 4);
  f32[1] = 1.5;
  assert.deepEqual([...w.readData(h, 4, 4)], [...new Uint8Array(new Float32Array([1.5]).buffer)]);
  w.writeData(h, 8, new Float64Array([2.25]));
  assert.equal(w.view(h, Float64Array)[1], 2.25);
  assert.equal(w.view(h).constructor, Uint8Array);
  const sub = w.view(h, Int32Array, 16, 4);
  assert.equal(sub.length, 4);
  sub[0] = -7;
  assert.equal(w.view(h, Int32Array)[4], -7);
  for (const T of [Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Uint32Array, BigInt64Array, BigUint64Array]) {
    assert.equal(w.view(h, T).byteLength, w.handleSize(h));
  }
  assert.throws(() => w.view(h, Float32Array, 2), wallocError('WALLOC_ERR_INVALID')); // misaligned
  assert.throws(() => w.view(h, Uint8Array, w.handleSize(h) + 1), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.view(h, Float32Array, 0, w.handleSize(h) / 4 + 1), wallocError('WALLOC_ERR_BOUNDS'));
  assert.throws(() => w.view(h, Array), wallocError('WALLOC_ERR_INVALID'));
  assert.throws(() => w.view(h, 'Float32Array'), wallocError('WALLOC_ERR_INVALID'));
  w.deallocate(h);
  assert.throws(() => w.view(h, Float32Array), wallocError('WALLOC_ERR_STALE'));
  assert.throws(() => w.view(NULL_HANDLE), wallocError('WALLOC_ERR_INVALID'));
});

test('view after memory growth: the old view is detached, the API hands out a fresh one', () => {
  const h = w.allocate(4096, Tier.SCENE);
  const before = w.view(h, Uint32Array);
  before.fill(0xdeadbeef);
  const bytes0 = w.memoryBytes();
  // Grow linear memory: big fallback blocks come from new pages.
  const big = [];
  while (w.memoryBytes() <= bytes0 + (64 << 20)) {
    big.push(w.allocate(32 << 20, Tier.FALLBACK));
    assert.ok(big.length < 64, 'memory did not grow');
  }
  assert.ok(w.memoryBytes() > bytes0, 'memory grew');
  if (before.buffer instanceof SharedArrayBuffer) {
    // the pthreads build: growing shared memory detaches nothing, old views
    // keep their length and see the same bytes
    assert.equal(before.length, 1024, 'a view of shared memory outlives growth');
    assert.equal(before[1023], 0xdeadbeef);
  } else {
    assert.equal(before.length, 0, 'the view taken before growth is on a detached buffer');
    assert.equal(before.buffer.byteLength, 0);
  }
  const after = w.view(h, Uint32Array);
  assert.equal(after.length, 1024);
  assert.equal(after.buffer.byteLength, w.memoryBytes(), 'the fresh view is on the current buffer');
  assert.ok(after.every((v) => v === 0xdeadbeef), 'the data survived the growth');
  // Between two calls that each grow memory, every view handed out is live.
  for (let i = 0; i < 4; i++) {
    big.push(w.allocate(32 << 20, Tier.FALLBACK));
    const v = w.view(h, Uint32Array);
    assert.equal(v.length, 1024);
    assert.equal(v[1023], 0xdeadbeef);
    const copy = w.readData(h, 0, 16); // copies are never on wasm memory
    assert.equal(copy.buffer.byteLength, 16);
  }
  big.forEach((b) => w.deallocate(b));
  w.deallocate(h);
});
