/* heap_api.h: what the layers above the heap may use of it.
 *
 * The tiers, the lifetimes, the assets and the statistics document include
 * this, not heap.h, which is private to the heap and the malloc exports
 * (preload/): a change to the page descriptor or the segment layout then
 * recompiles nothing above, and cannot break it. The layers' own static
 * libraries (lib/meson.build) and tests/programs/layers.sh check that no
 * layer calls or includes one above it.
 *
 * What is here: the heap's lock levels (upper layers' levels sit above
 * them), its limits, walloc's internal allocation (wl_malloc and friends:
 * the general heap, for walloc's own records), the hooks into thread exit
 * and fork, giving back under memory pressure, process set-up, and the
 * figures the statistics document reads.
 */
#ifndef WL_HEAP_API_H
#define WL_HEAP_API_H

#include "../core/core.h"

/* Lock levels (platform.h, "Locks, and fork"): a thread holding a lock
   takes only locks of lower levels. The heap's locks guard lists and call
   only the platform while held; process set-up sits below them because
   reports may run it under any of them. */
#define WL_LEVEL_HEAP_INIT    (WL_LEVEL_CORE + 1) /* process set-up (init.c) */
#define WL_LEVEL_HEAP         (WL_LEVEL_CORE + 2) /* heap list, hooks, segment cache, abandoned list, huge cache */
#define WL_LEVEL_HEAP_LARGE   (WL_LEVEL_CORE + 3) /* the shared heap of large blocks (large.c): takes the segment cache */
#define WL_LEVEL_HEAP_RUNTIME (WL_LEVEL_CORE + 4) /* Emscripten's runtime heap: allocates under its lock */

/* Limits */
#define WL_SEGMENT_SHIFT   22
#define WL_SEGMENT_SIZE    ((size_t)1 << WL_SEGMENT_SHIFT)     /* 4 MiB */
/* Largest request served at all: beyond this, sizes overflow page rounding. */
#define WL_MAX_ALLOC       ((size_t)PTRDIFF_MAX - 2 * WL_SEGMENT_SIZE)
#define WL_BIN_MAX         72                   /* size classes 1..WL_BIN_MAX */
/* Address space covered by the segment map. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define WL_ADDRESS_BITS    47
#else
#define WL_ADDRESS_BITS    32
#endif

typedef struct wl_heap_s wl_heap_t; /* a thread's heap (opaque above the heap) */

/* init.c: process set-up (options, platform facts), idempotent. */
void wl_process_init(void);

/* alloc.c, free.c: walloc's own records, from the general heap. */
void *wl_malloc(size_t size);
void *wl_zalloc(size_t size);
void *wl_aligned(size_t align, size_t size, bool zero);
void wl_free(void *p);
bool wl_owns(const void *p);  /* p is the start of a live block */

/* heap.c: upper layers hook into thread exit and the fork child through
   callbacks (the heap installs the thread-exit key and the fork handlers).
   Locks need no hook: fork takes and releases every registered lock by
   itself (platform.h); fork_child repairs other state in the child, while
   every lock is still held (it must take none). At thread exit the hooks
   run newest first, so a hook may call into modules that added theirs
   before it (add yours after setting up what your hook calls: scopes ensure
   the tiers first). At most WL_HEAP_HOOKS. */
#define WL_HEAP_HOOKS 8
typedef struct wl_heap_hooks_s {
  void (*thread_exit)(void);
  void (*fork_child)(void);
} wl_heap_hooks_t;
/* False when there is no room. Once per module: under a wl_once (core.h),
   so that every caller returns after the hooks are in. */
bool wl_heap_hooks_add(const wl_heap_hooks_t *hooks);
/* The calling thread's heap, made if need be (so its thread-exit hook will
   run); NULL when none can be made. */
wl_heap_t *wl_heap_get_or_init(void);
/* The calling thread has let its heap go (it is exiting). */
bool wl_heap_thread_gone(void);

/* pressure.c: when the OS refuses memory, every layer gives back what it
   caches and the request is tried once more. Layers above the heap add a
   callback (once; at most WL_GIVE_BACK_MAX in all) that gives back what
   they cache; it runs on the refused thread, never allocates, and takes
   locks only with wl_lock_try. */
#define WL_GIVE_BACK_MAX 8
typedef void (*wl_give_back_fn)(void);
bool wl_give_back_add(wl_give_back_fn fn);  /* false when there is no room */
/* Runs the callbacks, then collects `heap` (the calling thread's own, or
   the empty heap when it has none; NULL: read it) with force and empties
   the global caches. False when called from inside a callback: then nothing
   was done, and retrying is pointless. */
bool wl_give_back(wl_heap_t *heap);
/* wl_osmem_map for `who` (frame chunks, pool slabs), once more after
   wl_give_back when refused. */
void *wl_give_back_map(wl_mem_user_t who, size_t size, size_t align, bool *is_zero);

/* stats.c: one size class (bin 1..WL_BIN_MAX): false when it never served
   a block. */
typedef struct wl_class_stats_s {
  uint64_t block_size, allocations, live_blocks, peak_blocks;
} wl_class_stats_t;
bool wl_stats_class(size_t bin, wl_class_stats_t *out);
void wl_stats_big_live(uint64_t *large, uint64_t *huge);  /* live large and huge blocks */
/* exit_report.c: the layer on top hands in the JSON writer for
   WALLOC_STATS=json. */
void wl_stats_exit_json_set(void (*write_json)(int fd));

#endif
