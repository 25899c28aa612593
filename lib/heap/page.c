/* page.c: pages of one size class, their free lists and the heap's page queues.
 *
 * Owns: extending a page's free list lazily (so a fresh page is touched only
 * as far as it is used), collecting frees back (the owner's `local_free` and
 * other threads' `xthread_free`), moving pages between the size-class queue
 * and the full queue, and finding a page with a free block for the malloc
 * slow path.
 *
 * Invariants: a live small or medium page is in exactly one queue of its
 * owner heap (its class queue, or the full queue with WL_PAGE_IN_FULL set);
 * large pages belong to no thread heap (large.c). pages_direct[w] is the first page
 * of the class of w*16 bytes, or wl_page_empty.
 * Thread safety: everything here runs on the owner thread; other threads only
 * push onto xthread_free (free.c).
 */
#include "heap.h"

#include <string.h>

#define WL_EXTEND_BYTES ((size_t)4 << 10) /* initialise one OS page of blocks per step */

/* ------------------------------------------------------------------------
   Queues
   ------------------------------------------------------------------------ */
/* The direct slots of this queue's sizes, [*lo, *hi]; false when it has none. */
static bool queue_direct_range(const wl_heap_t *heap, const wl_page_queue_t *pq, size_t *lo, size_t *hi) {
  size_t bin = (size_t)(pq - heap->pages);
  if (bin == 0 || bin > WL_BIN_MAX || pq->block_size > WL_DIRECT_WSIZE * WL_MIN_ALIGN) return false;
  *hi = pq->block_size / WL_MIN_ALIGN;
  *lo = bin == 1 ? 0 : wl_bin_size(bin - 1) / WL_MIN_ALIGN + 1;
  return true;
}

/* Point the direct slots of this queue's sizes at its first page. */
static void queue_direct_update(wl_heap_t *heap, wl_page_queue_t *pq) {
  size_t lo, hi;
  if (!queue_direct_range(heap, pq, &lo, &hi)) return;
  wl_page_t *first = pq->first != NULL ? pq->first : &wl_page_empty;
  for (size_t w = lo; w <= hi; w++) heap->pages_direct[w] = first;
}

static wl_page_queue_t *queue_of(wl_heap_t *heap, const wl_page_t *page) {
  return (page->flags & WL_PAGE_IN_FULL) ? &heap->pages[WL_BIN_FULL] : &heap->pages[page->bin];
}

/* The invariants (top of this file), checked in debug builds after every
   queue change: the page is linked in the one queue its flags name (never a
   large page), and the queue's direct slots name its first page. */
#if WL_DEBUG >= 2
static void queue_check(wl_heap_t *heap, const wl_page_queue_t *pq, const wl_page_t *page) {
  if (page != NULL) {
    const wl_heap_t *owner = wl_load_relaxed(&((wl_page_t *)page)->heap);
    wl_assert_internal(pq == queue_of(heap, page) && owner == heap);
    wl_assert_internal(page->kind != WL_PAGE_LARGE);
    wl_assert_internal(page->prev != NULL ? page->prev->next == page : pq->first == page);
    wl_assert_internal(page->next != NULL ? page->next->prev == page : pq->last == page);
  }
  size_t lo, hi;
  if (!queue_direct_range(heap, pq, &lo, &hi)) return;
  for (size_t w = lo; w <= hi; w++) wl_assert_internal(heap->pages_direct[w] == (pq->first != NULL ? pq->first : &wl_page_empty));
}
#else
WL_INLINE void queue_check(wl_heap_t *heap, const wl_page_queue_t *pq, const wl_page_t *page) {
  WL_UNUSED(heap); WL_UNUSED(pq); WL_UNUSED(page);
}
#endif

void wl_page_queue_push(wl_heap_t *heap, wl_page_queue_t *pq, wl_page_t *page) {
  page->prev = NULL;
  page->next = pq->first;
  if (pq->first != NULL) pq->first->prev = page;
  else pq->last = page;
  pq->first = page;
  queue_direct_update(heap, pq);
  queue_check(heap, pq, page);
}

void wl_page_queue_append(wl_heap_t *heap, wl_page_queue_t *pq, wl_page_t *page) {
  if (pq->first == NULL) {
    wl_page_queue_push(heap, pq, page);
    return;
  }
  page->next = NULL;
  page->prev = pq->last;
  pq->last->next = page;
  pq->last = page;
  queue_check(heap, pq, page);
}

void wl_page_queue_remove(wl_heap_t *heap, wl_page_queue_t *pq, wl_page_t *page) {
  bool was_first = pq->first == page;
  if (page->prev != NULL) page->prev->next = page->next;
  else pq->first = page->next;
  if (page->next != NULL) page->next->prev = page->prev;
  else pq->last = page->prev;
  page->next = page->prev = NULL;
  if (was_first) queue_direct_update(heap, pq);
  queue_check(heap, pq, NULL);
}

/* ------------------------------------------------------------------------
   Delayed-free state
   ------------------------------------------------------------------------ */
void wl_page_set_delayed(wl_page_t *page, wl_delayed_t state, bool override_never) {
  if (WL_OS_ONE_THREAD) return; /* only foreign frees read the state, and there are none */
  uintptr_t tf = wl_load_relaxed(&page->xthread_free);
  for (;;) {
    wl_delayed_t old = wl_delayed_state(tf);
    if (old == WL_DELAYED_FREEING) { /* a foreign free is notifying the heap: let it finish */
      wl_os_yield();
      tf = wl_load_relaxed(&page->xthread_free);
      continue;
    }
    if (old == state || (old == WL_DELAYED_NEVER && !override_never)) return;
    if (wl_cas_weak(&page->xthread_free, &tf, wl_delayed_make(wl_delayed_ptr(tf), state))) return;
  }
}

/* ------------------------------------------------------------------------
   Statistics, published at page granularity
   ------------------------------------------------------------------------ */
void wl_page_stats_sync(wl_heap_t *heap, wl_page_t *page) {
  int64_t d_used = (int64_t)page->used - (int64_t)page->used_synced;
  uint32_t d_allocs = page->allocs - page->allocs_synced; /* mod 2^32: at most a page's blocks between syncs */
  if (d_allocs == 0 && d_used == 0) return;
  wl_bin_stats_t *bs = &wl_stats.bins[page->bin];
  if (d_allocs != 0) wl_fetch_add(&bs->allocs, d_allocs);
  int64_t live = d_used != 0 ? atomic_fetch_add_explicit(&bs->live_blocks, d_used, memory_order_relaxed) + d_used
                             : wl_load_relaxed(&bs->live_blocks);
  /* The peak: the class's other pages as last synced, plus the most this
     page surely held since its last sync (its blocks then or now, and at
     least one if it served an allocation): a page allocated and emptied
     between two syncs still counts, so a class with allocations never
     shows a peak of 0 or below what was live. */
  uint32_t held = page->used > page->used_synced ? page->used : page->used_synced;
  if (held == 0 && d_allocs != 0) held = 1;
  int64_t peak = live - (int64_t)page->used + (int64_t)held;
  if (peak > 0) wl_peak_raise(&bs->peak_blocks, (uint64_t)peak);
  page->allocs_synced = page->allocs;
  if (d_used != 0) {
    wl_heap_stat_live(heap, d_used * (int64_t)page->block_size);
    page->used_synced = page->used;
  }
}

/* ------------------------------------------------------------------------
   Free lists
   ------------------------------------------------------------------------ */
/* The block check's multiplier for blocks of `size` bytes (heap.h,
   wl_page_t): floor(2^64 / size) + 1. */
static uint64_t div_magic(size_t size) {
  uint64_t floor = UINT64_MAX / size + (wl_is_pow2(size) ? 1 : 0);
  return floor + 1;
}

void wl_page_init(wl_heap_t *heap, wl_page_t *page, size_t block_size, size_t bin, bool is_zero) {
  size_t area_size;
  uint8_t *area = wl_page_area(page, &area_size);
  page->start_lo = (uint32_t)(uintptr_t)area;
  page->block_size = block_size;
  page->div_magic = div_magic(block_size);
  wl_store_relaxed(&page->free_limit, 0);
  page->bin = (uint8_t)bin;
  page->reserved = (uint32_t)(area_size / block_size);
  page->capacity = 0;
  page->used = 0;
  page->free = NULL;
  page->local_free = NULL;
  page->free_is_zero = is_zero;
  wl_store_relaxed(&page->xthread_free, (uintptr_t)0);
  wl_store_release(&page->heap, heap);
  wl_page_set_owner(page, heap->tid, 0);
}

/* Initialise the next blocks of the page, free and tagged as free (so that a
   free of one is a double free), and raise the block check's limit. */
void wl_page_extend(wl_page_t *page) {
  size_t bsize = page->block_size;
  size_t n = wl_max(1, WL_EXTEND_BYTES / bsize);
  n = wl_min(n, page->reserved - page->capacity);
  if (n == 0) return;
  uintptr_t tag = wl_free_tag(page);
  uint8_t *first = wl_page_start(page) + (size_t)page->capacity * bsize;
  uint8_t *p = first;
  for (size_t i = 1; i < n; i++, p += bsize) {
    ((wl_block_t *)p)->next = (wl_block_t *)(p + bsize);
    wl_store_relaxed(&((wl_block_t *)p)->tag, tag);
  }
  ((wl_block_t *)p)->next = page->free;
  wl_store_relaxed(&((wl_block_t *)p)->tag, tag);
  page->free = (wl_block_t *)first;
  page->capacity += (uint32_t)n;
  wl_store_relaxed(&page->free_limit, (uint64_t)page->capacity * wl_block_check_step(page));
}

/* The last block of a free list of the page, and its length; a list longer
   than the page's blocks handed out (`most`) has a cycle or a foreign block
   in it (the program wrote into a freed block, or freed one twice at the
   same instant from two threads): reported, and the process stopped rather
   than looping forever. */
static wl_block_t *list_tail(wl_page_t *page, wl_block_t *head, uint32_t most, uint32_t *count) {
  wl_block_t *tail = head;
  uint32_t n = 1;
  while (tail->next != NULL) {
    tail = tail->next;
    if (WL_UNLIKELY(++n > most)) wl_misuse(WL_MISUSE_CORRUPT, "malloc", tail, wl_page_start(page), page->block_size);
  }
  *count = n;
  return tail;
}

void wl_page_collect(wl_page_t *page, bool force) {
  uintptr_t tf = wl_load_relaxed(&page->xthread_free);
  if (!WL_OS_ONE_THREAD && wl_delayed_ptr(tf) != NULL) { /* one thread: nothing is ever pushed there */
    while (!wl_cas_weak(&page->xthread_free, &tf, wl_delayed_make(NULL, wl_delayed_state(tf)))) {}
    wl_block_t *head = wl_delayed_ptr(tf);
    uint32_t count;
    wl_block_t *tail = list_tail(page, head, page->used, &count);
    tail->next = page->local_free;
    page->local_free = head;
    page->used -= count;
  }
  if (page->local_free != NULL && (page->free == NULL || force)) {
    if (page->free != NULL) {
      uint32_t count;
      list_tail(page, page->local_free, page->capacity, &count)->next = page->free;
    }
    page->free = page->local_free;
    page->local_free = NULL;
    page->free_is_zero = false;
  }
}

uint8_t *wl_block_start(const wl_page_t *page, const void *p) {
  size_t off = (size_t)((const uint8_t *)p - wl_page_start(page));
  return wl_page_start(page) + off - off % page->block_size;
}

/* ------------------------------------------------------------------------
   Full pages, retiring, freeing
   ------------------------------------------------------------------------ */
void wl_page_to_full(wl_heap_t *heap, wl_page_t *page) {
  if (page->flags & WL_PAGE_IN_FULL) return;
  wl_page_queue_remove(heap, &heap->pages[page->bin], page);
  wl_page_set_flags(page, page->flags | WL_PAGE_IN_FULL);
  wl_page_queue_push(heap, &heap->pages[WL_BIN_FULL], page);
  wl_page_set_delayed(page, WL_DELAYED_USE, false);
}

void wl_page_unfull(wl_heap_t *heap, wl_page_t *page) {
  if (!(page->flags & WL_PAGE_IN_FULL)) return;
  wl_page_set_delayed(page, WL_DELAYED_NORMAL, false);
  wl_page_queue_remove(heap, &heap->pages[WL_BIN_FULL], page);
  wl_page_set_flags(page, page->flags & (uint8_t)~WL_PAGE_IN_FULL);
  /* at the back: the page at the front keeps serving, and this one (which may
     have a single free block) is not taken and filled again at once */
  wl_page_queue_append(heap, &heap->pages[page->bin], page);
}

void wl_page_free(wl_heap_t *heap, wl_page_t *page) {
  wl_page_stats_sync(heap, page);
  wl_page_queue_remove(heap, queue_of(heap, page), page);
  wl_segment_page_free(heap, page);
}

/* All blocks of the page are back. The page stays in its queue, still
   usable: it is returned to
   the spans only if it is still empty a purge delay later (and is not the
   only page of its class), so a class whose use goes up and down does not
   give pages back and take fresh ones in a loop. A page of a segment taken
   over at a free, where the heap has not allocated a page yet, goes back at
   once: the heap may never allocate, and never run its maintenance
   (segment.c, wl_segment_reclaim_on_free). */
void wl_page_retire(wl_heap_t *heap, wl_page_t *page) {
  if (!WL_OS_ONE_THREAD && wl_segment_of(page)->by_free) {
    wl_page_free(heap, page);
    return;
  }
  if (page->flags & WL_PAGE_IN_FULL) wl_page_unfull(heap, page);
  page->cached_at = (uint32_t)heap->now;
  if (heap->retired_min > heap->retired_max) heap->retired_min = heap->retired_max = page->bin;
  else if (page->bin < heap->retired_min) heap->retired_min = page->bin;
  else if (page->bin > heap->retired_max) heap->retired_max = page->bin;
}

/* Return retired pages that stayed empty for the purge delay (or all empty
   pages but one per class). */
void wl_pages_retired_collect(wl_heap_t *heap, bool all) {
  if (heap->retired_min > heap->retired_max) return;
  long delay = wl_purge_delay();
  uint8_t lo = heap->retired_min, hi = heap->retired_max;
  heap->retired_min = UINT8_MAX;
  heap->retired_max = 0;
  for (size_t bin = lo; bin <= hi; bin++) {
    wl_page_queue_t *pq = &heap->pages[bin];
    for (wl_page_t *page = pq->first, *next; page != NULL; page = next) {
      next = page->next;
      if (page->used != 0) continue;
      bool alone = pq->first == page && page->next == NULL;
      if (!alone && (all || delay < 0 || wl_clock_since(heap->now, page->cached_at) >= delay)) {
        wl_page_free(heap, page);
      } else if (!alone) { /* not yet due: look again next time */
        if (bin < heap->retired_min) heap->retired_min = (uint8_t)bin;
        if (bin > heap->retired_max) heap->retired_max = (uint8_t)bin;
      }
    }
  }
}

/* ------------------------------------------------------------------------
   Finding a page for the malloc slow path
   ------------------------------------------------------------------------ */
static wl_page_t *page_fresh(wl_heap_t *heap, size_t bin) {
  size_t bsize = wl_bin_size(bin);
  bool small = bsize <= WL_SMALL_MAX;
  size_t slices = small ? 1 : bsize <= WL_MEDIUM_WIDE ? WL_MEDIUM_SLICES : WL_WIDE_SLICES;
  wl_page_t *page = wl_segment_page_alloc(heap, slices,
                                          small ? WL_PAGE_SMALL : WL_PAGE_MEDIUM);
  if (page == NULL) return NULL;
  wl_page_init(heap, page, bsize, bin, page->free_is_zero);
  wl_page_queue_push(heap, &heap->pages[bin], page);
  wl_page_extend(page);
  return page;
}

/* A page of the class with a free block: the class queue's pages first,
   then a fresh page. What exited threads left behind is not adopted here:
   a page of a missing class comes from the heap's own free spans, and only
   a heap with none reclaims an abandoned segment (wl_segment_page_alloc).
   Reclaiming at every miss of every class gave the segments of a thread that
   had just exited to whichever running thread missed first, at random: the
   thread that replaced it, which frees its blocks, found none left and
   faulted fresh pages in (bench-larson at 8 threads: 22 k page faults against
   14 k, docs/benchmarks.md). */
wl_page_t *wl_page_find(wl_heap_t *heap, size_t size) {
  size_t bin = wl_bin_of(size);
  wl_page_queue_t *pq = &heap->pages[bin];
  for (wl_page_t *page = pq->first, *next; page != NULL; page = next) {
    next = page->next;
    wl_page_collect(page, false);
    wl_page_stats_sync(heap, page);
    if (page->free == NULL && page->capacity < page->reserved) wl_page_extend(page);
    if (page->free == NULL) {
      wl_page_to_full(heap, page);
      wl_page_collect(page, false); /* frees that raced with the switch to delayed mode */
      if (page->free == NULL) continue;
      wl_page_unfull(heap, page);
    }
    if (pq->first != page) {
      wl_page_queue_remove(heap, pq, page);
      wl_page_queue_push(heap, pq, page);
    }
    queue_check(heap, pq, page);
    return page;
  }
  return page_fresh(heap, bin);
}
