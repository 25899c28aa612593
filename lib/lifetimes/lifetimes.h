/* lifetimes.h: memory grouped by how long it lives, on top of the heap and
 * the tiers (include/walloc.h, "Lifetimes").
 *
 *   frame.c    per-thread frame arenas (pointers; chunks from the OS layer)
 *   pool.c     fixed-size object pools with per-thread caches (pointers)
 *   owner.c    tier memory owned by a scope or a context: bump
 *              sub-allocation of handles inside chunks drawn from a tier,
 *              released together, and the chunk caches
 *   scope.c    per-thread nested scopes with budgets
 *   context.c  reference-counted owners with children
 *   ring.c     frames-in-flight rings
 *   promote.c  copying a block into another tier
 */
#ifndef WL_LIFETIMES_H
#define WL_LIFETIMES_H

#include "../tiers/tiers.h"

/* Lock levels (platform.h): a context's, a ring's, a pool's and a depot
   shard's lock call the tiers and the heap while held; the context tree and
   the pool registry take those. */
#define WL_LEVEL_LIFETIMES     (WL_LEVEL_TIERS_TOP + 1) /* each context, ring, pool, depot shard */
#define WL_LEVEL_LIFETIMES_TOP (WL_LEVEL_TIERS_TOP + 2) /* the context tree, the pool registry */

/* ------------------------------------------------------------------------
   Statistics of scopes, rings and pools as a whole (walloc_stats_json);
   each is read without stopping other threads (relaxed: racy but whole).
   ------------------------------------------------------------------------ */
typedef struct wl_scope_stats_s {
  uint64_t entered;      /* scopes the calling thread ever entered */
  uint64_t open;         /* its scopes open now (the depth) */
  uint64_t used_bytes;   /* bytes of the blocks its open scopes hold */
} wl_scope_stats_t;
void wl_scope_stats(wl_scope_stats_t *out);   /* scope.c: the calling thread's */
typedef struct wl_ring_stats_s {
  uint64_t created, live;
  uint64_t bytes;        /* tier bytes the live rings hold */
} wl_ring_stats_t;
void wl_ring_stats(wl_ring_stats_t *out);     /* ring.c: the process's */
typedef struct wl_pools_stats_s {
  uint64_t pools;        /* live pools; the rest sums walloc_pool_stats over them */
  uint64_t objects, slab_bytes, magazines_taken;
} wl_pools_stats_t;
void wl_pools_stats(wl_pools_stats_t *out);   /* pool.c: the process's */

/* ------------------------------------------------------------------------
   owner.c: tier memory owned by a scope or a context. Blocks are bumped
   inside 64 KiB chunks taken from the tier (bigger blocks get a chunk of
   their own); each block has its slot entry (allocated, owned, version + 1
   over the last block at that offset), so its handle is an ordinary one,
   checked like any other. Releasing clears the entries' allocated bits
   over the used part of each chunk and gives the chunks back: the cost is
   per chunk and per granule used, never per block.
   ------------------------------------------------------------------------ */
#define WL_OWNER_CHUNK      ((size_t)64 << 10)
#define WL_OWNER_BLOCK_MAX  ((size_t)16 << 10)   /* bigger blocks get their own chunk */

typedef struct wl_chunk_s {
  uint64_t off;          /* tier offset of the chunk */
  uint64_t begin, cur;   /* the part in use: [begin, cur) */
  uint64_t end;
  uint64_t gen;          /* tier generation it was last found valid in */
  uint32_t std;          /* a standard chunk (WL_OWNER_CHUNK bytes or more), kept between scopes */
  uint32_t dead;         /* a reset or compaction took it */
} wl_chunk_t;

/* The chunks a thread keeps between its scopes (per tier), each with the
   place the last scope stopped: the next one goes on from there, so a loop
   of short scopes walks a whole chunk before reusing an offset. Keeping
   them in the thread keeps their memory in its core's caches: through the
   tier's shared free lists, two threads' scopes traded chunks every round
   (24 instead of 16.5 ns per object with two threads in bench-lifetimes).
   How many: as many as the thread's scopes drew between two outermost
   leaves, at the most, over the last 64 such cycles (and never more than
   WL_CHUNK_CACHE_MAX); the rest go back to the tier. */
#define WL_CHUNK_CACHE_MAX    256   /* 16 MiB */
#define WL_CHUNK_CACHE_CYCLES 64
typedef struct wl_chunk_cache_s {
  wl_chunk_t *chunk;     /* from the internal heap, grown as needed */
  uint32_t n, cap;
  uint32_t drawn;        /* chunks taken since the last outermost leave */
  uint32_t peak, peak_prev, cycles;
} wl_chunk_cache_t;

/* walloc.h's walloc_owner_window_, as the library writes it. */
typedef struct wl_owner_window_s {
  uint64_t cur, end, hbase, gen;
  const walloc_tier_map_ *tier;
  uint64_t fast_max;
  _Atomic(uint64_t) used;
} wl_owner_window_t;
#define WL_WIN_SAME(a) (offsetof(wl_owner_window_t, a) == offsetof(walloc_owner_window_, a))
_Static_assert(WL_WIN_SAME(cur) && WL_WIN_SAME(end) && WL_WIN_SAME(hbase) && WL_WIN_SAME(gen) && WL_WIN_SAME(tier) &&
                   WL_WIN_SAME(fast_max) && WL_WIN_SAME(used) && sizeof(wl_owner_window_t) == sizeof(walloc_owner_window_),
               "walloc_owner_window_ (walloc.h) must mirror wl_owner_window_t: change both and renumber WALLOC_SCOPE_OPEN_");
#define wl_owner_window_map(w) ((walloc_owner_window_ *)(void *)(w))

typedef struct wl_owner_s {
  /* The current chunk's free part, bumped by walloc_owner_bump_ (walloc.h,
     inline for scopes); chunks[n-1].cur is behind it until owner.c syncs.
     w.used: bytes of the blocks handed out (requests rounded up to the
     granule), read by other threads. */
  wl_owner_window_t w;
  unsigned tier;
  uint32_t n, cap;
  uint64_t small_max;    /* the largest request the bump path serves */
  wl_chunk_t *chunks;    /* chunks[n-1] is the current one */
  wl_chunk_t first;      /* storage for the first chunk */
} wl_owner_t;

/* The calling thread as walloc.h's inline scope and context paths name it
   (&walloc_thread_; any unique id on wasm, where they are not inline). */
WL_INLINE uintptr_t wl_owner_thread(void) {
#if defined(__wasm__)
  return wl_os_thread_id();
#else
  return (uintptr_t)&wl_tier_self;
#endif
}

void wl_owner_init(wl_owner_t *o, unsigned tier);
/* The fast path, inline in its callers: a small block bumped in the
   current chunk, still live in the tier's current generation; else
   WALLOC_NULL_HANDLE (then wl_owner_alloc). */
WL_INLINE walloc_handle wl_owner_alloc_fast(wl_owner_t *o, size_t size) {
  walloc_handle h;
  return walloc_owner_bump_(wl_owner_window_map(&o->w), size, o->small_max, &h) ? h : WALLOC_NULL_HANDLE;
}
walloc_handle wl_owner_alloc(wl_owner_t *o, size_t size, wl_chunk_cache_t *cache, walloc_status *st);
void wl_owner_release(wl_owner_t *o, wl_chunk_cache_t *cache); /* every block; o stays usable */
void wl_owner_forget_dead(wl_owner_t *o);                     /* after a reset: drop chunks it took */
void wl_chunk_cache_drop(wl_chunk_cache_t *cache, unsigned tier);
void wl_chunk_cache_cycle(wl_chunk_cache_t *cache, unsigned tier); /* at each outermost scope leave */
/* The bytes a block of size takes (0: too big for any block). */
WL_INLINE size_t wl_owner_block_size(unsigned tier, size_t size) {
  wl_tier_t *t = &wl_tiers.tier[tier];
  return (size_t)wl_tier_granules(t, size) << t->granule_shift;
}

#endif
