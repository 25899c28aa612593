// walloc.d.ts: types of wasm/walloc.mjs, the JavaScript API of walloc's
// WebAssembly build. Handles are BigInts (64 bits: offset, generation,
// version, and bit 63 for fallback-tier blocks, so they pass 2^53).

export declare const Tier: Readonly<{ RENDER: 0; SCENE: 1; ENTITY: 2; FALLBACK: 3 }>;
export type TierValue = 0 | 1 | 2 | 3;
/** A tier by number or by name (case-insensitive). */
export type TierArg = TierValue | number | 'render' | 'scene' | 'entity' | 'fallback' | string;

export declare const AssetType: Readonly<{ BINARY: 0; TEXTURE: 1; MESH: 2; AUDIO: 3; SHADER: 4; JSON: 5 }>;
export type AssetTypeValue = 0 | 1 | 2 | 3 | 4 | 5;

export type StatusName =
  | 'WALLOC_OK' | 'WALLOC_ERR_NOMEM' | 'WALLOC_ERR_INVALID' | 'WALLOC_ERR_BOUNDS' | 'WALLOC_ERR_STALE'
  | 'WALLOC_ERR_BUDGET' | 'WALLOC_ERR_NOT_FOUND' | 'WALLOC_ERR_IO' | 'WALLOC_ERR_UNSUPPORTED';
/** Status names in the order of the C enum walloc_status. */
export declare const STATUS_NAMES: readonly StatusName[];

export type Handle = bigint;
/** WALLOC_NULL_HANDLE: never returned; all functions refuse it. */
export declare const NULL_HANDLE: 0xffffffffffffffffn;

/** Thrown (or rejected with) on every failure; message starts with the status name. */
export declare class WallocError extends Error {
  constructor(status: StatusName, message: string, details?: Record<string, unknown>);
  readonly name: 'WallocError';
  readonly status: StatusName;
  /** allocateBatch: the request that failed. */
  readonly index?: number;
  /** bulkCopy: how many ops were done, and which failed. */
  readonly completed?: number;
  readonly failures?: { index: number; status: StatusName }[];
  /** Asset loads: the path, the URL and the HTTP status (0 when no response came). */
  readonly path?: string;
  readonly url?: string;
  readonly httpStatus?: number;
  /** Asset loads: requests made, whether a retry could have helped, whether the timeout ended the last one. */
  readonly attempts?: number;
  readonly transient?: boolean;
  readonly timedOut?: boolean;
  /** Asset loads refused as too large (WALLOC_ERR_NOMEM): the limit. */
  readonly maxSize?: number;
  /** allocate: the size and tier asked for. */
  readonly size?: number;
  readonly tier?: number;
}

export type TypedArrayConstructor =
  | Int8ArrayConstructor | Uint8ArrayConstructor | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor | BigInt64ArrayConstructor | BigUint64ArrayConstructor;

export interface AllocationRequest { size: number; tier?: TierArg }
export interface CopyOp { dst: Handle; dstOffset?: number; src: Handle; srcOffset?: number; length: number }

export interface TierStats {
  capacity: number; used: number; peak: number; freeListBytes: number;
  allocations: number; deallocations: number; resets: number; generation: number;
}
export interface HeapStats {
  allocations: number; frees: number; liveBlocks: number; liveBytes: number; peakBytes: number;
  mappedBytes: number; peakMappedBytes: number; largeAllocations: number; hugeAllocations: number;
  foreignFrees: number;
}
export interface Stats {
  /** Bytes of linear memory (grows, never shrinks). */
  memoryBytes: number;
  heap: HeapStats;
  tiers: { render: TierStats; scene: TierStats; entity: TierStats; fallback: TierStats };
}

export interface AssetMetadata {
  handle: Handle;
  /** Bytes of the asset (the block may be larger). */
  size: number;
  tier: TierValue;
  type: AssetTypeValue;
  /** 0 for an asset registered, not loaded. */
  loadedAtMs: number;
}
export interface LoadedAsset extends AssetMetadata {
  path: string;
  /** 0 when no request was made (cached). */
  httpStatus: number;
  /** true when the path was registered already with a live block, and not fetched again. */
  cached: boolean;
  /** Requests made (1 + retries used); 0 when cached. */
  attempts: number;
}

/**
 * Options of loadAsset and loadAssetsBatch; the defaults are the native
 * loader's (walloc_asset_options). All integers.
 */
export interface AssetOptions {
  /** A whole request, headers and body, in ms (0 = none). Default 60000. */
  timeoutMs?: number;
  /** Largest body in bytes (at most 2^32 - 1); larger rejects with WALLOC_ERR_NOMEM. Default 256 MiB. */
  maxSize?: number;
  /** Retries of a transient failure (network error, timeout, HTTP 5xx; never 4xx). Default 2. */
  retries?: number;
  /** Wait before the first retry in ms, doubled for each next one. Default 100. */
  retryBackoffMs?: number;
  /** Requests in flight at once in loadAssetsBatch (at least 1). Default 8. */
  concurrency?: number;
}
export declare const DEFAULT_ASSET_OPTIONS: Readonly<Required<AssetOptions>>;
export type AssetRequest = string | { path: string; type?: AssetTypeValue };
export type BatchResult =
  | ({ ok: true } & LoadedAsset)
  | { ok: false; path: string; status: StatusName; error: WallocError; httpStatus: number };

export interface WallocOptions {
  /** The Emscripten factory (default export of walloc_module.mjs). */
  createModule?: (moduleOptions?: object) => Promise<unknown>;
  /** Where to import walloc_module.mjs from (URL or path); default: next to walloc.mjs. */
  modulePath?: string | URL;
  /** Handed to the factory (print, printErr, wasmBinary, ...). */
  moduleOptions?: object;
  /** walloc_init's configuration: bytes for the three tiers, and their shares and alignments. */
  tierMemory?: number;
  tierPercent?: [number, number, number];
  tierAlignment?: [number, number, number];
  /** The fetch loadAsset uses (called as fetch(url, {signal})); default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Asset options to start with (see Walloc.setAssetOptions). */
  assetOptions?: AssetOptions;
}

export interface Walloc {
  readonly Tier: typeof Tier;
  readonly AssetType: typeof AssetType;
  readonly NULL_HANDLE: typeof NULL_HANDLE;

  version(): string;
  /** walloc_status_str: "WALLOC_ERR_STALE: ..." */
  statusString(code: number): string;
  memoryBytes(): number;

  /** Throws WALLOC_ERR_INVALID (tier, size), _NOMEM, _BUDGET. */
  allocate(size: number, tier: TierArg): Handle;
  /** All or nothing: on a failure the other blocks are given back and the error's .index names the request. */
  allocateBatch(requests: (number | AllocationRequest)[], tier?: TierArg): Handle[];
  /** Throws WALLOC_ERR_STALE for a block already reclaimed, _INVALID for a null or foreign handle. */
  deallocate(handle: Handle): void;
  /** Every handle of the tier goes stale. Not FALLBACK. */
  resetTier(tier: TierArg): void;
  /** Blocks wholly below preserveBytes (default 0) survive; the others go stale. */
  fastCompactTier(tier: TierArg, preserveBytes?: number): void;
  tierStats(tier: TierArg): TierStats;
  /** Usable bytes of a live block. */
  handleSize(handle: Handle): number;

  /** Throws WALLOC_ERR_BOUNDS if the bytes do not fit at offset, _STALE, _INVALID. */
  writeData(handle: Handle, offset: number, data: ArrayBufferView | ArrayBuffer | ArrayLike<number>): void;
  /** A copy of the bytes (a Uint8Array of its own, never on wasm memory). */
  readData(handle: Handle, offset: number, length: number): Uint8Array;
  /** Every valid op is done; throws (with .completed, .failures) if some were not. Returns the count. */
  bulkCopy(ops: CopyOp[]): number;
  /**
   * A typed array over the block, on the memory's current buffer. Memory growth
   * detaches it (length 0): call view() again rather than keeping it.
   */
  view<T extends TypedArrayConstructor = Uint8ArrayConstructor>(
    handle: Handle, Type?: T, byteOffset?: number, length?: number): InstanceType<T>;

  heapStats(): HeapStats;
  stats(): Stats;

  /** http(s) or file URL; '' or null: paths are whole URLs. */
  setBaseUrl(url: string | null): void;
  readonly baseUrl: string;
  /**
   * Fields left undefined keep their value; throws WALLOC_ERR_INVALID for a
   * bad value (and changes nothing). Returns the options now in force.
   */
  setAssetOptions(options: AssetOptions): Required<AssetOptions>;
  getAssetOptions(): Required<AssetOptions>;
  /**
   * Transient failures (network error, timeout, HTTP 5xx) are retried with
   * backoff. Rejects with WALLOC_ERR_INVALID (path, type, option),
   * _NOT_FOUND (HTTP 404, 410), _IO (network, timeout, other HTTP status not
   * 2xx), _NOMEM (larger than maxSize, or no room in the tier). A failed load
   * leaves no block and no registry entry. options: for this load only.
   */
  loadAsset(path: string, type?: AssetTypeValue, options?: AssetOptions): Promise<LoadedAsset>;
  /**
   * At most `concurrency` requests in flight. Never rejects for one failed
   * asset: one result per request, in order. options: for this batch only.
   */
  loadAssetsBatch(requests: AssetRequest[], type?: AssetTypeValue, options?: AssetOptions): Promise<BatchResult[]>;
  getAsset(path: string): AssetMetadata | null;
  /** walloc_register_asset for a block the caller filled; false if the key is taken. */
  registerAsset(path: string, metadata: { handle: Handle; size: number; tier: TierArg; type?: AssetTypeValue; loadedAtMs?: number }): boolean;
  /** Releases the block (its handle goes stale); false if no such asset. */
  evictAsset(path: string): boolean;
  /** How many were evicted. */
  evictAssetsBatch(paths: string[]): number;
}

export declare function createWalloc(options?: WallocOptions): Promise<Walloc>;
