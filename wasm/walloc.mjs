// walloc.mjs: the JavaScript API of walloc's WebAssembly build.
//
//   import { createWalloc, Tier, AssetType } from './walloc.mjs';
//   const w = await createWalloc();               // loads ./walloc_module.mjs
//   const h = w.allocate(1024, Tier.RENDER);      // a BigInt handle
//   w.view(h, Float32Array)[0] = 1.5;             // a view on the block, on today's memory
//
// Handles are BigInts: a walloc_handle is 64 bits (offset, tier generation,
// block version, and bit 63 for the fallback tier), so it passes 2^53 as a
// rule, not by exception. Every failure throws (or rejects with) a
// WallocError whose .status is the C status name ("WALLOC_ERR_STALE", ...).
//
// Views: linear memory grows (walloc grows it when a tier or the heap needs
// room), and growing detaches the old ArrayBuffer: every typed array made on
// it reads as length 0. view() builds its typed array on the memory's
// current buffer at each call, and every other function copies in or out at
// once, so nothing the API returns is on a detached buffer; a view kept by
// the caller goes stale at the next growth (view.length === 0): ask again.
//
// Assets: loadAsset fetches with the global fetch (browser or node 18+),
// resolves paths with the same rules as the native loader (base URL set by
// setBaseUrl, absolute URLs refused when a base is set, no ".."), writes the
// bytes into a block of the type's tier and registers it in walloc's C
// registry. A failed load leaves no block and no registry entry. As the
// native loader: a timeout (60 s), a size limit (256 MiB), 2 retries of a
// transient failure with a 100 ms backoff doubled, 8 requests at once in a
// batch; setAssetOptions or createWalloc({assetOptions}) change them.

export const Tier = Object.freeze({ RENDER: 0, SCENE: 1, ENTITY: 2, FALLBACK: 3 });
export const AssetType = Object.freeze({ BINARY: 0, TEXTURE: 1, MESH: 2, AUDIO: 3, SHADER: 4, JSON: 5 });
export const STATUS_NAMES = Object.freeze([
  'WALLOC_OK', 'WALLOC_ERR_NOMEM', 'WALLOC_ERR_INVALID', 'WALLOC_ERR_BOUNDS', 'WALLOC_ERR_STALE',
  'WALLOC_ERR_BUDGET', 'WALLOC_ERR_NOT_FOUND', 'WALLOC_ERR_IO', 'WALLOC_ERR_UNSUPPORTED',
]);
export const NULL_HANDLE = 0xffffffffffffffffn;

const TIER_NAMES = ['render', 'scene', 'entity', 'fallback'];
const U32_MAX = 0xffffffff;

export class WallocError extends Error {
  // status: a name from STATUS_NAMES; details: extra fields (httpStatus, url, index, ...).
  constructor(status, message, details = {}) {
    super(`${status}: ${message}`);
    this.name = 'WallocError';
    this.status = status;
    Object.assign(this, details);
  }
}

function statusName(code) {
  return STATUS_NAMES[code] ?? `WALLOC_STATUS_${code}`;
}

// size_t arguments: wasm32 takes 32 bits, and JavaScript would wrap a larger
// number silently, so anything else is refused before the call.
function u32(value, what, tooBig = 'WALLOC_ERR_BOUNDS') {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new WallocError('WALLOC_ERR_INVALID', `${what} must be a non-negative integer (got ${String(value)})`);
  }
  if (value > U32_MAX) throw new WallocError(tooBig, `${what} ${value} does not fit in wasm32's size_t`);
  return value;
}

function tierArg(tier) {
  if (typeof tier === 'string') {
    const i = TIER_NAMES.indexOf(tier.toLowerCase());
    if (i >= 0) return i;
  } else if (typeof tier === 'number' && Number.isInteger(tier) && tier >= 0 && tier <= 0x7fffffff) {
    return tier; // walloc itself refuses the numbers it has no tier for
  }
  throw new WallocError('WALLOC_ERR_INVALID', `no such tier: ${String(tier)}`);
}

function handleArg(handle) {
  if (typeof handle !== 'bigint' || handle < 0n || handle > NULL_HANDLE) {
    throw new WallocError('WALLOC_ERR_INVALID', `a handle is a BigInt in [0, 2^64) (got ${typeof handle} ${String(handle)})`);
  }
  return handle;
}

function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer)) {
    return new Uint8Array(data);
  }
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new WallocError('WALLOC_ERR_INVALID', 'data must be a typed array, a DataView, an ArrayBuffer or an array of bytes');
}

// The asset loader's defaults, those of the native loader (walloc_asset_options):
//   timeoutMs       a whole request, headers and body (0 = none)       60000
//   maxSize         bytes of a body; larger is WALLOC_ERR_NOMEM        256 MiB
//   retries         of a transient failure (network error, timeout,
//                   HTTP 5xx; never 4xx)                                2
//   retryBackoffMs  before the first retry, doubled for each next one  100
//   concurrency     requests in flight in loadAssetsBatch              8
export const DEFAULT_ASSET_OPTIONS = Object.freeze({
  timeoutMs: 60000, maxSize: 256 * 1024 * 1024, retries: 2, retryBackoffMs: 100, concurrency: 8,
});

const ASSET_OPTION_LIMITS = {
  timeoutMs: [0, 0x7fffffff], // setTimeout's limit
  maxSize: [0, U32_MAX],      // wasm32's size_t
  retries: [0, 100],
  retryBackoffMs: [0, 0x7fffffff],
  concurrency: [1, 1024],
};

// options over base, checked: a new frozen object (undefined fields keep base's).
function assetOptionsOf(options, base) {
  if (typeof options !== 'object' || options === null) {
    throw new WallocError('WALLOC_ERR_INVALID', 'asset options are an object');
  }
  const out = { ...base };
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const lim = ASSET_OPTION_LIMITS[k];
    if (!lim) throw new WallocError('WALLOC_ERR_INVALID', `no asset option "${k}"`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lim[0] || v > lim[1]) {
      throw new WallocError('WALLOC_ERR_INVALID', `asset option ${k} must be an integer in [${lim[0]}, ${lim[1]}] (got ${String(v)})`);
    }
    out[k] = v;
  }
  return Object.freeze(out);
}

// The body of res as a Uint8Array, or null as soon as it passes maxSize.
// Without an exact length it is read chunk by chunk with a reader, into a
// buffer that starts at length (the Content-Length, -1 if none: 64 KiB) and
// doubles as the body needs, never past maxSize.
// exact: length is the decoded body's (no Content-Encoding), checked against
// maxSize already: the body is read whole with arrayBuffer(). (Read with a
// reader, Chromium now and then reported such a small, fully read response
// as net::ERR_ABORTED in the browser_demo test.)
async function readBody(res, length, maxSize, exact) {
  const reader = exact || res.body === null ? undefined : res.body?.getReader?.();
  if (!reader) { // a known length, or a Response without a stream (some fetch polyfills)
    const b = res.body === null ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer());
    return b.length > maxSize ? null : b;
  }
  let buf = new Uint8Array(Math.min(length >= 0 ? length : 64 * 1024, maxSize));
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = value instanceof Uint8Array ? value : bytesOf(value);
    if (chunk.length > maxSize - n) {
      reader.cancel().catch(() => {});
      return null;
    }
    if (n + chunk.length > buf.length) {
      let cap = Math.max(buf.length * 2, 64 * 1024);
      while (cap < n + chunk.length) cap *= 2;
      const grown = new Uint8Array(Math.min(cap, maxSize));
      grown.set(buf.subarray(0, n));
      buf = grown;
    }
    buf.set(chunk, n);
    n += chunk.length;
  }
  return n === buf.length ? buf : buf.slice(0, n);
}

async function defaultFactory() {
  const mod = await import(new URL('./walloc_module.mjs', import.meta.url).href);
  return mod.default;
}

// options:
//   createModule: the Emscripten factory (createWallocModule), or
//   modulePath:   a URL or path of walloc_module.mjs to import;
//                 default: walloc_module.mjs next to this file.
//   moduleOptions: passed to the factory (print, printErr, wasmBinary, ...).
//   tierMemory, tierPercent [r, s, e], tierAlignment [r, s, e]: walloc_init's config.
//   fetch:        the fetch to load assets with (default: globalThis.fetch).
//   assetOptions: {timeoutMs, maxSize, retries, retryBackoffMs, concurrency}
//                 for loadAsset and loadAssetsBatch (see setAssetOptions).
export async function createWalloc(options = {}) {
  let factory = options.createModule;
  if (factory === undefined && options.modulePath !== undefined) {
    // A URL as it is; a file path under node (relative to the working directory).
    const p = String(options.modulePath);
    const isNode = typeof process === 'object' && process.versions?.node;
    const url = /^[a-z][a-z0-9+.-]*:/i.test(p) || !isNode
      ? p
      : (await import('node:url')).pathToFileURL((await import('node:path')).resolve(p)).href;
    factory = (await import(url)).default;
  }
  if (factory === undefined) factory = await defaultFactory();
  const M = await factory({ ...(options.moduleOptions ?? {}) });
  return new Walloc(M, options);
}

class Walloc {
  #M;
  #fetch;
  #baseUrl = '';
  #memory;
  #assetOptions = DEFAULT_ASSET_OPTIONS;

  constructor(M, options) {
    this.#M = M;
    // The module's linear memory: its export is named "memory" unless emcc
    // minified the export names (-O2 and up), so it is found by type.
    // A pthreads build (shared memory) imports its memory instead: the
    // module keeps it as wasmMemory.
    this.#memory = Object.values(M.asm ?? {}).find((v) => v instanceof WebAssembly.Memory) ??
      (M.wasmMemory instanceof WebAssembly.Memory ? M.wasmMemory : undefined);
    if (!this.#memory) throw new WallocError('WALLOC_ERR_UNSUPPORTED', 'the module exports no WebAssembly.Memory');
    this.#fetch = options.fetch ?? globalThis.fetch;
    if (options.assetOptions !== undefined) this.#assetOptions = assetOptionsOf(options.assetOptions, DEFAULT_ASSET_OPTIONS);
    this.Tier = Tier;
    this.AssetType = AssetType;
    this.NULL_HANDLE = NULL_HANDLE;
    if (options.tierMemory !== undefined || options.tierPercent !== undefined || options.tierAlignment !== undefined) {
      this.#init(options);
    }
  }

  // ---- memory -----------------------------------------------------------

  // The memory's buffer now: read again after any call into walloc, which may grow it.
  #u8() { return new Uint8Array(this.#memory.buffer); }
  #dv() { return new DataView(this.#memory.buffer); }

  #malloc(n) {
    const p = this.#M._walloc_malloc(Math.max(n, 1)) >>> 0;
    if (p === 0) throw new WallocError('WALLOC_ERR_NOMEM', `no room for ${n} bytes of scratch memory`);
    return p;
  }
  #free(p) { this.#M._walloc_free(p); }

  #cstr(s) {
    const b = new TextEncoder().encode(String(s));
    const p = this.#malloc(b.length + 1);
    const u8 = this.#u8();
    u8.set(b, p);
    u8[p + b.length] = 0;
    return p;
  }
  #str(p) {
    p >>>= 0;
    if (p === 0) return '';
    const u8 = this.#u8();
    let end = p;
    while (u8[end] !== 0) end++;
    // slice, not subarray: TextDecoder refuses views of a SharedArrayBuffer
    return new TextDecoder().decode(u8.slice(p, end));
  }
  #withCstr(s, fn) {
    const p = this.#cstr(s);
    try { return fn(p); } finally { this.#free(p); }
  }

  #init(options) {
    // walloc_config on wasm32: tier_memory (4), tier_percent[3] (12), tier_alignment[3] (12).
    const p = this.#malloc(28);
    try {
      const dv = this.#dv();
      dv.setUint32(p, u32(options.tierMemory ?? 0, 'tierMemory', 'WALLOC_ERR_INVALID'), true);
      for (let i = 0; i < 3; i++) {
        dv.setUint32(p + 4 + 4 * i, u32(options.tierPercent?.[i] ?? 0, 'tierPercent', 'WALLOC_ERR_INVALID'), true);
        dv.setUint32(p + 16 + 4 * i, u32(options.tierAlignment?.[i] ?? 0, 'tierAlignment', 'WALLOC_ERR_INVALID'), true);
      }
      this.#check(this.#M._walloc_init(p), 'walloc_init');
    } finally {
      this.#free(p);
    }
  }

  #check(code, what) {
    if (code !== 0) throw new WallocError(statusName(code), `${what} failed`);
  }

  // Why a handle is unusable (WALLOC_OK if it is live).
  #handleStatus(h) { return this.#M._walloc_read_data(h, 0, 0, 0); }

  // Throws unless [off, off + n) lies in a live block: checked before any
  // scratch copy is made (C checks again in the call itself).
  #liveRange(h, off, n, what) {
    const st = this.#handleStatus(h);
    if (st !== 0) throw new WallocError(statusName(st), `${what}: the handle is not a live block`);
    const size = this.#M._walloc_handle_size(h) >>> 0;
    if (off > size || n > size - off) {
      throw new WallocError('WALLOC_ERR_BOUNDS', `${what}(${n} bytes at ${off}) of a ${size}-byte block`);
    }
  }

  version() { return this.#str(this.#M._walloc_version()); }
  statusString(code) { return this.#str(this.#M._walloc_status_str(code)); }

  // Bytes of linear memory now (grows, never shrinks).
  memoryBytes() { return this.#M._wjs_memory_bytes(); }

  // ---- tiers ------------------------------------------------------------

  allocate(size, tier) {
    const t = tierArg(tier);
    const n = u32(size, 'size', 'WALLOC_ERR_NOMEM');
    const h = BigInt.asUintN(64, this.#M._walloc_allocate(n, t));
    if (h === NULL_HANDLE) {
      const st = statusName(this.#M._walloc_last_status());
      throw new WallocError(st, `walloc_allocate(${n}, ${TIER_NAMES[t] ?? t}) failed`, { size: n, tier: t });
    }
    return h;
  }

  // requests: an array of sizes (all in `tier`) or of {size, tier}.
  // Returns the handles in order. All or nothing: if one fails, the blocks
  // of the others are given back and a WallocError names the failed index.
  allocateBatch(requests, tier = Tier.ENTITY) {
    if (!Array.isArray(requests)) throw new WallocError('WALLOC_ERR_INVALID', 'allocateBatch takes an array');
    const reqs = requests.map((r) => (typeof r === 'object' && r !== null
      ? { size: u32(r.size, 'size', 'WALLOC_ERR_NOMEM'), tier: tierArg(r.tier ?? tier) }
      : { size: u32(r, 'size', 'WALLOC_ERR_NOMEM'), tier: tierArg(tier) }));
    const count = reqs.length;
    if (count === 0) return [];
    const rp = this.#malloc(8 * count);
    let out = 0;
    try {
      out = this.#malloc(8 * count);
      let dv = this.#dv();
      reqs.forEach((r, i) => { dv.setUint32(rp + 8 * i, r.size, true); dv.setInt32(rp + 8 * i + 4, r.tier, true); });
      const ok = this.#M._walloc_allocate_batch(rp, count, out) >>> 0;
      dv = this.#dv();
      const handles = reqs.map((_, i) => dv.getBigUint64(out + 8 * i, true));
      if (ok === count) return handles;
      const failed = handles.findIndex((h) => h === NULL_HANDLE);
      const st = statusName(this.#M._walloc_last_status());
      for (const h of handles) if (h !== NULL_HANDLE) this.#M._walloc_deallocate(h);
      throw new WallocError(st, `allocateBatch: request ${failed} (${reqs[failed].size} bytes, tier ${reqs[failed].tier}) failed; none kept`, { index: failed });
    } finally {
      this.#free(rp);
      if (out) this.#free(out);
    }
  }

  deallocate(handle) {
    const h = handleArg(handle);
    this.#check(this.#M._walloc_deallocate(h), 'walloc_deallocate');
  }

  resetTier(tier) { this.#check(this.#M._walloc_reset_tier(tierArg(tier)), 'walloc_reset_tier'); }

  fastCompactTier(tier, preserveBytes = 0) {
    const t = tierArg(tier);
    this.#check(this.#M._walloc_fast_compact_tier(t, u32(preserveBytes, 'preserveBytes', 'WALLOC_ERR_INVALID')), 'walloc_fast_compact_tier');
  }

  // {capacity, used, peak, freeListBytes, allocations, deallocations, resets, generation}
  tierStats(tier) {
    const t = tierArg(tier);
    const p = this.#malloc(64);
    try {
      this.#check(this.#M._wjs_tier_stats(t, p), 'walloc_tier_stats_get');
      const dv = this.#dv();
      const v = (i) => Number(dv.getBigUint64(p + 8 * i, true));
      return {
        capacity: v(0), used: v(1), peak: v(2), freeListBytes: v(3),
        allocations: v(4), deallocations: v(5), resets: v(6), generation: v(7),
      };
    } finally {
      this.#free(p);
    }
  }

  // Usable bytes of a live block (throws for a stale or invalid handle).
  handleSize(handle) {
    const h = handleArg(handle);
    this.#check(this.#handleStatus(h), 'handleSize');
    return this.#M._walloc_handle_size(h) >>> 0;
  }

  writeData(handle, offset, data) {
    const h = handleArg(handle);
    const off = u32(offset, 'offset');
    const bytes = bytesOf(data);
    this.#liveRange(h, off, bytes.length, 'writeData');
    const p = this.#malloc(bytes.length);
    try {
      this.#u8().set(bytes, p);
      this.#check(this.#M._walloc_write_data(h, off, p, bytes.length), `writeData(${bytes.length} bytes at ${off})`);
    } finally {
      this.#free(p);
    }
  }

  // A copy (Uint8Array of its own) of length bytes at offset.
  readData(handle, offset, length) {
    const h = handleArg(handle);
    const off = u32(offset, 'offset');
    const n = u32(length, 'length');
    this.#liveRange(h, off, n, 'readData');
    const p = this.#malloc(n);
    try {
      this.#check(this.#M._walloc_read_data(h, off, p, n), `readData(${n} bytes at ${off})`);
      return this.#u8().slice(p, p + n);
    } finally {
      this.#free(p);
    }
  }

  // ops: [{dst, dstOffset, src, srcOffset, length}]. Ops are independent, as
  // in C: every valid op is done. Returns how many were done; if one failed,
  // throws a WallocError (the first failure's status) with .completed and
  // .failures [{index, status}].
  bulkCopy(ops) {
    if (!Array.isArray(ops)) throw new WallocError('WALLOC_ERR_INVALID', 'bulkCopy takes an array');
    const count = ops.length;
    if (count === 0) return 0;
    const list = ops.map((o) => ({
      dst: handleArg(o.dst), dstOffset: u32(o.dstOffset ?? 0, 'dstOffset'),
      src: handleArg(o.src), srcOffset: u32(o.srcOffset ?? 0, 'srcOffset'), length: u32(o.length, 'length'),
    }));
    const p = this.#malloc(32 * count);
    try {
      const dv = this.#dv();
      list.forEach((o, i) => {
        const b = p + 32 * i;
        dv.setBigUint64(b, o.dst, true);
        dv.setUint32(b + 8, o.dstOffset, true);
        dv.setBigUint64(b + 16, o.src, true);
        dv.setUint32(b + 24, o.srcOffset, true);
        dv.setUint32(b + 28, o.length, true);
      });
      const done = this.#M._walloc_bulk_copy(p, count) >>> 0;
      if (done === count) return done;
      const failures = [];
      for (let i = 0; i < count; i++) {
        const st = this.#M._wjs_copy_op_status(p, i);
        if (st !== 0) failures.push({ index: i, status: statusName(st) });
      }
      const first = failures[0] ?? { index: -1, status: 'WALLOC_ERR_INVALID' };
      throw new WallocError(first.status, `bulkCopy: ${count - done} of ${count} ops failed (first: op ${first.index})`,
        { completed: done, failures });
    } finally {
      this.#free(p);
    }
  }

  // A typed array of Type (Uint8Array by default) over the block, made on the
  // memory's current buffer. byteOffset and length (in elements) are optional;
  // by default the view covers the whole usable block. Do not keep it across
  // calls that may grow memory: call view() again (a stale view has length 0).
  view(handle, Type = Uint8Array, byteOffset = 0, length = undefined) {
    const h = handleArg(handle);
    if (typeof Type !== 'function' || !Number.isInteger(Type.BYTES_PER_ELEMENT)) {
      throw new WallocError('WALLOC_ERR_INVALID', 'view(handle, Type): Type is a typed array constructor');
    }
    const st = this.#handleStatus(h);
    if (st !== 0) throw new WallocError(statusName(st), 'view: the handle is not a live block');
    const ptr = this.#M._walloc_handle_to_ptr(h) >>> 0;
    const size = this.#M._walloc_handle_size(h) >>> 0;
    const off = u32(byteOffset, 'byteOffset');
    const es = Type.BYTES_PER_ELEMENT;
    if (off > size) throw new WallocError('WALLOC_ERR_BOUNDS', `view: byteOffset ${off} past the ${size}-byte block`);
    if ((ptr + off) % es !== 0) throw new WallocError('WALLOC_ERR_INVALID', `view: byteOffset ${off} is not aligned for ${Type.name}`);
    const n = length === undefined ? Math.floor((size - off) / es) : u32(length, 'length');
    if (n * es > size - off) throw new WallocError('WALLOC_ERR_BOUNDS', `view: ${n} ${Type.name} elements at ${off} exceed the ${size}-byte block`);
    return new Type(this.#memory.buffer, ptr + off, n);
  }

  // ---- statistics ---------------------------------------------------------

  heapStats() {
    const p = this.#malloc(80);
    try {
      this.#M._wjs_heap_stats(p);
      const dv = this.#dv();
      const v = (i) => Number(dv.getBigUint64(p + 8 * i, true));
      return {
        allocations: v(0), frees: v(1), liveBlocks: v(2), liveBytes: v(3), peakBytes: v(4),
        mappedBytes: v(5), peakMappedBytes: v(6), largeAllocations: v(7), hugeAllocations: v(8), foreignFrees: v(9),
      };
    } finally {
      this.#free(p);
    }
  }

  // {memoryBytes, heap, tiers: {render, scene, entity, fallback}}
  stats() {
    return {
      memoryBytes: this.memoryBytes(),
      heap: this.heapStats(),
      tiers: { render: this.tierStats(0), scene: this.tierStats(1), entity: this.tierStats(2), fallback: this.tierStats(3) },
    };
  }

  // ---- assets -------------------------------------------------------------

  // url: an http(s) or file URL; '' or null = paths are whole URLs.
  setBaseUrl(url) {
    const s = url == null ? '' : String(url);
    const st = this.#withCstr(s, (p) => this.#M._walloc_set_base_url(p));
    if (st !== 0) throw new WallocError(statusName(st), this.#str(this.#M._wjs_asset_error()) || 'setBaseUrl failed');
    this.#baseUrl = s;
  }
  get baseUrl() { return this.#baseUrl; }

  #assetUrl(path) {
    const sp = this.#malloc(4);
    try {
      const u = this.#withCstr(path, (pp) => this.#M._wjs_asset_url(pp, sp) >>> 0);
      if (u === 0) {
        const st = statusName(this.#dv().getInt32(sp, true));
        throw new WallocError(st, this.#str(this.#M._wjs_asset_error()) || `no URL for "${path}"`, { path });
      }
      try { return this.#str(u); } finally { this.#free(u); }
    } finally {
      this.#free(sp);
    }
  }

  // {handle, size, tier, type, loadedAtMs} or null.
  getAsset(path) {
    const p = this.#malloc(40);
    try {
      const found = this.#withCstr(path, (k) => this.#M._wjs_get_asset(k, p));
      if (!found) return null;
      const dv = this.#dv();
      return {
        handle: dv.getBigUint64(p, true), size: Number(dv.getBigUint64(p + 8, true)),
        tier: Number(dv.getBigUint64(p + 16, true)), type: Number(dv.getBigUint64(p + 24, true)),
        loadedAtMs: Number(dv.getBigUint64(p + 32, true)),
      };
    } finally {
      this.#free(p);
    }
  }

  // Registers a handle the caller filled (the C walloc_register_asset).
  // false if the key is taken.
  registerAsset(path, { handle, size, tier, type = AssetType.BINARY, loadedAtMs = 0 }) {
    const h = handleArg(handle);
    return this.#withCstr(path, (k) => this.#M._wjs_register_asset(k, h, u32(size, 'size'), tierArg(tier), type, loadedAtMs)) !== 0;
  }

  // Options of loadAsset and loadAssetsBatch (see DEFAULT_ASSET_OPTIONS):
  // fields left undefined keep their value. Throws WALLOC_ERR_INVALID for a
  // bad value (nothing is changed then). Returns the options now in force.
  setAssetOptions(options = {}) {
    this.#assetOptions = assetOptionsOf(options, this.#assetOptions);
    return this.getAssetOptions();
  }
  getAssetOptions() { return { ...this.#assetOptions }; }

  // One request (and its body) with the timeout; resolves to {status, bytes}
  // or throws a WallocError with .transient set when a retry may help.
  async #fetchOnce(url, path, o) {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    let timedOut = false;
    const timer = ctl && o.timeoutMs > 0 ? setTimeout(() => { timedOut = true; ctl.abort(); }, o.timeoutMs) : null;
    const fail = (status, message, httpStatus, transient, extra = {}) => new WallocError(status, message,
      { path, url, httpStatus, transient, ...(timedOut ? { timedOut: true } : {}), ...extra });
    const why = (e) => (timedOut ? `timed out after ${o.timeoutMs} ms` : `${e?.cause?.message ?? e?.message ?? e}`);
    try {
      let res;
      try {
        // Called as a plain function: a browser's fetch throws "Illegal
        // invocation" when its `this` is not the window (or the worker).
        const fetchFn = this.#fetch;
        res = await (ctl ? fetchFn(url, { signal: ctl.signal }) : fetchFn(url));
      } catch (e) {
        throw fail('WALLOC_ERR_IO', `loadAsset: fetching ${url} failed: ${why(e)}`, 0, true);
      }
      if (!res.ok) {
        try { await res.body?.cancel(); } catch { /* nothing to release */ }
        const notFound = res.status === 404 || res.status === 410;
        throw fail(notFound ? 'WALLOC_ERR_NOT_FOUND' : 'WALLOC_ERR_IO',
          `loadAsset: ${url} answered HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`,
          res.status, res.status >= 500 && res.status <= 599);
      }
      // A Content-Length is the size on the wire: of the decoded body only
      // when no Content-Encoding was applied.
      const lenHeader = res.headers?.get?.('content-length');
      const encoding = (res.headers?.get?.('content-encoding') ?? 'identity').trim().toLowerCase();
      const length = lenHeader != null && /^\s*\d+\s*$/.test(lenHeader) ? Number(lenHeader) : -1;
      const tooLarge = (n) => fail('WALLOC_ERR_NOMEM',
        `loadAsset: ${url} is larger than the maximum size of ${o.maxSize} bytes${n >= 0 ? ` (${n} bytes)` : ''}`,
        res.status, false, { maxSize: o.maxSize });
      const exact = length >= 0 && (encoding === '' || encoding === 'identity');
      if (exact && length > o.maxSize) {
        try { await res.body?.cancel(); } catch { /* nothing to release */ }
        throw tooLarge(length);
      }
      try {
        const bytes = await readBody(res, length, o.maxSize, exact);
        if (bytes === null) throw tooLarge(-1);
        return { status: res.status, bytes };
      } catch (e) {
        if (e instanceof WallocError) throw e;
        throw fail('WALLOC_ERR_IO', `loadAsset: reading ${url} failed: ${why(e)}`, res.status, true);
      }
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  // Fetches path (relative to the base URL) into a block of the type's tier
  // and registers it under path. Resolves to {path, handle, size, tier, type,
  // httpStatus, cached, attempts}. A path already registered with a live
  // block is not fetched again (cached: true). options: asset options for
  // this load only (see setAssetOptions). A transient failure (network
  // error, timeout, HTTP 5xx; never 4xx) is retried `retries` times after
  // retryBackoffMs, doubled each time. Rejects with a WallocError: _INVALID
  // for a bad path, type or option, _NOT_FOUND for HTTP 404 or 410, _IO for
  // a network error, a timeout (.timedOut) or another HTTP status not 2xx
  // (.httpStatus), _NOMEM if the body is larger than maxSize or the tier has
  // no room. A failed load leaves no block and no registry entry.
  async loadAsset(path, type = AssetType.BINARY, options = undefined) {
    if (typeof path !== 'string' || path === '') throw new WallocError('WALLOC_ERR_INVALID', 'loadAsset: the path is a non-empty string', { path });
    if (!Number.isInteger(type)) throw new WallocError('WALLOC_ERR_INVALID', `loadAsset: unknown asset type ${String(type)}`, { path });
    const o = options === undefined ? this.#assetOptions : assetOptionsOf(options, this.#assetOptions);
    const tier = this.#M._wjs_asset_tier(type);
    if (tier < 0) throw new WallocError('WALLOC_ERR_INVALID', `loadAsset: unknown asset type ${type}`, { path });
    const url = this.#assetUrl(path);
    const have = this.getAsset(path);
    if (have && this.#handleStatus(have.handle) === 0) return { path, ...have, httpStatus: 0, cached: true, attempts: 0 };
    if (typeof this.#fetch !== 'function') throw new WallocError('WALLOC_ERR_UNSUPPORTED', 'loadAsset: no fetch in this JavaScript runtime', { path });

    let got;
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        got = await this.#fetchOnce(url, path, o);
        break;
      } catch (e) {
        if (e instanceof WallocError) e.attempts = attempts;
        if (!e?.transient || attempts > o.retries) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, o.retryBackoffMs * 2 ** (attempts - 1)));
    }
    const { bytes } = got;
    const httpStatus = got.status;

    // From here on the block is ours until the registry holds it.
    const handle = this.allocate(bytes.length, tier);
    let registered = false;
    try {
      this.writeData(handle, 0, bytes);
      const loadedAtMs = Date.now();
      // A registered path whose block went stale (reset, compaction) is
      // replaced, as the C loader does: drop the dead entry first.
      const dead = this.getAsset(path);
      if (dead && this.#handleStatus(dead.handle) !== 0) this.evictAsset(path);
      registered = this.#withCstr(path, (k) => this.#M._wjs_register_asset(k, handle, bytes.length, tier, type, loadedAtMs)) !== 0;
      if (!registered) {
        // Another load of the same path registered first: keep that one, as the C loader does.
        const other = this.getAsset(path);
        if (other && this.#handleStatus(other.handle) === 0) {
          return { path, ...other, httpStatus, cached: true, attempts };
        }
        throw new WallocError('WALLOC_ERR_NOMEM', `loadAsset: "${path}" could not be registered`, { path, url });
      }
      return { path, handle, size: bytes.length, tier, type, loadedAtMs, httpStatus, cached: false, attempts };
    } finally {
      if (!registered) this.#M._walloc_deallocate(handle);
    }
  }

  // requests: paths or {path, type}. Loads them with at most `concurrency`
  // requests in flight (the asset options, or options for this batch); one
  // failing does not fail the others. Resolves (never rejects, but for a bad
  // argument) to one result per request, in order: {path, ok: true, handle,
  // size, tier, type, httpStatus, cached, attempts} or {path, ok: false,
  // status, error (the WallocError), httpStatus}.
  async loadAssetsBatch(requests, type = AssetType.BINARY, options = undefined) {
    if (!Array.isArray(requests)) throw new WallocError('WALLOC_ERR_INVALID', 'loadAssetsBatch takes an array');
    const o = options === undefined ? this.#assetOptions : assetOptionsOf(options, this.#assetOptions);
    const results = new Array(requests.length);
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const i = next++;
        const r = requests[i];
        const obj = typeof r === 'object' && r !== null;
        const path = obj ? r.path : r;
        try {
          const v = await this.loadAsset(path, obj ? r.type ?? type : type, o);
          results[i] = { ok: true, ...v };
        } catch (e) {
          results[i] = { path, ok: false, status: e?.status ?? 'WALLOC_ERR_IO', error: e, httpStatus: e?.httpStatus ?? 0 };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, requests.length) }, worker));
    return results;
  }

  // Removes path from the registry and releases its block (its handle goes
  // stale). false if no such asset.
  evictAsset(path) {
    return this.#withCstr(path, (k) => this.#M._walloc_evict_asset(k)) !== 0;
  }

  // How many of paths were evicted.
  evictAssetsBatch(paths) {
    if (!Array.isArray(paths)) throw new WallocError('WALLOC_ERR_INVALID', 'evictAssetsBatch takes an array');
    if (paths.length === 0) return 0;
    const keys = [];
    let arr = 0;
    try {
      for (const p of paths) keys.push(this.#cstr(p));
      arr = this.#malloc(4 * keys.length);
      const dv = this.#dv();
      keys.forEach((k, i) => dv.setUint32(arr + 4 * i, k, true));
      return this.#M._walloc_evict_assets_batch(arr, keys.length) >>> 0;
    } finally {
      if (arr) this.#free(arr);
      for (const k of keys) this.#free(k);
    }
  }
}
