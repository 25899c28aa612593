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

#endif
