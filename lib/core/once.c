/* once.c: once-only set-up (core.h, "Once-only set-up").
 *
 * A flag read with acquire on the fast path, and a lock for the first
 * callers: the one that takes it first runs fn, the others wait on the lock
 * and then find the flag set. A lock rather than a spin on a "running"
 * state: a fork child whose parent had another thread inside fn would spin
 * for ever on a state nobody finishes; fork takes the lock, so the child
 * finds fn run or not begun.
 */
#include "core.h"

void wl_once_slow(wl_once_t *o, void (*fn)(void)) {
  wl_lock(&o->lock);
  if (wl_load_relaxed(&o->done) == 0) {
    fn();
    wl_store_release(&o->done, 1);
  }
  wl_unlock(&o->lock);
}
