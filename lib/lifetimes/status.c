/* status.c: the calling thread's last lifetime failure, and reports.
 *
 * Calls that return a handle or a pointer cannot return a status as well;
 * walloc_last_status tells why the last one failed (only failures write it,
 * so the fast paths pay nothing). Misuses walloc tolerates (leaving scopes
 * out of order, freeing twice into a pool, writing to a frame after its end)
 * are counted and, in debug builds or with WALLOC_VERBOSE=1, printed.
 */
#include "lifetimes.h"

static __thread walloc_status last_status;

void wl_lifetime_fail(walloc_status st, const char *what) {
  last_status = st;
  wl_warn(what, NULL);
}

void wl_lifetime_report(const char *what, const void *p) { wl_warn(what, p); }

WL_API walloc_status walloc_last_status(void) { return last_status; }
