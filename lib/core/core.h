/* core.h: the services every layer above the platform shares, once.
 *
 * walloc's layers, bottom up: platform (the OS door, platform.h), core
 * (this), heap, tiers, lifetimes, assets. The core owns what would
 * otherwise be written once per layer:
 *   - once-only set-up (once.c): wl_once, fork-safe;
 *   - options (options.c): one table of every WALLOC_* setting;
 *   - errors (report.c): the per-thread status and message, the reports;
 *   - OS memory (osmem.c): every mapping, reservation, commit and purge of
 *     every layer, counted.
 * It calls only the platform layer. Nothing here allocates.
 */
#ifndef WL_CORE_H
#define WL_CORE_H

#include "../platform/platform.h"

/* Lock levels: the core's, then each layer's above it (heap.h and up). */
#define WL_LEVEL_CORE (WL_LEVEL_PLATFORM + 1)

/* ------------------------------------------------------------------------
   Once-only set-up (once.c)

   wl_once(&o, fn) runs fn exactly once in the process; every caller
   returns after it has finished (acquire: what fn wrote is visible). After
   the first run it costs one acquire load. fn runs under the once's own
   lock, of the level the once was defined with: fn may take only locks of
   lower levels, and must not reach the same once again. fork takes the
   lock like any other, so a child finds fn run or not run, never half run.
   ------------------------------------------------------------------------ */
typedef struct wl_once_s {
  _Atomic(int) done;
  wl_lock_t lock;
} wl_once_t;

#define WL_ONCE_INIT(level) { 0, WL_LOCK_INIT(level) }
/* A static once: WL_ONCE_STATIC(tiers_once, WL_LEVEL_TIERS); */
#define WL_ONCE_STATIC(name, level)              \
  static wl_once_t name = WL_ONCE_INIT(level);   \
  WL_LOCK_REGISTER(name##_register, &name.lock)

void wl_once_slow(wl_once_t *o, void (*fn)(void));
WL_INLINE void wl_once(wl_once_t *o, void (*fn)(void)) {
  if (WL_LIKELY(wl_load_acquire(&o->done) != 0)) return;
  wl_once_slow(o, fn);
}
WL_INLINE bool wl_once_done(wl_once_t *o) { return wl_load_acquire(&o->done) != 0; }

/* ------------------------------------------------------------------------
   OS memory (osmem.c)

   The one door to the platform's memory functions for every layer above
   the core: no file outside lib/platform and osmem.c calls wl_os_alloc,
   wl_os_reserve, wl_os_commit, wl_os_purge, wl_os_release, wl_os_resize,
   wl_os_remap or wl_os_advise_huge (tests/meson.build checks it). Each
   call here is the platform's (same contract, platform.h) plus counters,
   process-wide relaxed atomics, so that walloc_heap_stats's mapped_bytes
   is every byte of address space walloc holds, whichever layer holds it:
     mapped     mappings and reservations, now (and its peak), also by user;
     committed  of those, the bytes readable and writable: mappings whole,
                reservations as far as committed (all of a reservation
                where reserving commits, wasm); a purge leaves it (the
                range stays usable);
     purged     bytes whose physical pages went back (the platform said so);
     released   address space given back (unmapped, or cut off a mapping).
   Only slow paths come here (each call is a system call or a lock on
   wasm); the counters cost a few relaxed atomic adds beside it.

   Who maps what: the heap its segments, huge blocks and heap structs
   (segment.c, huge.c, heap.c); the tiers their three reservations and
   commits inside them (tier.c); frames their chunks and pools their slabs
   and slab-map leaves (lifetimes), straight through this door: neither
   takes segments from the heap, which only adds the give-back retry
   (wl_give_back_map, pressure.c); assets the spool of a body of unknown
   length (http.c). Each says who it is, so the counts also come by user.
   ------------------------------------------------------------------------ */
/* The platform's facts, filled once by process set-up (wl_process_init)
   before any layer asks for memory. */
extern wl_os_info_t wl_os;

typedef enum wl_mem_user_e {
  WL_MEM_HEAP,    /* segments, huge blocks, heap structs */
  WL_MEM_TIERS,   /* the tiers' reservations */
  WL_MEM_FRAMES,  /* frame chunks */
  WL_MEM_POOLS,   /* pool slabs and the slab map's leaves */
  WL_MEM_ASSETS,  /* asset spools */
  WL_MEM_USERS
} wl_mem_user_t;

/* wl_os_alloc, counted as mapped and committed for `who`. */
void *wl_osmem_map(wl_mem_user_t who, size_t size, size_t align, size_t offset, bool *is_zero);
/* wl_os_release of a wl_osmem_map range (or a page-aligned piece at its
   start or end), counted as released. */
void wl_osmem_unmap(wl_mem_user_t who, void *addr, size_t size);
/* wl_os_reserve, counted as mapped (and committed where reserving commits). */
void *wl_osmem_reserve(wl_mem_user_t who, size_t size, size_t align);
/* wl_os_release of a whole wl_osmem_reserve range, `committed` bytes of
   which the caller had committed with wl_osmem_commit. */
void wl_osmem_unreserve(wl_mem_user_t who, void *addr, size_t size, size_t committed);
/* wl_os_commit of a range never committed before, counted as committed. */
bool wl_osmem_commit(void *addr, size_t size);
/* wl_os_purge, counted as purged when the platform purged. */
bool wl_osmem_purge(void *addr, size_t size);
/* wl_os_resize of a wl_osmem_map range, counted (a shrink as released). */
bool wl_osmem_resize(wl_mem_user_t who, void *addr, size_t old_size, size_t new_size);
/* wl_os_remap into `dst`, a wl_osmem_map range of new_size bytes (counted
   when mapped): the old range leaves the counts, as moved, not released. */
bool wl_osmem_remap(wl_mem_user_t who, void *old, size_t old_size, void *dst, size_t new_size);
/* wl_os_advise_huge: a hint, nothing to count. */
WL_INLINE bool wl_osmem_advise_huge(void *addr, size_t size) { return wl_os_advise_huge(addr, size); }

typedef struct wl_osmem_stats_s {
  uint64_t mapped, peak_mapped, committed, purged, released;
  uint64_t by_user[WL_MEM_USERS]; /* mapped, by who holds it */
} wl_osmem_stats_t;
void wl_osmem_stats(wl_osmem_stats_t *out);

#endif
