/* purge_delay.c: how long free memory stays resident before it is purged.
 *
 * Owns: the delay every purge schedule of the heap reads (wl_purge_delay):
 * retired pages, free spans of thread heaps, of the shared heap of large
 * blocks, of abandoned and cached segments, the per-thread cache of large
 * blocks. WALLOC_PURGE_DELAY is its floor.
 *
 * A purge is a bet that the memory will stay unused: an madvise, a TLB
 * shootdown to every core the process runs on, and when the memory is needed
 * again one page fault per page. The bet is lost when the process hands out
 * memory that was purged less than one delay after a scheduled purge: what
 * it gave back had been idle for one to two delays, and its resident set
 * comes straight back, the purge and the faults paid for nothing. So each
 * lost bet doubles the delay, up to WL_PURGE_DELAY_MAX_SHIFT doublings (8x
 * the floor: 80 ms by default), and each calm second (a purge with no
 * doubling for a second before it) halves it again.
 *
 * Only memory that was purged counts as lost, not fresh memory (a segment's
 * slices never handed out, segment.c's fresh_mask): a thread that grows
 * while another purges lost nothing, since it could not have used the other
 * thread's pages. Forced purges (memory pressure, walloc_collect(true),
 * malloc_trim) bet nothing and are not reported.
 *
 * Measured (docs/benchmarks.md, "The purge delay adapts"): on a VM where a
 * page fault costs several times the program's own write to the page,
 * bench-thread-exit at 16 threads spent most of its time purging and faulting
 * in memory again with a fixed 10 ms delay.
 *
 * The signals are process-wide, like the resident set: a purge by one thread
 * and a fault by another move the same RSS. The bet is judged per event,
 * not per byte: cheap, and enough to find the delay's order of magnitude.
 * Thread safety: relaxed atomics; two threads that double at once double
 * once, which only slows the adaptation.
 */
#include "heap.h"

#ifndef WL_PURGE_DELAY_MAX_SHIFT /* -D for experiments */
#define WL_PURGE_DELAY_MAX_SHIFT 3
#endif
#define WL_PURGE_CALM_MS         1000

_Atomic(int32_t) wl_purge_delay_shift;          /* the delay is the floor << this */
static _Atomic(int64_t) last_purge = INT64_MIN / 2; /* ms */
static _Atomic(int64_t) last_change;              /* ms: a doubling or a halving */

void wl_purge_delay_purged(int64_t now) {
  if (WL_PURGE_NEVER) return;
  if (wl_load_relaxed(&last_purge) != now) wl_store_relaxed(&last_purge, now);
  int32_t shift = wl_load_relaxed(&wl_purge_delay_shift);
  if (shift > 0 && now - wl_load_relaxed(&last_change) >= WL_PURGE_CALM_MS) {
    wl_store_relaxed(&wl_purge_delay_shift, shift - 1);
    wl_store_relaxed(&last_change, now);
  }
}

void wl_purge_delay_refill(int64_t now) {
  if (WL_PURGE_NEVER) return;
  long delay = wl_purge_delay();
  if (delay <= 0 || now - wl_load_relaxed(&last_purge) >= delay) return;
  int32_t shift = wl_load_relaxed(&wl_purge_delay_shift);
  if (shift < WL_PURGE_DELAY_MAX_SHIFT) wl_store_relaxed(&wl_purge_delay_shift, shift + 1);
  wl_store_relaxed(&last_change, now);
  wl_store_relaxed(&last_purge, INT64_MIN / 2); /* one lost bet, one doubling */
}
