/* lifetimes.h: memory grouped by how long it lives, on top of the heap and
 * the tiers (include/walloc.h, "Lifetimes").
 *
 *   frame.c    per-thread frame arenas (pointers; chunks from the OS layer)
 *   pool.c     fixed-size object pools with per-thread caches (pointers)
 *   chunk.c    tier chunks: bump sub-allocation of handles inside blocks
 *              drawn from a tier, released together (scopes, contexts)
 *   scope.c    per-thread nested scopes with budgets
 *   context.c  reference-counted owners with children
 *   ring.c     frames-in-flight rings
 *   promote.c  copying a block into another tier
 *   status.c   the per-thread last failure (walloc_last_status)
 */
#ifndef WL_LIFETIMES_H
#define WL_LIFETIMES_H

#include "../heap/heap.h"
#include "walloc.h"

/* status.c: record why a lifetime call failed (for walloc_last_status) and,
   in debug builds (or with WALLOC_VERBOSE=1), say so on stderr. Returns nothing; callers return their
   own null value. */
void wl_lifetime_fail(walloc_status st, const char *what);
void wl_lifetime_report(const char *what, const void *p); /* a misuse that was tolerated (debug builds print it) */

#endif
