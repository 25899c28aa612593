/* walloc.h: the public interface of walloc, a memory allocator for Linux
 * programs, game engines and WebAssembly.
 *
 * Linking libwalloc (or preloading it) also replaces malloc, free and the rest
 * of the C and C++ allocation family; the walloc_ names below reach the same
 * heap directly and add what the C library has no names for.
 * Every function is thread-safe. See docs/ for the design and the options.
 */
#ifndef WALLOC_H
#define WALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define WALLOC_EXPORT __attribute__((visibility("default")))
#define WALLOC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define WALLOC_EXPORT
#define WALLOC_MALLOC_ATTR
#endif

/* ------------------------------------------------------------------------
   Version
   ------------------------------------------------------------------------ */
#define WALLOC_VERSION_MAJOR 0
#define WALLOC_VERSION_MINOR 1
#define WALLOC_VERSION_PATCH 0
#define WALLOC_VERSION_STRING "0.1.0"

WALLOC_EXPORT const char *walloc_version(void);  /* "0.1.0" */

/* ------------------------------------------------------------------------
   The general heap (what malloc uses). Same contracts as the C library:
   NULL with errno ENOMEM when a size cannot be served, every block 16-byte
   aligned, free(NULL) does nothing.
   ------------------------------------------------------------------------ */
WALLOC_EXPORT WALLOC_MALLOC_ATTR void *walloc_malloc(size_t size);             /* like malloc */
WALLOC_EXPORT WALLOC_MALLOC_ATTR void *walloc_calloc(size_t count, size_t size); /* zeroed; ENOMEM on overflow */
WALLOC_EXPORT void *walloc_realloc(void *ptr, size_t size);                    /* like glibc realloc */
WALLOC_EXPORT void walloc_free(void *ptr);                                     /* aborts on misuse, like free */
WALLOC_EXPORT WALLOC_MALLOC_ATTR void *walloc_aligned_alloc(size_t alignment, size_t size); /* EINVAL unless a power of two */
WALLOC_EXPORT size_t walloc_usable_size(const void *ptr);                      /* 0 unless a live block starts at ptr */
WALLOC_EXPORT bool walloc_owns(const void *ptr);                               /* O(1): does a live walloc block start at ptr? */

/* Give free memory back to the operating system now (force), or only what is
   due (purge delay elapsed). Also settles other threads' pending frees to the
   caller's heap and adopts the memory of exited threads. force also gives
   back what the layers above the heap cache: the calling thread's frame
   chunks no frame in progress uses, pools' empty magazines (as when the OS
   refuses memory). */
WALLOC_EXPORT void walloc_collect(bool force);

/* ------------------------------------------------------------------------
   Statistics
   ------------------------------------------------------------------------ */
#define WALLOC_HEAP_STATS_VERSION 3

/* Set .size = sizeof(walloc_heap_stats) before the call; newer versions only
   append fields, so older callers keep working. */
typedef struct walloc_heap_stats {
  size_t size;                 /* in: sizeof the caller's struct */
  uint32_t version;            /* out: WALLOC_HEAP_STATS_VERSION */
  uint64_t allocations;        /* blocks ever handed out */
  uint64_t frees;              /* blocks ever given back */
  uint64_t live_blocks;
  uint64_t live_bytes;         /* bytes in live blocks (usable sizes) */
  uint64_t peak_bytes;
  uint64_t mapped_bytes;       /* address space walloc holds from the OS, every layer's: heap
                                  segments and huge blocks, the tiers' reservations (touched or
                                  not), frame chunks, pool slabs, asset spools */
  uint64_t peak_mapped_bytes;
  uint64_t purged_bytes;       /* physical memory given back, range kept */
  uint64_t released_bytes;     /* address space unmapped */
  size_t rss_bytes;            /* the process's resident set now */
  size_t peak_rss_bytes;
  uint64_t segments, segments_cached, segments_abandoned, segments_reclaimed;
  uint64_t large_allocations, huge_allocations, huge_cache_hits;
  uint64_t threads, threads_peak;
  uint64_t foreign_frees;      /* frees of pointers outside walloc's memory (also in invalid_frees) */
  /* version 2: misuse of free and realloc, detected (and, with
     WALLOC_MISUSE_ABORT=0, reported and ignored; otherwise the process aborts) */
  uint64_t double_frees;       /* a block freed (or reallocated) again */
  uint64_t invalid_frees;      /* interior, never handed out or foreign pointers */
  /* version 3: how long free memory waits now before it is given back (ms):
     WALLOC_PURGE_DELAY, doubled (up to 8x) while memory given back is soon
     needed again, halved after each calm second; 0: at once, -1: never */
  int64_t purge_delay_ms;
} walloc_heap_stats;

WALLOC_EXPORT void walloc_heap_stats_get(walloc_heap_stats *out);
WALLOC_EXPORT void walloc_stats_print(int fd);  /* the WALLOC_STATS table, to fd */

/* Every layer's statistics (heap, size classes, tiers, scopes, frames, pools,
   rings, assets) as one JSON document, the one WALLOC_STATS=json prints at
   exit (docs/stats.md lists the keys). Like snprintf: writes at most len
   bytes into buf, the terminating NUL included (buf may be NULL when len is
   0), and returns the length of the whole document without the NUL, so a
   result >= len means it was cut short. Never allocates. */
WALLOC_EXPORT size_t walloc_stats_json(char *buf, size_t len);

/* ------------------------------------------------------------------------
   Tiers: memory grouped by use and lifetime, reached through handles.

   A handle is a 64-bit integer (store it, send it, hash it). For the render,
   scene and entity tiers it holds the block's offset from one global base,
   so it stays valid when memory grows; it also carries the tier's
   generation and the block's version, so a handle to a block that a reset,
   a compaction or a deallocation has reclaimed is refused with
   WALLOC_ERR_STALE instead of touching reused memory. docs/tiers.md has the
   details.
   ------------------------------------------------------------------------ */
typedef uint64_t walloc_handle;              /* a global offset, storable as an integer */
#define WALLOC_NULL_HANDLE UINT64_MAX        /* 0 is a valid offset, so null is all ones */

typedef enum walloc_tier {
  WALLOC_TIER_RENDER = 0,   /* GPU-bound data: default 50 % of tier memory, 128-byte aligned */
  WALLOC_TIER_SCENE = 1,    /* scene lifetime: default 30 %, 64-byte aligned */
  WALLOC_TIER_ENTITY = 2,   /* short-lived: default 20 %, 8-byte aligned */
  WALLOC_TIER_FALLBACK = 3, /* the general heap behind malloc */
  WALLOC_TIER_COUNT
} walloc_tier;

typedef enum walloc_status {
  WALLOC_OK = 0,
  WALLOC_ERR_NOMEM,         /* the tier (or the system) has no room */
  WALLOC_ERR_INVALID,       /* a bad argument: unknown tier, null or foreign handle, bad config */
  WALLOC_ERR_BOUNDS,        /* offset and length do not fit inside the block */
  WALLOC_ERR_STALE,         /* the handle's block was reclaimed (reset, compaction, deallocation) */
  WALLOC_ERR_BUDGET,        /* a budget refused the allocation */
  WALLOC_ERR_NOT_FOUND,     /* no such asset */
  WALLOC_ERR_IO,            /* loading failed */
  WALLOC_ERR_UNSUPPORTED    /* not available in this build or on this platform */
} walloc_status;

WALLOC_EXPORT const char *walloc_status_str(walloc_status s); /* "WALLOC_ERR_STALE: ..."; never NULL */

/* ------------------------------------------------------------------------
   Options (docs/options.md)

   Every setting is read from WALLOC_<NAME> (WALLOC_PURGE_DELAY=50), else
   from WALLOC_OPTIONS ("purge_delay=50,stats=1,tiers=2G:60,30,10"), else
   its default; a bad one is reported on stderr and its default used. name:
   "purge_delay" or "WALLOC_PURGE_DELAY", any case.
   walloc_option_get: the value in force (yes/no options 1/0, choices their
   index); WALLOC_ERR_NOT_FOUND for an unknown name, WALLOC_ERR_UNSUPPORTED
   for a text option (use walloc_option_text).
   walloc_option_set: for the options docs/options.md marks as changeable at
   run time; WALLOC_ERR_UNSUPPORTED for the others (and on wasm, where
   options are fixed), WALLOC_ERR_INVALID out of range. Thread-safe.
   walloc_option_text: a text option's value, NULL when unset or unknown.
   ------------------------------------------------------------------------ */
WALLOC_EXPORT walloc_status walloc_option_get(const char *name, long *value);
WALLOC_EXPORT walloc_status walloc_option_set(const char *name, long value);
WALLOC_EXPORT const char *walloc_option_text(const char *name);

typedef struct walloc_config {
  size_t tier_memory;       /* bytes for the three tiers together; 0 = default */
  unsigned tier_percent[3]; /* render, scene, entity; 0,0,0 = 50,30,20 */
  size_t tier_alignment[3]; /* 0 = 128, 64, 8 */
} walloc_config;

/* Optional, before the first tier allocation; NULL = defaults (and WALLOC_TIERS). */
WALLOC_EXPORT walloc_status walloc_init(const walloc_config *config);

typedef struct walloc_tier_stats {
  size_t capacity, used, peak, free_list_bytes;
  uint64_t allocations, deallocations, resets, generation;
} walloc_tier_stats;

/* A block of size bytes, rounded up to the tier's granule (128, 64 and 32
   bytes by default): WALLOC_NULL_HANDLE on failure. Inline (below) for
   the common case, a bump in the thread's window. */
WALLOC_EXPORT walloc_handle walloc_allocate(size_t size, walloc_tier tier);
typedef struct walloc_request {
  size_t size;
  walloc_tier tier;
} walloc_request;
WALLOC_EXPORT size_t walloc_allocate_batch(const walloc_request *requests, size_t count,
                                           walloc_handle *out); /* returns how many succeeded */
WALLOC_EXPORT walloc_status walloc_deallocate(walloc_handle handle);
/* The block's first byte, or NULL if the handle is null, stale, forged or
   foreign: every handle is checked (inline, a few loads and compares, for a
   live block of the tier's current generation; by a call otherwise). */
WALLOC_EXPORT void *walloc_handle_to_ptr(walloc_handle handle);
/* The same for a handle the caller knows is live: no check at all (an add
   and a mask; fallback handles take the call). For inner loops over blocks
   whose lifetime the code already guarantees. A stale handle gives a pointer
   into the tier's reused memory, a forged one any address. In a library
   built with -Ddebug_checks=true it checks like walloc_handle_to_ptr. */
WALLOC_EXPORT void *walloc_handle_ptr_unchecked(walloc_handle handle);
WALLOC_EXPORT walloc_handle walloc_ptr_to_handle(const void *ptr); /* the block starting at ptr */
WALLOC_EXPORT size_t walloc_handle_size(walloc_handle handle);    /* usable bytes, 0 if invalid */
WALLOC_EXPORT walloc_status walloc_write_data(walloc_handle handle, size_t offset, const void *data,
                                              size_t length);
WALLOC_EXPORT walloc_status walloc_read_data(walloc_handle handle, size_t offset, void *out, size_t length);
typedef struct walloc_copy_op {
  walloc_handle dst;
  size_t dst_offset;
  walloc_handle src;
  size_t src_offset;
  size_t length;
} walloc_copy_op;
WALLOC_EXPORT size_t walloc_bulk_copy(const walloc_copy_op *ops, size_t count); /* how many succeeded */
WALLOC_EXPORT walloc_status walloc_reset_tier(walloc_tier tier);                /* O(1); not FALLBACK */
WALLOC_EXPORT walloc_status walloc_fast_compact_tier(walloc_tier tier, size_t preserve_bytes);
WALLOC_EXPORT walloc_status walloc_tier_stats_get(walloc_tier tier, walloc_tier_stats *out);

/* ------------------------------------------------------------------------
   Inline handle resolution (GCC and clang; define WALLOC_NO_INLINE_HANDLES
   for plain calls). What follows, but for the two macros, is walloc's
   private business (names ending in _): the map is read-only to callers,
   and its layout is versioned. The library publishes WALLOC_MAP_ABI_ in
   `abi` once the tiers are set up; inline code built against another
   layout (or running before set-up) sees a different number and calls the
   library, so the layout can change without breaking built programs.
   ------------------------------------------------------------------------ */
#if defined(__GNUC__) || defined(__clang__)
#define WALLOC_MAP_ABI_ 3
#define WALLOC_INLINE_ static inline __attribute__((always_inline))
#ifdef __cplusplus
#define WALLOC_PTR_(x) reinterpret_cast<void *>(static_cast<uintptr_t>(x))
#define WALLOC_REINTERPRET_(type, x) reinterpret_cast<type>(x)
#else
#define WALLOC_PTR_(x) ((void *)(uintptr_t)(x))
#define WALLOC_REINTERPRET_(type, x) ((type)(x))
#endif

/* One tier's record as the library keeps it (lib/tiers/tiers.h asserts the
   layout): the first cache line, then the second (claimed and committed). */
typedef struct walloc_tier_map_ {
  uint64_t gen;                  /* current generation (a reset or compaction ends one) */
  unsigned char *start;          /* the tier's first byte */
  uint16_t *slots;               /* one slot entry per granule: allocated bit, version, owned bit, size */
  size_t offset;                 /* handle offset of start */
  size_t capacity;
  uint32_t granule_shift;
  uint32_t private_;
  uint64_t wtag;                 /* threads' windows serve inline allocation while their epoch is this */
  uint64_t seq;                  /* odd while a reset or compaction changes the generation */
  uint64_t top __attribute__((aligned(64))); /* bytes claimed in this generation (never above committed) */
  uint64_t committed;            /* bytes whose slot entries are readable */
} __attribute__((aligned(512))) walloc_tier_map_;

typedef struct walloc_tiers_map_ {
  uint32_t abi;                  /* WALLOC_MAP_ABI_ once the tiers are set up, else 0 */
  uint32_t abi_unchecked;        /* the same, but 0 where unchecked access checks (debug builds) */
  uintptr_t base;                /* handle offsets count from here (0 where they are addresses, wasm) */
  walloc_tier_map_ tier[3] __attribute__((aligned(512)));
} walloc_tiers_map_;

/* A const pointer (not the data itself): a copy relocation in a program
   that is not position-independent copies the pointer, never the map. */
WALLOC_EXPORT extern const walloc_tiers_map_ *const walloc_tiers_;

/* The first byte of the block h names when it is a live block of its
   tier's current generation, else NULL (the library decides then). *tier,
   *slot and *gen: what was checked. Why this is enough: docs/tiers.md,
   "Resolving a handle". */
WALLOC_INLINE_ unsigned char *walloc_handle_check_(const walloc_tiers_map_ *m, walloc_handle h, unsigned *tier,
                                                   uint16_t *slot, uint64_t *gen) {
  if (__atomic_load_n(&m->abi, __ATOMIC_ACQUIRE) != WALLOC_MAP_ABI_ || (h >> 63) != 0) return NULL;
  uint64_t goff = h & ((UINT64_C(1) << 36) - 1);
  /* the tier by branches, not by an index computed from loads: a loop over
     one tier's handles predicts them, and what follows need not wait for
     the compares (0.8 ns of 5.7 per object in bench-frame tier-resolve) */
  unsigned i;
  if (goff >= m->tier[2].offset) i = 2;
  else if (goff >= m->tier[1].offset) i = 1;
  else i = 0;
  const walloc_tier_map_ *t = &m->tier[i];
  uint64_t off = goff - t->offset; /* below the tier: wraps, and fails the top test */
  unsigned shift = t->granule_shift;
  uint64_t granule = off >> shift;
  /* a consistent view of generation and top, as a sequence lock: a reset
     under way (seq odd, or changed meanwhile) leaves the answer to the library */
  uint64_t seq = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
  uint64_t g = __atomic_load_n(&t->gen, __ATOMIC_RELAXED);
  /* below top (so inside the tier, its slot entry committed, and cleared
     when its space was claimed in this generation), granule aligned */
  if ((seq & 1) != 0 || (((h >> 36) ^ g) & ((1u << 21) - 1)) != 0 || (granule << shift) != off ||
      off >= __atomic_load_n(&t->top, __ATOMIC_RELAXED)) {
    return NULL;
  }
  uint16_t s = __atomic_load_n(&t->slots[granule], __ATOMIC_ACQUIRE);
  /* allocated, with the handle's version */
  if ((s & 0x7Fu) != ((((h >> 57) & 63u) << 1) | 1u)) return NULL;
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (__atomic_load_n(&t->seq, __ATOMIC_RELAXED) != seq) return NULL;
  *tier = i;
  *slot = s;
  *gen = g;
  return t->start + off;
}

WALLOC_INLINE_ void *walloc_handle_to_ptr_inline_(walloc_handle h) {
  unsigned tier;
  uint16_t slot;
  uint64_t gen;
  unsigned char *p = walloc_handle_check_(walloc_tiers_, h, &tier, &slot, &gen);
  if (__builtin_expect(p != NULL, 1)) return p;
  return walloc_handle_to_ptr(h);
}

WALLOC_INLINE_ void *walloc_handle_ptr_unchecked_inline_(walloc_handle h) {
  const walloc_tiers_map_ *m = walloc_tiers_;
  if (__builtin_expect((h >> 63) == 0 && __atomic_load_n(&m->abi_unchecked, __ATOMIC_RELAXED) == WALLOC_MAP_ABI_, 1)) {
    /* an add and a mask, in integers: base may be 0 (wasm), and a null
       pointer plus an offset would let the compiler assume it stays null */
    return WALLOC_PTR_(m->base + (h & ((UINT64_C(1) << 36) - 1)));
  }
  return walloc_handle_ptr_unchecked(h);
}

/* Inline allocation from the calling thread's window (not on wasm): the
   library's own fast path (walloc_tier_bump_, which the library calls
   too), in the caller's code, over the thread's records, which the
   library exports as thread-local data (initial-exec, like all of
   walloc's). A block under 128 granules is bumped from the window while
   the window's epoch is its tier's tag; anything else (a first call, a
   reset, a budget change, freed blocks waiting, a full window, a big
   block, a bad tier) calls the library. */
typedef struct walloc_tier_ctx_map_ {
  uint64_t epoch;                /* the tier's wtag when the window was taken */
  uint64_t cur, end;             /* bump from cur up to end (tier offsets) */
  uint64_t hbase;                /* handle = hbase + offset */
  uint64_t allocations;
  uint64_t private_[3];
} __attribute__((aligned(64))) walloc_tier_ctx_map_;

/* A block of size bytes bumped in the window c of tier t: 1 and its
   handle in *h, or 0 when the fast path cannot serve it. */
WALLOC_INLINE_ int walloc_tier_bump_(const walloc_tier_map_ *t, walloc_tier_ctx_map_ *c, size_t size,
                                     walloc_handle *h) {
  uint64_t n = size;
  if (__builtin_expect(__atomic_load_n(&c->epoch, __ATOMIC_RELAXED) == __atomic_load_n(&t->wtag, __ATOMIC_RELAXED),
                       1)) {
    unsigned shift = t->granule_shift;
    uint64_t g1 = (n - 1) >> shift; /* granules - 1 (size 0 wraps: the slow path) */
    uint64_t cur = __atomic_load_n(&c->cur, __ATOMIC_RELAXED);
    uint64_t next = cur + ((g1 + 1) << shift);
    if (__builtin_expect(g1 < 127u && next <= __atomic_load_n(&c->end, __ATOMIC_RELAXED), 1)) {
      __atomic_store_n(&c->cur, next, __ATOMIC_RELAXED);
      uint16_t entry = ((g1 + 1) << 8) | 1u; /* allocated, version 0, the size in granules */
      __atomic_store_n(&t->slots[cur >> shift], entry, __ATOMIC_RELAXED);
      __atomic_store_n(&c->allocations, __atomic_load_n(&c->allocations, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
      *h = __atomic_load_n(&c->hbase, __ATOMIC_RELAXED) + cur;
      return 1;
    }
  }
  return 0;
}

/* An owner's bump window (a scope's or a context's current chunk, tier
   offsets): the library's owner fast path, which walloc.h inlines for
   scopes. The library keeps the layout (lib/lifetimes/lifetimes.h asserts
   it); a change renumbers WALLOC_SCOPE_OPEN_. */
typedef struct walloc_owner_window_ {
  uint64_t cur, end;             /* bump from cur up to end */
  uint64_t hbase;                /* handle = hbase + offset + (version << 57) */
  uint64_t gen;                  /* the tier generation the chunk is live in (~0: none) */
  const walloc_tier_map_ *tier;
  uint64_t fast_max;             /* requests of 1 to fast_max bytes may be bumped inline (0: none) */
  uint64_t used;                 /* bytes handed out (each request rounded up to the granule) */
} walloc_owner_window_;

/* A block of 1 to limit bytes bumped in the owner's window w, with its
   slot entry (allocated, owned, one version above the last block there):
   1 and its handle in *h, or 0 when the library must serve it (too big,
   the window is full, or a reset or compaction took the chunk). */
WALLOC_INLINE_ int walloc_owner_bump_(walloc_owner_window_ *w, size_t size, uint64_t limit, walloc_handle *h) {
  uint64_t n = size;
  if (__builtin_expect(n - 1 < limit, 1)) { /* size 0 wraps: the library */
    const walloc_tier_map_ *t = w->tier;
    unsigned shift = t->granule_shift;
    uint64_t g = ((n - 1) >> shift) + 1;
    uint64_t off = w->cur, next = off + (g << shift);
    if (__builtin_expect(next <= w->end && w->gen == __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE), 1)) {
      w->cur = next;
      uint16_t *slot = &t->slots[off >> shift];
      uint64_t v = ((__atomic_load_n(slot, __ATOMIC_RELAXED) >> 1) + 1u) & 63u;
      uint16_t entry = (g << 8) | 0x80u | (v << 1) | 1u; /* allocated, owned, version v, g granules */
      __atomic_store_n(slot, entry, __ATOMIC_RELEASE);
      __atomic_store_n(&w->used, w->used + (g << shift), __ATOMIC_RELAXED);
      *h = w->hbase + off + (v << 57);
      return 1;
    }
  }
  return 0;
}

#if !defined(__wasm__)
typedef struct walloc_thread_map_ {
  walloc_tier_ctx_map_ ctx[3];
} walloc_thread_map_;

WALLOC_EXPORT extern __thread walloc_thread_map_ walloc_thread_ __attribute__((tls_model("initial-exec")));

WALLOC_INLINE_ walloc_handle walloc_allocate_inline_(size_t size, walloc_tier tier) {
  const walloc_tiers_map_ *m = walloc_tiers_;
  unsigned i = tier;
  walloc_handle h;
  /* i < 3 there already; the index says it again for GCC's object-size
     warnings, which otherwise see a constant fallback tier (3) index past
     the thread's third record (the compiler drops the repeat) */
  if (__builtin_expect(i < 3u && __atomic_load_n(&m->abi, __ATOMIC_ACQUIRE) == WALLOC_MAP_ABI_ &&
                           walloc_tier_bump_(&m->tier[i], &walloc_thread_.ctx[i < 3u ? i : 2u], size, &h),
                       1)) {
    return h;
  }
  return walloc_allocate(size, tier);
}
#endif

#if !defined(WALLOC_NO_INLINE_HANDLES)
#if !defined(__wasm__)
#define walloc_allocate(size, tier) walloc_allocate_inline_((size), (tier))
#endif
#define walloc_handle_to_ptr(h) walloc_handle_to_ptr_inline_(h)
#define walloc_handle_ptr_unchecked(h) walloc_handle_ptr_unchecked_inline_(h)
#endif
#endif

/* ------------------------------------------------------------------------
   Lifetimes: memory grouped by how long it lives (docs/lifetimes.md).
   ------------------------------------------------------------------------ */

/* Why the calling thread's last failed lifetime call (one that returned the
   null handle or NULL) failed: WALLOC_ERR_BUDGET, _NOMEM, _INVALID, ...
   Only failures set it. */
WALLOC_EXPORT walloc_status walloc_last_status(void);
/* This thread's last failure in words, naming the call and the argument
   ("walloc_scope_leave: the scope was already left"); "" before any. */
WALLOC_EXPORT const char *walloc_last_error(void);

/* Scopes: a checkpoint with a budget. Leaving releases everything allocated
   inside at once. A scope belongs to the thread that entered it (other
   threads are refused with WALLOC_ERR_INVALID); scopes nest to any depth,
   and an allocation counts against the budget of every enclosing scope
   that has one. */
typedef struct walloc_scope walloc_scope;
WALLOC_EXPORT walloc_scope *walloc_scope_enter(walloc_tier tier, size_t budget); /* budget 0 = unlimited */
WALLOC_EXPORT walloc_handle walloc_scope_allocate(walloc_scope *scope, size_t size);
WALLOC_EXPORT size_t walloc_scope_used(const walloc_scope *scope);
WALLOC_EXPORT void walloc_scope_leave(walloc_scope *scope);

#if defined(__GNUC__) || defined(__clang__)
static inline void walloc_scope_cleanup_(walloc_scope **scope) {
  if (*scope != NULL) walloc_scope_leave(*scope);
}
/* WALLOC_SCOPE(name, tier, budget): a scope left automatically when the
   enclosing C block ends (also by return, break or goto). */
#define WALLOC_SCOPE(name, tier, budget) \
  walloc_scope *name __attribute__((cleanup(walloc_scope_cleanup_))) = walloc_scope_enter((tier), (budget))
#endif

#if (defined(__GNUC__) || defined(__clang__)) && !defined(__wasm__)
/* Inline scope allocation (not on wasm): the library's owner fast path
   (walloc_owner_bump_) in the caller's code, for an open scope of the
   calling thread without a budget around it; anything else calls the
   library, which checks and reports. A scope record starts like this
   while it is open; the state word names the layout. */
#define WALLOC_SCOPE_OPEN_ 0x53636f01u
typedef struct walloc_scope_map_ {
  uint32_t state;                /* WALLOC_SCOPE_OPEN_ while open */
  uint32_t private_;
  uintptr_t thread;              /* &walloc_thread_ of the thread that entered it */
  walloc_owner_window_ w;
} walloc_scope_map_;

WALLOC_INLINE_ walloc_handle walloc_scope_allocate_inline_(walloc_scope *scope, size_t size) {
  walloc_scope_map_ *s = WALLOC_REINTERPRET_(walloc_scope_map_ *, scope);
  walloc_handle h;
  if (__builtin_expect(s != NULL && s->state == WALLOC_SCOPE_OPEN_ &&
                           s->thread == WALLOC_REINTERPRET_(uintptr_t, &walloc_thread_) &&
                           walloc_owner_bump_(&s->w, size, s->w.fast_max, &h),
                       1)) {
    return h;
  }
  return walloc_scope_allocate(scope, size);
}
#if !defined(WALLOC_NO_INLINE_HANDLES)
#define walloc_scope_allocate(scope, size) walloc_scope_allocate_inline_((scope), (size))
#endif
#endif

/* Contexts: named owners of allocations in a tier, with reference counts and
   children. Releasing the last reference does not free the allocations:
   they live until the context's parent is reset, or the tier is. */
typedef struct walloc_context walloc_context;
WALLOC_EXPORT walloc_context *walloc_context_create(walloc_tier tier, walloc_context *parent);
WALLOC_EXPORT walloc_context *walloc_context_retain(walloc_context *ctx);
WALLOC_EXPORT void walloc_context_release(walloc_context *ctx);
WALLOC_EXPORT walloc_handle walloc_context_allocate(walloc_context *ctx, size_t size);
WALLOC_EXPORT void walloc_context_reset(walloc_context *ctx); /* also resets its children */

#if (defined(__GNUC__) || defined(__clang__)) && !defined(__wasm__)
/* Inline context allocation (not on wasm). A context allocated from by one
   thread only is that thread's: it bumps without a lock, in the caller's
   code (walloc_owner_bump_), flagging itself busy meanwhile; another
   thread that needs the context (to allocate, reset or release) takes it
   back with an asymmetric fence (lib/lifetimes/context.c). Anything else
   calls the library. A live context record starts like this; the magic
   word names the layout. */
#define WALLOC_CONTEXT_LIVE_ 0x43747801u
typedef struct walloc_context_map_ {
  uint32_t magic;                /* WALLOC_CONTEXT_LIVE_ while live */
  uint32_t refs;
  uintptr_t bias;                /* &walloc_thread_ of the thread that may bump without the lock, else 0 */
  uint32_t busy;                 /* that thread is bumping */
  uint32_t private_;
  walloc_owner_window_ w;
} walloc_context_map_;

/* A block bumped by the context's bias thread me, under the busy flag:
   1 and its handle in *h, or 0 when the library must serve it (not the
   bias thread, or the bias taken back meanwhile, or the bump refused).
   The library's walloc_context_allocate runs it too. */
WALLOC_INLINE_ int walloc_context_bump_(walloc_context_map_ *c, uintptr_t me, size_t size, walloc_handle *h) {
  if (__atomic_load_n(&c->bias, __ATOMIC_RELAXED) != me) return 0; /* only the bias thread writes busy */
  __atomic_store_n(&c->busy, 1u, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the light side of the fence */
  int ok = __atomic_load_n(&c->bias, __ATOMIC_ACQUIRE) == me && walloc_owner_bump_(&c->w, size, c->w.fast_max, h);
  __atomic_store_n(&c->busy, 0u, __ATOMIC_RELEASE); /* before any lock: a thread holding it may wait for busy */
  return ok;
}

WALLOC_INLINE_ walloc_handle walloc_context_allocate_inline_(walloc_context *ctx, size_t size) {
  walloc_context_map_ *c = WALLOC_REINTERPRET_(walloc_context_map_ *, ctx);
  walloc_handle h = 0;
  if (__builtin_expect(c != NULL && c->magic == WALLOC_CONTEXT_LIVE_ && __atomic_load_n(&c->refs, __ATOMIC_RELAXED) != 0 &&
                           walloc_context_bump_(c, WALLOC_REINTERPRET_(uintptr_t, &walloc_thread_), size, &h),
                       1)) {
    return h;
  }
  return walloc_context_allocate(ctx, size);
}
#if !defined(WALLOC_NO_INLINE_HANDLES)
#define walloc_context_allocate(ctx, size) walloc_context_allocate_inline_((ctx), (size))
#endif
#endif

/* Frame arenas: one per thread, thrown away at the end of each frame. */
WALLOC_EXPORT void walloc_frame_begin(void);
WALLOC_EXPORT void *walloc_frame_alloc(size_t size, size_t align); /* NULL outside a frame */
WALLOC_EXPORT void walloc_frame_end(void);
typedef struct walloc_frame_stats {
  size_t bytes, peak_bytes, allocations, chunks;
} walloc_frame_stats;
WALLOC_EXPORT void walloc_frame_stats_get(walloc_frame_stats *out);

/* Pools: fixed-size objects, freed from any thread. */
typedef struct walloc_pool walloc_pool;
WALLOC_EXPORT walloc_pool *walloc_pool_create(size_t object_size, size_t align);
WALLOC_EXPORT void *walloc_pool_alloc(walloc_pool *pool);
WALLOC_EXPORT void walloc_pool_free(walloc_pool *pool, void *object);
WALLOC_EXPORT void walloc_pool_destroy(walloc_pool *pool);
typedef struct walloc_pool_stats {
  size_t object_size;        /* bytes per object (the size asked, rounded up) */
  size_t objects;            /* objects cut from slabs so far: live, or free in a cache or the pool */
  size_t slab_bytes;         /* bytes of slabs mapped */
  uint64_t magazines_taken;  /* batches of free objects (or empty ones) a thread took from another
                                thread's share of the pool: stays put while each lives on its own objects */
} walloc_pool_stats;
WALLOC_EXPORT walloc_status walloc_pool_stats_get(walloc_pool *pool, walloc_pool_stats *out);

/* Promotion ("graduated migration"): copy a block into a longer-lived tier.
   The old block is released when its tier allows it (not a scope's,
   context's or ring's block). */
WALLOC_EXPORT walloc_handle walloc_promote(walloc_handle handle, walloc_tier to);

/* Frames in flight: a ring in a tier for per-frame upload data. A block
   allocated in frame F stays valid until walloc_ring_retire(ring, F). */
typedef struct walloc_ring walloc_ring;
WALLOC_EXPORT walloc_ring *walloc_ring_create(walloc_tier tier, size_t bytes);
WALLOC_EXPORT walloc_status walloc_ring_begin_frame(walloc_ring *ring, uint64_t frame);
WALLOC_EXPORT walloc_handle walloc_ring_allocate(walloc_ring *ring, size_t size);
WALLOC_EXPORT void walloc_ring_retire(walloc_ring *ring, uint64_t frame);
WALLOC_EXPORT void walloc_ring_destroy(walloc_ring *ring);

/* Budgets per tier: a soft limit calls back (once each time usage crosses
   it), a hard limit makes allocation fail with WALLOC_ERR_BUDGET. 0 = none. */
typedef void (*walloc_budget_fn)(walloc_tier tier, size_t used, size_t limit, void *arg);
WALLOC_EXPORT walloc_status walloc_set_budget(walloc_tier tier, size_t soft_limit, size_t hard_limit,
                                              walloc_budget_fn on_soft_limit, void *arg);

/* ------------------------------------------------------------------------
   Assets: files fetched over HTTP(S) (libcurl) or from file:// URLs,
   written straight into a tier block, and a registry from path to handle
   (docs/assets.md). libcurl is opened on the first load, not linked.
   Without it (meson -Dcurl=disabled, or libcurl.so.4 missing at run time)
   the registry and walloc_load_asset_zero_copy work and the load calls
   return WALLOC_ERR_UNSUPPORTED.
   ------------------------------------------------------------------------ */
typedef enum walloc_asset_type {
  WALLOC_ASSET_BINARY = 0, /* scene tier */
  WALLOC_ASSET_TEXTURE,    /* render tier */
  WALLOC_ASSET_MESH,       /* render tier */
  WALLOC_ASSET_AUDIO,      /* scene tier unless options.audio_tier says otherwise */
  WALLOC_ASSET_SHADER,     /* render tier */
  WALLOC_ASSET_JSON,       /* scene tier */
  WALLOC_ASSET_TYPE_COUNT
} walloc_asset_type;

typedef struct walloc_asset_metadata {
  walloc_handle handle;
  size_t size;                 /* bytes of the asset (the block may be larger) */
  walloc_tier tier;
  walloc_asset_type type;
  uint64_t loaded_at_ms;       /* 0 if registered, not loaded */
} walloc_asset_metadata;

WALLOC_EXPORT walloc_status walloc_set_base_url(const char *url); /* NULL or "" = paths are whole URLs */
WALLOC_EXPORT bool walloc_register_asset(const char *key, const walloc_asset_metadata *metadata); /* false if key exists */
WALLOC_EXPORT bool walloc_get_asset(const char *key, walloc_asset_metadata *out);
WALLOC_EXPORT bool walloc_evict_asset(const char *key); /* releases the block: the handle goes stale */
WALLOC_EXPORT size_t walloc_evict_assets_batch(const char *const *keys, size_t count); /* how many evicted */

WALLOC_EXPORT walloc_status walloc_load_asset(const char *path, walloc_asset_type type, walloc_handle *out);
typedef struct walloc_asset_request {
  const char *path;
  walloc_asset_type type;
} walloc_asset_request;
typedef struct walloc_asset_result {
  walloc_status status;
  walloc_handle handle;
  long http_status;            /* 0 when no HTTP response came (or file://) */
} walloc_asset_result;
WALLOC_EXPORT size_t walloc_load_assets_batch(const walloc_asset_request *requests, size_t count,
                                              walloc_asset_result *results); /* returns how many loaded */
WALLOC_EXPORT walloc_handle walloc_load_asset_zero_copy(const void *data, size_t length, walloc_tier tier);
WALLOC_EXPORT const char *walloc_asset_last_error(void); /* this thread's last error message, readable */

/* Settings. Each field's default, and the environment variable read at the
   first asset call, are in docs/assets.md; 0 / NULL fields keep the default. */
typedef void (*walloc_asset_progress_fn)(const char *path, size_t received, size_t total /* 0 = unknown */,
                                         void *arg);
typedef struct walloc_asset_options {
  long connect_timeout_ms;     /* WALLOC_ASSET_CONNECT_TIMEOUT_MS, 10000 */
  long timeout_ms;             /* WALLOC_ASSET_TIMEOUT_MS, 60000: a whole transfer */
  size_t max_size;             /* WALLOC_ASSET_MAX_SIZE, 256 MiB */
  int retries;                 /* WALLOC_ASSET_RETRIES, 2 (-1 = none): reset, timeout, 5xx; never 4xx */
  long retry_backoff_ms;       /* WALLOC_ASSET_RETRY_BACKOFF_MS, 100, doubled each retry */
  int max_redirects;           /* WALLOC_ASSET_MAX_REDIRECTS, 5 (-1 = do not follow) */
  int compressed;              /* WALLOC_ASSET_COMPRESSED, 1: send Accept-Encoding (-1 = off) */
  int verify_tls;              /* WALLOC_ASSET_VERIFY_TLS, 1 (-1 = off) */
  const char *user_agent;      /* WALLOC_ASSET_USER_AGENT, "walloc/<version>" */
  int connections;             /* WALLOC_ASSET_CONNECTIONS, 8: batch transfers at once */
  int revalidate;              /* WALLOC_ASSET_REVALIDATE, 0: loading a registered path fetches again (1) */
  int audio_tier;              /* WALLOC_ASSET_AUDIO_TIER, scene; a walloc_tier + 1 (0 = default) */
  walloc_asset_progress_fn progress; /* called as bytes arrive */
  void *progress_arg;
} walloc_asset_options;
WALLOC_EXPORT walloc_status walloc_set_asset_options(const walloc_asset_options *options);
WALLOC_EXPORT void walloc_cancel_asset_loads(void); /* loads in flight now end with WALLOC_ERR_IO, "cancelled" */

typedef struct walloc_asset_stats {
  uint64_t requests, loaded, failed, retries, cache_hits;
  uint64_t bytes_received;     /* body bytes from the network or file */
  uint64_t bytes_copied;       /* bytes moved again after the first write (growing blocks) */
} walloc_asset_stats;
WALLOC_EXPORT void walloc_asset_stats_get(walloc_asset_stats *out);

/* memcpy with kernels chosen once from the CPU's features (AVX2, SSE2, portable C). */
WALLOC_EXPORT void *walloc_memcpy(void *dst, const void *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif
