/* status.c: the calling thread's last failure (walloc_last_status), and
 * reports of tolerated misuse.
 *
 * Calls that return a handle or a pointer cannot return a status as well;
 * walloc_last_status tells why the last one failed (only failures write it,
 * so the fast paths pay nothing). Misuses walloc tolerates (leaving scopes
 * out of order, freeing twice into a pool, writing to a frame after its end)
 * are printed in debug builds or with WALLOC_VERBOSE=1.
 */
#include "tiers.h"

static __thread walloc_status last_status;

void wl_fail(walloc_status st, const char *what) {
  last_status = st;
  if (what != NULL) wl_warn(what, NULL);
}

void wl_report(const char *what, const void *p) { wl_warn(what, p); }

WL_API walloc_status walloc_last_status(void) { return last_status; }
