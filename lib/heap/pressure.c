/* pressure.c: giving memory back when the OS refuses it.
 *
 * Owns: the give-back callbacks of the layers above the heap, and
 * wl_give_back, which runs them and returns what the heap caches.
 *
 * When the OS refuses a mapping or a commit (an address-space or data limit,
 * strict overcommit, the map count), walloc may still hold memory it keeps
 * for speed. The place that saw the refusal calls wl_give_back and then
 * tries its request once more, where nothing is half done: the failure ends
 * of wl_malloc_slow and of the aligned huge path (alloc.c), the tiers'
 * reservation and commits (tiers/tier.c), the frames' chunks and the pools'
 * slabs (wl_give_back_map, below). Only then does it answer NULL
 * with ENOMEM (or WALLOC_ERR_NOMEM). walloc_collect(true) and malloc_trim
 * give back the same way.
 *
 * What goes back, in this order:
 *  1. what the upper layers cache, through their callbacks (the pools'
 *     empty magazines in their depots, the calling thread's frame chunks
 *     that no frame in progress uses): first, because what they free lands
 *     in the heap;
 *  2. the calling thread's heap, as walloc_collect(true) always did
 *     (wl_heap_collect with force): frees other threads left for it, the
 *     abandoned segments of exited threads (adopted, their empty pages
 *     freed), every empty page (retired or the last of its class), a purge
 *     of every free span; segments left empty go to the segment cache and
 *     from there (3) to the OS;
 *  3. the global caches: a purge of every free span of the shared heap of
 *     large blocks (large.c), every empty segment of the segment cache and
 *     every freed huge block of the huge cache, unmapped.
 * What does not: another thread's heap (its pages, spans and retired pages
 * are touched by their owner only; it returns them itself
 * after the purge delay, on its next slow path, and the empty segments land
 * in the segment cache, which the next refusal empties), other threads'
 * frame chunks and pool caches (thread-local), the objects of pools (a
 * slab stays until its pool is destroyed), tier memory (a tier's
 * reservation is its capacity, and its free blocks stay on its lists; the
 * chunks a thread's scopes keep are tier memory too), and loaded assets (the
 * program evicts them: their handles would go stale behind its back).
 *
 * Callbacks run on the thread whose request was refused, in the middle of
 * whichever walloc call asked for memory: they never allocate, and take a
 * lock only with wl_lock_try (the caller may hold it: walloc_pool_create
 * grows the pool registry under its lock), skipping what is busy.
 * Thread safety: registration is lock-free (a compare-and-swap per slot),
 * and a callback, once added, stays. wl_give_back runs on any thread; a
 * thread-local flag keeps a callback's frees from starting another round,
 * another one a retried malloc from retrying again.
 */
#include "heap.h"

#include <errno.h>

static _Atomic(wl_give_back_fn) give_back_fns[WL_GIVE_BACK_MAX];
static __thread bool giving_back __attribute__((tls_model("initial-exec")));
static __thread bool retrying __attribute__((tls_model("initial-exec")));

bool wl_give_back_add(wl_give_back_fn fn) {
  for (int i = 0; i < WL_GIVE_BACK_MAX; i++) {
    wl_give_back_fn have = wl_load_acquire(&give_back_fns[i]);
    if (have == NULL && wl_cas_strong(&give_back_fns[i], &have, fn)) return true;
    if (have == fn) return true; /* added already (perhaps by a racing thread) */
  }
  return false;
}

bool wl_give_back(wl_heap_t *heap) {
  if (heap == NULL) heap = wl_heap_tls;
  if (giving_back) return false;
  giving_back = true;
  for (int i = 0; i < WL_GIVE_BACK_MAX; i++) {
    wl_give_back_fn fn = wl_load_acquire(&give_back_fns[i]);
    if (fn != NULL) fn();
  }
  if (heap != &wl_heap_empty) {
    wl_heap_collect(heap, true); /* ends with the global caches */
  } else { /* no heap yet (its memory was refused): only the global caches */
    int64_t now = wl_os_clock_ms();
    wl_large_collect(now, true);
    wl_segment_abandoned_collect(now, true);
    wl_segment_cache_collect(now, true);
    wl_huge_cache_collect(now, true);
  }
  giving_back = false;
  return true;
}

/* Out of wl_malloc_slow, so that its normal path pays nothing for this
   (measured: a retry loop inside it cost 6 to 11 instructions per large or
   huge allocation); a thread-local flag makes the retry the only one. */
WL_COLD void *wl_malloc_refused(size_t size, wl_heap_t *heap, bool zero) {
  if (heap == NULL) heap = &wl_heap_empty; /* its heap could not be made */
  void *p = NULL;
  /* wasm with pthreads: the runtime's own heap serves where the thread's
     thread-locals do not exist yet (heap.c): neither the flag nor the
     callbacks can be read there, so it is not retried */
  bool own = heap == &wl_heap_empty || heap->tid == wl_os_thread_id();
  if (own && !retrying && size <= WL_MAX_ALLOC && wl_give_back(heap)) { /* larger: never asked the OS */
    retrying = true;
    p = wl_malloc_slow(size, heap, zero);
    retrying = false;
  }
  if (p == NULL) errno = ENOMEM;
  return p;
}

void *wl_give_back_map(wl_mem_user_t who, size_t size, size_t align, bool *is_zero) {
  void *p = wl_osmem_map(who, size, align, 0, is_zero);
  if (p == NULL && wl_give_back(NULL)) p = wl_osmem_map(who, size, align, 0, is_zero);
  return p;
}
