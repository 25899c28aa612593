/* heap.h: the general-purpose heap's data model and cross-file interface.
 *
 * The picture (docs/design.md draws it larger):
 *
 *   segment (4 MiB, 4 MiB aligned, owned by one thread heap)
 *   +--------+--------+--------+--------+----   ----+--------+
 *   | header | small  | medium page (4 slices)  ...   | free   |
 *   | slice  | page   |                               | span   |
 *   +--------+--------+--------+--------+----   ----+--------+
 *     slice = 64 KiB; the header slice holds one descriptor (wl_page_t) per slice.
 *
 *   page   a span of slices carved into blocks of one size class:
 *          small pages (1 slice) hold blocks up to 8 KiB, medium pages
 *          (4 slices) up to 16 KiB and (room for 4 blocks: 2 slices at
 *          most) up to 32 KiB; a large page is a span holding exactly one
 *          block of up to 2 MiB. Blocks from 32 KiB up get spans of their
 *          own because a freed span serves any size afterwards, where a page
 *          serves only its class (docs/design.md weighs the two).
 *   huge   blocks above 2 MiB get a mapping of their own (huge.c), also
 *          4 MiB aligned so the same pointer arithmetic finds their header.
 *   heap   one per thread: a queue of pages per size class, direct slots for
 *          sizes up to 1 KiB, the thread's segments and their free spans.
 *
 * Ownership test: wl_segment_map holds one byte per 4 MiB of address space
 * (per 64 KiB on wasm32, WL_MAP_SHIFT), saying whether walloc mapped a
 * segment there (and which kind). A pointer is walloc's when its byte is
 * set: one shift and one load.
 *
 * Thread model: only the owning thread touches a page's `free`, `local_free`
 * and `used`, and the heap's queues and spans, so the fast paths take no lock
 * and no atomic read-modify-write. Another thread frees by pushing onto the
 * page's atomic `xthread_free` list; the owner collects it on its slow path.
 * A page that the owner has moved to its full queue asks the first foreign
 * freer to notify it through the heap's `thread_delayed_free` list (the
 * delayed-free states below). When a thread exits, its heap's segments are
 * abandoned to a global list; the next thread that needs memory reclaims
 * them, or a thread that takes over the dead thread's blocks by freeing them
 * (segment.c, wl_segment_reclaim_on_free). Global state (segment cache,
 * abandoned list, huge cache, heap list) sits behind small locks on rare
 * paths only.
 */
#ifndef WL_HEAP_H
#define WL_HEAP_H

#include "heap_api.h" /* what the layers above see */


/* ------------------------------------------------------------------------
   Geometry
   ------------------------------------------------------------------------ */
#define WL_SEGMENT_MASK    (WL_SEGMENT_SIZE - 1)
#define WL_SLICE_SHIFT     16
#define WL_SLICE_SIZE      ((size_t)1 << WL_SLICE_SHIFT)       /* 64 KiB */
#define WL_SLICES          (WL_SEGMENT_SIZE / WL_SLICE_SIZE)   /* 64 per segment */
#define WL_SLICES_META     1                                   /* slice 0 holds the header */

#define WL_SMALL_MAX       ((size_t)8 << 10)    /* blocks up to 8 KiB: 1-slice pages */
#define WL_MEDIUM_MAX      ((size_t)32 << 10)   /* up to 32 KiB: medium pages */
#define WL_MEDIUM_WIDE     ((size_t)16 << 10)   /* up to 16 KiB: 4-slice medium pages */
/* 16 to 32 blocks of 8-16 KiB. 8 slices (32 to 64 blocks) held a thread's
   few blocks of each such class in a span twice as long: 1.04x the time and
   1.05x the memory on the workloads with such blocks (docs/runs/medium-pages.md). */
#define WL_MEDIUM_SLICES   4
#define WL_WIDE_SLICES     2                    /* above 16 KiB: 2-slice pages, 4 blocks or more */
_Static_assert(4 * WL_MEDIUM_MAX <= WL_WIDE_SLICES * WL_SLICE_SIZE, "a wide medium page holds 4 blocks");
#define WL_LARGE_MAX       ((size_t)2 << 20)    /* up to 2 MiB: one block per span */
#define WL_ALIGN_MAX_PAGE  WL_SLICE_SIZE        /* alignments a page can give for free */

#define WL_MIN_ALIGN       16                   /* every block is 16-byte aligned */
#define WL_DIRECT_WSIZE    64                   /* sizes up to 64*16 = 1 KiB index pages_direct */
#define WL_BIN_FULL        (WL_BIN_MAX + 1)     /* queue of full pages (and large pages) */
#define WL_BINS            (WL_BIN_MAX + 2)



/* Granularity of the segment map, and the alignment of a huge block's
   header. A segment's address space is free elsewhere, so on Linux both are
   the segment size and huge mappings start on 4 MiB boundaries. On wasm the
   padding up to such a boundary is real memory (1464 MiB of linear memory
   for 1152 MiB of 16 MiB blocks), so there the map has one byte per 64 KiB
   page (64 KiB of map for 4 GiB), a normal segment sets its 64 bytes, and a
   huge header only needs a page boundary. */
#if defined(__wasm__)
#define WL_MAP_SHIFT       WL_SLICE_SHIFT
#else
#define WL_MAP_SHIFT       WL_SEGMENT_SHIFT
#endif
#define WL_HUGE_ALIGN      ((size_t)1 << WL_MAP_SHIFT)
#define WL_MAP_ENTRIES     ((size_t)1 << (WL_ADDRESS_BITS - WL_MAP_SHIFT))

/* ------------------------------------------------------------------------
   Blocks, pages, segments, heaps
   ------------------------------------------------------------------------ */
/* A free block: the link of its free list, and the free tag. Every block
   is at least 16 bytes, so both fit in any block.

   The free tag (misuse detection, free.c): a block on any free list of a
   page (fresh from wl_page_extend, or freed) holds the address of its page
   descriptor in `tag`; the malloc paths clear it when they hand the block
   out. A free that finds the tag already there is a double free. The value
   is an address inside walloc's metadata, which no program holds, so a live
   block carries it only if the program copied a freed block's bytes. */
typedef struct wl_block_s {
  struct wl_block_s *next;
  _Atomic(uintptr_t) tag;  /* (uintptr_t)page while free, else the program's data */
} wl_block_t;

typedef enum wl_page_kind_e {
  WL_PAGE_NONE = 0,   /* a slice inside a span, or the header slice */
  WL_PAGE_SPAN,       /* first slice of a free span */
  WL_PAGE_SMALL,
  WL_PAGE_MEDIUM,
  WL_PAGE_LARGE,
  WL_PAGE_PURGING,    /* a free span taken out of a shared heap while it is purged (segment.c) */
} wl_page_kind_t;

/* page flags: any set flag sends free() down the generic path, through
   WL_TID_SLOW in the page's tid (one compare tests owner and flags) */
#define WL_PAGE_IN_FULL     1u  /* in the heap's full queue */
#define WL_TID_SLOW         ((uintptr_t)1)  /* thread ids are even (platform.h) */

/* xthread_free low bits: how a foreign free reaches the owner */
typedef enum wl_delayed_e {
  WL_DELAYED_NORMAL = 0,   /* push on the page's xthread_free list */
  WL_DELAYED_USE = 1,      /* page is full: push on the owner heap's delayed list */
  WL_DELAYED_FREEING = 2,  /* a foreign thread is pushing to the heap now */
  WL_DELAYED_NEVER = 3,    /* page being abandoned: never touch the heap */
} wl_delayed_t;
#define WL_DELAYED_MASK ((uintptr_t)3)

struct wl_heap_s;

/* With 32-bit pointers (wasm32) the fields take less: padded to 128 bytes. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define WL_PAGE_ALIGN
#else
#define WL_PAGE_ALIGN __attribute__((aligned(128)))
#endif

/* A page descriptor; also the descriptor of every slice (128 bytes). The
   first cache line holds what the malloc and free fast paths touch.

   Block check (free.c, wl_block_check): p is the start of one of the first
   `capacity` blocks exactly when
       x = (uint32_t)(p - start) * div_magic  (mod 2^64)  <  free_limit,
   with div_magic = floor(2^64 / block_size) + 1, e = block_size * div_magic
   - 2^64 (1 <= e <= block_size) and free_limit = capacity * e. For
   off = j * block_size + r, x = j * e + r * div_magic: below free_limit when
   r = 0 and j < capacity, at least div_magic (2^50 and more, far above any
   free_limit) otherwise, for every 32-bit offset (Lemire, Kaser and Kurz,
   "Faster remainder by direct computation", 2019, shifted by e). One
   multiply and one compare tell an interior pointer, and a pointer past the
   blocks handed out so far, from a block. Small and medium pages only. */
typedef struct wl_page_s {
  wl_block_t *free;                 /* blocks ready to allocate (owner only) */
  uint32_t used;                    /* blocks handed out and not collected back */
  uint8_t flags;                    /* WL_PAGE_IN_FULL (mirrored in tid's WL_TID_SLOW) */
  uint8_t kind;                     /* wl_page_kind_t */
  uint8_t free_is_zero;             /* every block on `free` reads as zero past `next` and `tag` */
  uint8_t bin;                      /* size class */
  uint32_t allocs;                  /* allocations served (statistics; differences mod 2^32) */
  uint32_t start_lo;                /* low 32 bits of the first block's address (block check) */
  _Atomic(uintptr_t) tid;           /* owner thread | WL_TID_SLOW; 0 when abandoned or free */
  wl_block_t *local_free;           /* freed by the owner, not yet reusable */
  uint64_t div_magic;               /* block check: floor(2^64 / block_size) + 1 */
  _Atomic(uint64_t) free_limit;     /* block check: capacity * e (raised by the owner, read by any) */
  uint32_t pad_;
  uint32_t cached_at;               /* when the page became empty (retired) or entered a
                                       thread's large cache: heap clock, compared mod 2^32 */
  /* second line: slow paths, and other threads' frees */
  _Atomic(uintptr_t) xthread_free;  /* freed by other threads | wl_delayed_t */
  _Atomic(struct wl_heap_s *) heap; /* owner heap, NULL when abandoned */
  size_t block_size;
  struct wl_page_s *next, *prev;    /* page queue or free-span queue */
  uint32_t capacity;                /* blocks initialised so far */
  uint32_t reserved;                /* blocks that fit */
  uint32_t slice_count;             /* span length (first slice of a span) */
  uint32_t allocs_synced;           /* statistics already published */
  uint32_t used_synced;
} WL_PAGE_ALIGN wl_page_t;

_Static_assert(sizeof(wl_page_t) == 128, "page descriptors are 128 bytes");

typedef enum wl_segment_kind_e { WL_SEGMENT_NORMAL = 1, WL_SEGMENT_HUGE = 2 } wl_segment_kind_t;

/* segment map values */
#define WL_MAP_NONE       0
#define WL_MAP_NORMAL     1  /* normal segment; header at the 4 MiB boundary */
#define WL_MAP_HUGE       2  /* huge block; header at the WL_HUGE_ALIGN boundary */
#define WL_MAP_HUGE_PREV  3  /* huge block aligned to WL_HUGE_ALIGN or more; header WL_HUGE_ALIGN before */

typedef struct wl_segment_s {
  _Atomic(uintptr_t) tid;           /* owner thread, 0 when abandoned or cached */
  struct wl_heap_s *heap;           /* owner heap (normal segments) */
  struct wl_segment_s *next, *prev; /* heap's list, abandoned list or cache */
  uint32_t kind;                    /* wl_segment_kind_t */
  uint32_t used;                    /* pages in use (normal) */
  uint64_t purge_mask;              /* free slices dirty since the last purge round */
  uint64_t purge_old;               /* free slices dirty for a whole round: purged next */
  uint64_t clean_mask;              /* slices known to read as zero */
  uint64_t fresh_mask;              /* slices never handed out since the segment was mapped */
  int64_t purge_expire;             /* when purge_mask is due */
  int64_t cache_expire;             /* when a cached segment (or a lent surplus) is due for release */
  void *mapped_base;                /* the mapping (may start before the header) */
  size_t mapped_size;
  size_t huge_offset;               /* huge: block start minus header */
  size_t huge_size;                 /* huge: usable bytes */
  uint32_t map_value;               /* WL_MAP_* written for this segment */
  uint16_t huge_in_cache;           /* huge: freed and cached */
  uint16_t huge_lent;               /* huge: live, with a surplus on the lent list (huge.c) */
  uint16_t abandoned;               /* normal: on the abandoned list (abandoned_lock) */
  uint16_t by_free;                 /* normal: its heap took it over at a free and has not allocated a page in it */
  int64_t purge_last;               /* when the last slice joined purge_mask */
  /* normal segments only (the map starts a line: the free path reads it): */
  _Alignas(128) wl_page_t *page_map[WL_SLICES]; /* each slice's page or free span (its first descriptor) */
  wl_page_t slices[WL_SLICES];      /* the descriptors */
} wl_segment_t;

#define WL_HUGE_HEADER ((size_t)4096)
_Static_assert(offsetof(wl_segment_t, slices) <= WL_HUGE_HEADER, "huge header fits a page");
_Static_assert(sizeof(wl_segment_t) <= WL_SLICE_SIZE, "segment header fits the meta slice");
_Static_assert(offsetof(wl_segment_t, slices) % 128 == 0, "descriptors are line aligned");

typedef struct wl_page_queue_s {
  wl_page_t *first, *last;
  size_t block_size;
} wl_page_queue_t;

/* Statistics of one size class, published by the owner thread on slow paths. */
typedef struct wl_bin_stats_s {
  _Atomic(uint64_t) allocs;       /* blocks handed out, ever */
  _Atomic(int64_t) live_blocks;   /* blocks allocated and not yet known freed */
  _Atomic(uint64_t) peak_blocks;
} wl_bin_stats_t;

/* Process-wide statistics (stats.c). Sampled at page granularity for small
   and medium blocks, exact for large and huge ones. */
typedef struct wl_stats_s {
  _Atomic(int64_t) live_bytes;
  _Atomic(uint64_t) peak_bytes;
  _Atomic(uint64_t) large_allocs, huge_allocs;
  _Atomic(int64_t) large_live, huge_live;  /* blocks */
  _Atomic(uint64_t) segments, peak_segments, segments_cached, segments_abandoned, segments_reclaimed;
  _Atomic(uint64_t) huge_cache_hits, threads, threads_peak, heaps_created;
  _Atomic(uint64_t) foreign_frees;         /* frees of pointers outside walloc's memory */
  _Atomic(uint64_t) double_frees, invalid_frees; /* misuse detected (invalid: every other kind) */
  wl_bin_stats_t bins[WL_BINS];
} wl_stats_t;

#define WL_FREED_INTO 4 /* segment.c, wl_segment_reclaim_on_free */
struct wl_heap_s {
  wl_page_t *pages_direct[WL_DIRECT_WSIZE + 1]; /* fast path: first page for each 16-byte size */
  wl_page_queue_t pages[WL_BINS];               /* a queue per size class, plus the full queue */
  _Atomic(wl_block_t *) thread_delayed_free;    /* blocks of full pages freed by other threads */
  uintptr_t tid;
  wl_segment_t *segments;                       /* owned normal segments */
  uint32_t segment_count;                       /* of them */
  uint32_t segments_by_free;                    /* of those, by_free ones (segment.c) */
  struct wl_segment_s *freed_into[WL_FREED_INTO]; /* abandoned segments this thread freed into lately */
  uint8_t freed_into_hits[WL_FREED_INTO];       /* its frees into each since it was listed */
  uint8_t freed_into_next;                      /* the entry a new one replaces */
  wl_page_queue_t spans[WL_SLICES + 1];         /* free spans by slice count */
  uint64_t span_mask;                           /* bit n-1 set when spans[n] is not empty */
  int64_t purge_due;                            /* earliest purge deadline, INT64_MAX if none */
  int64_t sweep_due;                            /* next collection of every page */
  int64_t now;                                  /* clock (ms) at the last maintenance tick */
#if defined(__wasm__)
  uint64_t maintenance_calls;                   /* wasm: the maintenance clock (heap.c) */
#endif
  uint8_t retired_min, retired_max;             /* classes that may hold retired empty pages */
  bool shared;                                  /* large.c's heap: no thread, never reclaims */
  wl_page_t *large_free;                        /* large blocks this thread freed, kept for its reuse (large.c) */
  uint32_t large_free_count, large_free_slices;
  int64_t stat_live;                            /* live bytes not yet published to wl_stats */
  int64_t stat_large_live;                      /* large blocks, likewise */
  uint64_t stat_large_allocs;
  struct wl_heap_s *next;                       /* in the recycled list */
  bool in_use;
};

/* ------------------------------------------------------------------------
   Globals
   ------------------------------------------------------------------------ */
extern _Atomic(uint8_t) wl_segment_map[WL_MAP_ENTRIES];
extern wl_heap_t wl_heap_empty;
extern wl_page_t wl_page_empty;
extern __thread wl_heap_t *wl_heap_tls __attribute__((tls_model("initial-exec")));
extern wl_stats_t wl_stats;

/* ------------------------------------------------------------------------
   Inline helpers for the fast paths
   ------------------------------------------------------------------------ */
/* Whether [p, p+size) lies in the address space the segment map covers
   (all of it with 32-bit addresses). */
WL_INLINE bool wl_in_map(uintptr_t p, size_t size) {
  return (uint64_t)p + size <= ((uint64_t)1 << WL_ADDRESS_BITS);
}
WL_INLINE unsigned wl_map_value(const void *p) {
  uintptr_t idx = (uintptr_t)p >> WL_MAP_SHIFT;
  if (WL_UNLIKELY(idx >= WL_MAP_ENTRIES)) return WL_MAP_NONE;
  return wl_load_racy(&wl_segment_map[idx]);
}
WL_INLINE wl_segment_t *wl_segment_of(const void *p) {
  return (wl_segment_t *)((uintptr_t)p & ~(uintptr_t)WL_SEGMENT_MASK);
}
/* The page (or free span) holding p, in a normal segment: one load from the
   segment's page map. */
WL_INLINE wl_page_t *wl_page_of(wl_segment_t *seg, const void *p) {
  return seg->page_map[((uintptr_t)p >> WL_SLICE_SHIFT) & (WL_SLICES - 1)];
}
WL_INLINE size_t wl_wsize(size_t size) { return (size + WL_MIN_ALIGN - 1) / WL_MIN_ALIGN; }
WL_INLINE wl_block_t *wl_delayed_ptr(uintptr_t x) { return (wl_block_t *)(x & ~WL_DELAYED_MASK); }
WL_INLINE wl_delayed_t wl_delayed_state(uintptr_t x) { return (wl_delayed_t)(x & WL_DELAYED_MASK); }
WL_INLINE uintptr_t wl_delayed_make(wl_block_t *b, wl_delayed_t s) { return (uintptr_t)b | (uintptr_t)s; }
WL_INLINE size_t wl_page_index(const wl_segment_t *seg, const wl_page_t *page) {
  return (size_t)(page - seg->slices);
}

/* The page's owner thread (without the flag bit), and setting owner and
   flags together so that WL_TID_SLOW always mirrors flags != 0. */
WL_INLINE uintptr_t wl_page_owner(const wl_page_t *page) {
  return wl_load_relaxed(&((wl_page_t *)page)->tid) & ~WL_TID_SLOW;
}
WL_INLINE void wl_page_set_owner(wl_page_t *page, uintptr_t tid, uint8_t flags) {
  page->flags = flags;
  wl_store_relaxed(&page->tid, tid == 0 ? 0 : tid | (flags != 0 ? WL_TID_SLOW : 0));
}
WL_INLINE void wl_page_set_flags(wl_page_t *page, uint8_t flags) {
  wl_page_set_owner(page, wl_page_owner(page), flags);
}

/* Is p the start of one of the page's first `capacity` blocks? (The block
   check of wl_page_t; small and medium pages.) */
WL_INLINE bool wl_block_check(const wl_page_t *page, const void *p) {
  uint32_t off = (uint32_t)(uintptr_t)p - page->start_lo;
  return (uint64_t)off * page->div_magic < wl_load_racy(&page->free_limit);
}
/* e of the block check: block_size * div_magic - 2^64. */
WL_INLINE uint32_t wl_block_check_step(const wl_page_t *page) {
  return (uint32_t)((uint64_t)page->block_size * page->div_magic);
}
/* The free tag of a block of this page (wl_block_t). */
WL_INLINE uintptr_t wl_free_tag(const wl_page_t *page) { return (uintptr_t)page; }
WL_INLINE bool wl_block_is_free(const wl_page_t *page, const void *p) {
  return wl_load_racy(&((const wl_block_t *)p)->tag) == wl_free_tag(page);
}
/* The usable size of the live small or medium block starting at p, or 0
   when p is not one (a large or huge block, or misuse: the caller asks
   wl_live_block_size, which tells them apart). The realloc path's check. */
WL_INLINE size_t wl_page_live_size(const wl_page_t *page, const void *p) {
  bool ok = (page->kind == WL_PAGE_SMALL || page->kind == WL_PAGE_MEDIUM) && wl_block_check(page, p) &&
            !wl_block_is_free(page, p);
  return ok ? page->block_size : 0;
}
/* Clock differences of 32-bit time stamps (page->cached_at): wrap-safe. */
WL_INLINE int64_t wl_clock_since(int64_t now, uint32_t then) { return (int64_t)(uint32_t)((uint32_t)now - then); }

/* ------------------------------------------------------------------------
   Cross-file functions, grouped by the file that defines them
   ------------------------------------------------------------------------ */

/* sizeclass.c */
size_t wl_bin_of(size_t size);            /* 1..WL_BIN_MAX for size <= WL_MEDIUM_MAX */
size_t wl_bin_size(size_t bin);           /* block size of a class */

/* Options: the core's table (core.h); the heap's group is read at process
   start (init.c). On wasm nothing is ever purged (the platform cannot give
   pages back; purge_delay's wasm default is -1), known at compile time: the
   purge bookkeeping compiles out. */
#define WL_PURGE_NEVER (WL_OPTIONS_FIXED && WL_PURGE_DELAY_WASM < 0)
#define WL_STATS_TABLE 1  /* WALLOC_STATS=yes */
#define WL_STATS_JSON  2  /* WALLOC_STATS=json */

/* init.c */
/* Misuse of the malloc family by the program (free.c, alloc.c, huge.c):
   reported always, with the pointer and the block it falls in, counted, and
   then the process aborts as glibc's would, unless WALLOC_MISUSE_ABORT=0,
   which reports and ignores the call. A damaged free list (the program wrote
   into freed memory) aborts in any case: nothing safe is left to do. */
typedef enum wl_misuse_e {
  WL_MISUSE_DOUBLE_FREE,    /* the block is free already */
  WL_MISUSE_INTERIOR,       /* p points inside a block, not at its start */
  WL_MISUSE_NOT_ALLOCATED,  /* walloc memory, but no block handed out starts there */
  WL_MISUSE_FOREIGN,        /* not walloc's memory at all */
  WL_MISUSE_CORRUPT,        /* a free list is damaged */
} wl_misuse_t;
#if !WL_REPORTS
/* wasm release: nothing is printed and the option is fixed: misuse traps */
WL_INLINE void wl_misuse(wl_misuse_t what, const char *call, const void *p, const void *block, size_t size) {
  WL_UNUSED(what); WL_UNUSED(call); WL_UNUSED(p); WL_UNUSED(block); WL_UNUSED(size);
  wl_os_abort();
}
#else
/* call: "free", "realloc", ...; block and size: the block p falls in (NULL, 0 if none).
   Returns only when the option says to ignore the call. */
WL_COLD void wl_misuse(wl_misuse_t what, const char *call, const void *p, const void *block, size_t size);
#endif

/* purge_delay.c: the delay before free memory is purged (ms; < 0 never,
   0 at once): WALLOC_PURGE_DELAY, doubled while purged memory is needed
   again soon (up to 8x). What the segments report to it: a scheduled purge,
   and purged slices handed out again (fresh ones do not count). */
extern _Atomic(int32_t) wl_purge_delay_shift;
WL_INLINE long wl_purge_delay(void) {
  long base = wl_option(WL_OPT_PURGE_DELAY);
  if (WL_PURGE_NEVER || base <= 0) return base; /* never, or at once: nothing adapts */
  return base << wl_load_relaxed(&wl_purge_delay_shift);
}
void wl_purge_delay_purged(int64_t now);
void wl_purge_delay_refill(int64_t now);

/* segment.c */
void wl_segment_map_set(const void *seg, unsigned value);  /* the map byte of seg's address */
wl_page_t *wl_segment_page_alloc(wl_heap_t *heap, size_t slices, wl_page_kind_t kind);
void wl_segment_page_free(wl_heap_t *heap, wl_page_t *page);
bool wl_segment_page_grow(wl_heap_t *heap, wl_page_t *page, size_t slices);
void wl_segment_page_shrink(wl_heap_t *heap, wl_page_t *page, size_t slices);
void wl_segment_abandon(wl_heap_t *heap, wl_segment_t *seg);
bool wl_segment_reclaim_one(wl_heap_t *heap);
bool wl_segment_reclaim_on_free(wl_heap_t *heap, wl_segment_t *seg); /* a free into abandoned seg: take it over? */
void wl_segments_purge(wl_heap_t *heap, int64_t now, bool force);
/* A heap that threads share (large.c) purges without holding its lock:
   under the lock, take out up to `max` free spans with memory due for a
   purge (or all, when forced); purge them unlocked; put them back under the
   lock. */
/* A shared heap maps outside its lock too: when it has no span of `slices`
   (wl_segment_has_span), obtain a segment unlocked and give it to the heap
   under the lock. */
WL_INLINE bool wl_segment_has_span(const wl_heap_t *heap, size_t slices) { return (heap->span_mask >> (slices - 1)) != 0; }
wl_segment_t *wl_segment_obtain(void);
void wl_segment_give(wl_heap_t *heap, wl_segment_t *seg);
size_t wl_segments_purge_take(wl_heap_t *heap, int64_t now, bool force, wl_page_t **spans, size_t max);
void wl_segment_purge_span(wl_page_t *span);
void wl_segments_purge_return(wl_heap_t *heap, wl_page_t **spans, size_t n);
void wl_segment_abandoned_collect_(int64_t now, bool force);
/* Purge what is due in abandoned segments (segment.c); one thread (wasm)
   never abandons one, so the call folds away there. */
static inline void wl_segment_abandoned_collect(int64_t now, bool force) {
  if (!WL_OS_ONE_THREAD) wl_segment_abandoned_collect_(now, force);
}
void wl_segment_cache_collect(int64_t now, bool force);
/* A mapping inside the segment map (for a segment or a huge block), counted
   for the heap (core.h); NULL when refused or outside the map. */
wl_segment_t *wl_segment_os_alloc(size_t size, size_t align, size_t offset, bool *is_zero);
WL_INLINE uint8_t *wl_page_area(const wl_page_t *page, size_t *size) {
  wl_segment_t *seg = wl_segment_of(page);
  if (size != NULL) *size = (size_t)page->slice_count * WL_SLICE_SIZE;
  return (uint8_t *)seg + wl_page_index(seg, page) * WL_SLICE_SIZE;
}
/* A page's first block: the start of its area. */
WL_INLINE uint8_t *wl_page_start(const wl_page_t *page) { return wl_page_area(page, NULL); }

/* page.c */
void wl_page_init(wl_heap_t *heap, wl_page_t *page, size_t block_size, size_t bin, bool is_zero);
void wl_page_extend(wl_page_t *page);
void wl_page_collect(wl_page_t *page, bool force);
void wl_page_queue_push(wl_heap_t *heap, wl_page_queue_t *pq, wl_page_t *page);
void wl_page_queue_append(wl_heap_t *heap, wl_page_queue_t *pq, wl_page_t *page);
void wl_page_queue_remove(wl_heap_t *heap, wl_page_queue_t *pq, wl_page_t *page);
void wl_page_to_full(wl_heap_t *heap, wl_page_t *page);
void wl_page_unfull(wl_heap_t *heap, wl_page_t *page);
void wl_page_retire(wl_heap_t *heap, wl_page_t *page);
void wl_pages_retired_collect(wl_heap_t *heap, bool all);
void wl_page_free(wl_heap_t *heap, wl_page_t *page);
void wl_page_set_delayed(wl_page_t *page, wl_delayed_t state, bool override_never);
void wl_page_stats_sync(wl_heap_t *heap, wl_page_t *page);
wl_page_t *wl_page_find(wl_heap_t *heap, size_t size);
uint8_t *wl_block_start(const wl_page_t *page, const void *p);

/* large.c: blocks of 32 KiB to 2 MiB, in the heap every thread shares */
void *wl_large_alloc(wl_heap_t *heap, size_t size, bool zero);
/* false: p is no longer a live large block (a racing double free) */
bool wl_large_free(void *p, wl_page_t *page);
bool wl_large_resize(wl_page_t *page, size_t size);
void wl_large_collect(int64_t now, bool force);
/* The thread's cache of freed large blocks: what is older than the purge
   delay (or everything) goes back to the shared heap. */
void wl_large_cache_trim(wl_heap_t *heap, bool all);

/* heap.c */
void wl_heap_delayed_free_all(wl_heap_t *heap);
void wl_heap_collect(wl_heap_t *heap, bool force);
void wl_heap_abandon(wl_heap_t *heap);
/* The heap a free that takes over a dead thread's segment gives it to: this
   thread's, created if it has none yet; NULL once the thread has exited. */
wl_heap_t *wl_heap_for_reclaim(void);
void wl_heap_adopt_page(wl_heap_t *heap, wl_page_t *page);
void wl_heap_thread_done(void *value);
void wl_heap_fork_child(void);
void wl_heap_maintenance(wl_heap_t *heap);
#if defined(__EMSCRIPTEN_PTHREADS__)
void *wl_heap_runtime_alloc(size_t align, size_t size); /* never reads a thread-local */
#endif

/* pressure.c (and heap_api.h) */
/* wl_malloc_slow's failure end: gives back, runs wl_malloc_slow once more,
   and answers NULL with ENOMEM if that fails too. heap may be NULL. */
void *wl_malloc_refused(size_t size, wl_heap_t *heap, bool zero);

/* alloc.c */
void *wl_malloc_slow(size_t size, wl_heap_t *heap, bool zero); /* size first: malloc's register */
void *wl_calloc(size_t count, size_t size);
void *wl_realloc(void *p, size_t size);
size_t wl_usable_size(const void *p);

/* free.c */
void wl_free_generic(void *p, wl_page_t *page);
void wl_free_special(void *p);
void wl_free_local(wl_heap_t *heap, wl_page_t *page, wl_block_t *block);
/* The usable size of the live block starting at p; 0 when p is not one.
   With `call` non-NULL, anything else is reported as a misuse of that call
   (and 0 returned if the option says to ignore it). */
size_t wl_live_block_size(const void *p, const char *call);

/* huge.c */
void *wl_huge_alloc(size_t size, size_t align, bool zero);
void wl_huge_free(wl_segment_t *seg, void *p);
void *wl_huge_realloc(wl_segment_t *seg, void *p, size_t size);
wl_segment_t *wl_huge_header(const void *p, unsigned map_value);
void wl_huge_cache_collect(int64_t now, bool force);

/* stats.c */
void wl_stats_live_add(int64_t bytes);
void wl_heap_stats_flush(wl_heap_t *heap);
/* Owner-thread statistics are gathered in the heap and published in batches. */
WL_INLINE void wl_heap_stat_live(wl_heap_t *heap, int64_t bytes) {
  heap->stat_live += bytes;
  if (WL_UNLIKELY(heap->stat_live > ((int64_t)1 << 20) || heap->stat_live < -((int64_t)1 << 20))) {
    wl_heap_stats_flush(heap);
  }
}
void wl_stats_print(int fd);  /* the table, headed by the pid and the program's name */

/* exit_report.c: what WALLOC_STATS reports at exit, and where to
   (WALLOC_STATS_FILE). The layer on top hands in the JSON writer. */
void wl_stats_init(void);
void wl_stats_print_at_exit(void);

/* ------------------------------------------------------------------------
   The fast paths, inlined into every entry point (alloc.c, free.c, and the
   malloc family in preload/) so none pays an extra call.
   ------------------------------------------------------------------------ */
WL_INLINE void *wl_malloc_fast(size_t size) {
  wl_heap_t *heap = wl_heap_tls;
  if (WL_LIKELY(size <= WL_DIRECT_WSIZE * WL_MIN_ALIGN)) {
    wl_page_t *page = heap->pages_direct[wl_wsize(size)];
    wl_block_t *block = page->free;
    if (WL_LIKELY(block != NULL)) {
      page->free = block->next;
      wl_store_relaxed(&block->tag, 0); /* live now: a free must not find the tag */
      page->used++;
      page->allocs++;
      return block;
    }
  }
  return wl_malloc_slow(size, heap, false);
}

/* The owner's free of a block of a page in the normal state. The checks
   cost one compare each: the owner compare also sees the page flags
   (WL_TID_SLOW), the block check sees interior pointers and pointers never
   handed out, and the tag sees a block that is free already. Any failure
   goes to wl_free_generic, which tells misuse from the other slow cases. */
WL_INLINE void wl_free_fast(void *p) {
  uintptr_t idx = (uintptr_t)p >> WL_MAP_SHIFT;
  if (WL_UNLIKELY(idx >= WL_MAP_ENTRIES || wl_load_racy(&wl_segment_map[idx]) != WL_MAP_NORMAL)) {
    wl_free_special(p);
    return;
  }
  /* natively the map index is the segment number: one shift back (the
     empty asm keeps the compiler from turning it into a copy and a mask) */
#if WL_MAP_SHIFT == WL_SEGMENT_SHIFT && (defined(__x86_64__) || defined(__aarch64__))
  __asm__("" : "+r"(idx));
  wl_segment_t *seg = (wl_segment_t *)(idx << WL_SEGMENT_SHIFT);
#else
  wl_segment_t *seg = wl_segment_of(p);
#endif
  wl_page_t *page = wl_page_of(seg, p);
  wl_block_t *block = (wl_block_t *)p;
  if (WL_LIKELY(wl_load_racy(&page->tid) == wl_os_thread_id() && wl_block_check(page, p) &&
                !wl_block_is_free(page, p) && WL_DEBUG == 0)) {
    block->next = page->local_free;
    wl_store_relaxed(&block->tag, wl_free_tag(page));
    page->local_free = block;
    if (WL_LIKELY(--page->used != 0)) return;
    if (WL_LIKELY(page->next == NULL && page->prev == NULL)) return; /* only page of its class: keep */
    wl_page_retire(wl_load_relaxed(&page->heap), page);
    return;
  }
  wl_free_generic(p, page);
}

/* The fast paths at secondary call sites (realloc's moves, aligned
   allocation): inlined natively, where they save a call; on wasm, where code
   size counts and each inlined copy costs 60 to 100 bytes, one call to the
   out-of-line wl_malloc / wl_free instead. */
#if defined(__wasm__)
#define wl_malloc_also(size) wl_malloc(size)
#define wl_free_also(p) wl_free(p)
#else
#define wl_malloc_also(size) wl_malloc_fast(size)
#define wl_free_also(p) wl_free_fast(p)
#endif

#endif
