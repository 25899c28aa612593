/* segment.c: segments, the spans of slices inside them, and their life cycle.
 *
 * Owns: the segment map (ownership test), the free spans of every heap, the
 * purging of free memory after a delay, the global cache of empty segments
 * (emptied when the OS refuses memory, pressure.c) and the global list of
 * abandoned segments.
 *
 * Invariants:
 *  - every slice of a segment (after the header slice) belongs to exactly one
 *    page or one free span, and page_map[i] points at the first descriptor
 *    of the one slice i belongs to (page_map[0] at the header slice's own,
 *    which never has an owner): the free path trusts it for any pointer;
 *  - two free spans are never adjacent (freeing coalesces);
 *  - a free span is in its owner heap's spans[count] queue, and bit count-1
 *    of heap->span_mask is set exactly when that queue is not empty;
 *  - purge_mask and purge_old hold free slices whose memory is dirty (see
 *    schedule_purge); clean_mask slices known to read as zero;
 *  - a segment is on the abandoned list exactly when its `abandoned` is set
 *    (both under abandoned_lock), so a free can take a given one off it;
 *  - heap->segment_count counts heap->segments, heap->segments_by_free
 *    those of them with `by_free` set.
 * Thread safety: a segment and its spans are touched only by the owner heap's
 * thread; the cache and the abandoned list are behind their own locks.
 */
#include "heap.h"

#include <string.h>

_Atomic(uint8_t) wl_segment_map[WL_MAP_ENTRIES];

WL_LOCK_STATIC(cache_lock, WL_LEVEL_HEAP);
static wl_segment_t *cache_first;
static _Atomic(size_t) cache_count; /* read without the lock only as a hint */

WL_LOCK_STATIC(abandoned_lock, WL_LEVEL_HEAP);
static wl_segment_t *abandoned_first;
static _Atomic(size_t) abandoned_count;

/* ------------------------------------------------------------------------
   The segment map and the OS
   ------------------------------------------------------------------------ */
void wl_segment_map_set(const void *seg, unsigned value) {
  uintptr_t u = (uintptr_t)seg;
  if (wl_in_map(u, 1)) wl_store_relaxed(&wl_segment_map[u >> WL_MAP_SHIFT], (uint8_t)value);
}

/* A normal segment's map bytes: one, unless the map is finer (wasm). */
static void segment_map_all(const void *seg, unsigned value) {
  for (size_t i = 0; i < WL_SEGMENT_SIZE >> WL_MAP_SHIFT; i++) {
    wl_segment_map_set((const uint8_t *)seg + (i << WL_MAP_SHIFT), value);
  }
}

/* A mapping for a segment or a huge block: inside the segment map, or none. */
wl_segment_t *wl_segment_os_alloc(size_t size, size_t align, size_t offset, bool *is_zero) {
  void *p = wl_osmem_map(WL_MEM_HEAP, size, align, offset, is_zero);
  if (p != NULL && !wl_in_map((uintptr_t)p, size)) { /* outside the map: cannot be told apart */
    wl_osmem_unmap(WL_MEM_HEAP, p, size);
    return NULL;
  }
  return p;
}

static uint64_t slice_bits(size_t idx, size_t count) {
  uint64_t bits = count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
  return bits << idx;
}

/* Purge the runs of set bits in mask; returns the slices that now read as
   zero. Touches nothing of the segment but its memory. */
static uint64_t purge_runs(wl_segment_t *seg, uint64_t mask) {
  uint64_t clean = 0;
  while (mask != 0) {
    size_t start = wl_ctz64(mask);
    uint64_t shifted = mask >> start;
    size_t len = (~shifted == 0) ? 64 - start : wl_ctz64(~shifted);
    uint8_t *p = (uint8_t *)seg + start * WL_SLICE_SIZE;
    if (wl_osmem_purge(p, len * WL_SLICE_SIZE)) clean |= slice_bits(start, len);
    mask &= ~slice_bits(start, len);
  }
  return clean;
}

static void purge_slices(wl_segment_t *seg, uint64_t mask) { seg->clean_mask |= purge_runs(seg, mask); }

/* Free slices handed out to a page: no longer clean, dirty or fresh. Those
   that were purged (not fresh) tell the delay its bet was lost if the purge
   was recent (purge_delay.c). */
static void slices_taken(wl_heap_t *heap, wl_segment_t *seg, uint64_t bits) {
  if (!WL_PURGE_NEVER) {
    if ((seg->clean_mask & ~seg->fresh_mask & bits) != 0) wl_purge_delay_refill(heap->now);
    seg->fresh_mask &= ~bits;
    seg->purge_mask &= ~bits;
    seg->purge_old &= ~bits;
  }
  seg->clean_mask &= ~bits;
}

/* Mark freed slices dirty; purge them now or schedule the purge.
   Purging runs in rounds of one delay: a round purges what was already dirty
   at the start of the previous round (purge_old) and ages what became dirty
   since (purge_mask), so memory is given back between one and two delays
   after it was freed, never moments after, and a span freed and reused
   within the delay is not purged and faulted in again. */
static void schedule_purge(wl_heap_t *heap, wl_segment_t *seg, uint64_t bits) {
  long delay = wl_purge_delay();
  if (delay < 0) return;
  if (delay == 0) { purge_slices(seg, bits); return; }
  if (seg->purge_mask == 0 && seg->purge_old == 0) seg->purge_expire = heap->now + delay;
  seg->purge_mask |= bits;
  seg->purge_last = heap->now;
  if (seg->purge_expire < heap->purge_due) heap->purge_due = seg->purge_expire;
}

/* The bookkeeping of one purge round of a segment that is due (or of
   everything when forced): *due receives the slices to purge now. Returns
   when the next round is due, INT64_MAX for none. */
static int64_t purge_round_due(wl_segment_t *seg, int64_t now, bool force, uint64_t *due) {
  *due = 0;
  if (force) {
    *due = seg->purge_old | seg->purge_mask;
    seg->purge_old = seg->purge_mask = 0;
    return INT64_MAX;
  }
  if (seg->purge_old == 0 && seg->purge_mask == 0) return INT64_MAX;
  if (seg->purge_expire > now) return seg->purge_expire;
  int64_t delay = (int64_t)wl_max(1, (size_t)wl_purge_delay());
  bool young_due = seg->purge_last + delay <= now; /* even the newest has waited a delay */
  *due = seg->purge_old | (young_due ? seg->purge_mask : 0);
  if (*due != 0) wl_purge_delay_purged(now); /* a forced purge (above) bets nothing */
  seg->purge_old = young_due ? 0 : seg->purge_mask;
  seg->purge_mask = 0;
  if (seg->purge_old == 0) return INT64_MAX;
  seg->purge_expire = now + delay;
  return seg->purge_expire;
}

static int64_t purge_round(wl_segment_t *seg, int64_t now, bool force) {
  uint64_t due;
  int64_t next = purge_round_due(seg, now, force, &due);
  purge_slices(seg, due);
  return next;
}

/* ------------------------------------------------------------------------
   Free spans
   ------------------------------------------------------------------------ */
static void span_queue_push(wl_heap_t *heap, wl_page_t *span) {
  wl_page_queue_t *q = &heap->spans[span->slice_count];
  span->prev = NULL;
  span->next = q->first;
  if (q->first != NULL) q->first->prev = span;
  else q->last = span;
  q->first = span;
  heap->span_mask |= (uint64_t)1 << (span->slice_count - 1);
}

static void span_queue_remove(wl_heap_t *heap, wl_page_t *span) {
  wl_page_queue_t *q = &heap->spans[span->slice_count];
  if (span->prev != NULL) span->prev->next = span->next;
  else q->first = span->next;
  if (span->next != NULL) span->next->prev = span->prev;
  else q->last = span->prev;
  span->next = span->prev = NULL;
  if (q->first == NULL) heap->span_mask &= ~((uint64_t)1 << (span->slice_count - 1));
}

/* Describe [idx, idx+count) as one free span: its first descriptor, and the
   page map entries of all its slices. */
static wl_page_t *span_init(wl_segment_t *seg, size_t idx, size_t count) {
  wl_page_t *first = &seg->slices[idx];
  memset(first, 0, sizeof *first);
  first->kind = WL_PAGE_SPAN;
  first->slice_count = (uint32_t)count;
  for (size_t j = 0; j < count; j++) seg->page_map[idx + j] = first;
  return first;
}

/* Free [idx, idx+count), merging with free neighbours, and queue it. */
static void span_free(wl_heap_t *heap, wl_segment_t *seg, size_t idx, size_t count) {
  size_t end = idx + count;
  if (end < WL_SLICES) {
    wl_page_t *next = &seg->slices[end];
    if (next->kind == WL_PAGE_SPAN) {
      span_queue_remove(heap, next);
      count += next->slice_count;
      next->kind = WL_PAGE_NONE;
    }
  }
  if (idx > WL_SLICES_META) {
    wl_page_t *prev = seg->page_map[idx - 1];
    if (prev->kind == WL_PAGE_SPAN) {
      span_queue_remove(heap, prev);
      idx = wl_page_index(seg, prev);
      count += prev->slice_count;
    }
  }
  span_queue_push(heap, span_init(seg, idx, count));
}

/* Describe slices [idx+from, idx+count) as part of the page at idx. */
static void page_slices_init(wl_segment_t *seg, size_t idx, size_t from, size_t count) {
  for (size_t j = from; j < count; j++) {
    wl_page_t *d = &seg->slices[idx + j];
    d->kind = WL_PAGE_NONE;
    d->slice_count = 0;
    atomic_store_explicit(&d->tid, 0, memory_order_relaxed);
    seg->page_map[idx + j] = &seg->slices[idx];
  }
}

/* ------------------------------------------------------------------------
   The invariants (top of this file), checked in debug builds after every
   change to a heap's segment: one walk of its 64 slices and of the heap's
   64 span queues heads, so cheap enough for every page made or freed.
   ------------------------------------------------------------------------ */
#if WL_DEBUG >= 2
static void segment_check(const wl_heap_t *heap, const wl_segment_t *seg) {
  wl_assert_internal(seg->heap == heap && seg->page_map[0] == &seg->slices[0]);
  uint64_t in_pages = 0;
  uint32_t pages = 0;
  bool after_span = false;
  for (size_t i = WL_SLICES_META; i < WL_SLICES;) {
    const wl_page_t *d = &seg->slices[i];
    size_t n = d->slice_count;
    /* each slice in exactly one page or span, whose first descriptor page_map names */
    wl_assert_internal(d->kind != WL_PAGE_NONE && n >= 1 && n <= WL_SLICES - i);
    for (size_t j = 0; j < n; j++) wl_assert_internal(seg->page_map[i + j] == d);
    if (d->kind == WL_PAGE_SPAN) {
      wl_assert_internal(!after_span); /* free spans are never adjacent */
      /* in its heap's spans[n] queue: linked both ways, or the queue's head */
      wl_assert_internal(d->prev != NULL ? d->prev->next == d : heap->spans[n].first == d);
      wl_assert_internal(d->next != NULL ? d->next->prev == d : heap->spans[n].last == d);
    } else {
      in_pages |= slice_bits(i, n);
      pages++;
    }
    after_span = d->kind == WL_PAGE_SPAN;
    i += n;
  }
  wl_assert_internal(pages == seg->used);
  /* only free slices are dirty (to purge) or known to be zero */
  wl_assert_internal(((seg->purge_mask | seg->purge_old | seg->clean_mask) & in_pages) == 0);
  for (size_t n = 1; n <= WL_SLICES; n++) { /* span_mask bit n-1: spans[n] not empty */
    wl_assert_internal(((heap->span_mask >> (n - 1)) & 1) == (heap->spans[n].first != NULL));
  }
}
#else
WL_INLINE void segment_check(const wl_heap_t *heap, const wl_segment_t *seg) { WL_UNUSED(heap); WL_UNUSED(seg); }
#endif

/* ------------------------------------------------------------------------
   Segments: new, released, cached
   ------------------------------------------------------------------------ */
static void segment_attach(wl_heap_t *heap, wl_segment_t *seg) {
  seg->heap = heap;
  wl_store_relaxed(&seg->tid, heap->tid);
  seg->prev = NULL;
  seg->next = heap->segments;
  if (heap->segments != NULL) heap->segments->prev = seg;
  heap->segments = seg;
  heap->segment_count++;
  if (!WL_PURGE_NEVER && (seg->purge_mask | seg->purge_old) != 0 && seg->purge_expire < heap->purge_due) heap->purge_due = seg->purge_expire;
}

static void segment_detach(wl_heap_t *heap, wl_segment_t *seg) {
  if (seg->prev != NULL) seg->prev->next = seg->next;
  else heap->segments = seg->next;
  if (seg->next != NULL) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  seg->heap = NULL;
  wl_store_relaxed(&seg->tid, 0);
  heap->segment_count--;
  if (seg->by_free) heap->segments_by_free--;
  seg->by_free = 0;
}

static wl_segment_t *cache_pop(void) {
  if (wl_option(WL_OPT_SEGMENT_CACHE) <= 0) return NULL;
  if (wl_load_relaxed(&cache_count) == 0) return NULL; /* a hint; the lock decides */
  wl_lock(&cache_lock);
  wl_segment_t *seg = cache_first;
  if (seg != NULL) {
    cache_first = seg->next;
    wl_fetch_sub(&cache_count, 1);
  }
  wl_unlock(&cache_lock);
  if (seg != NULL) wl_fetch_sub(&wl_stats.segments_cached, 1);
  return seg;
}

static void segment_os_free(wl_segment_t *seg) {
  segment_map_all(seg, WL_MAP_NONE);
  wl_fetch_sub(&wl_stats.segments, 1);
  wl_osmem_unmap(WL_MEM_HEAP, seg, WL_SEGMENT_SIZE);
}

/* A segment from the cache or the OS, not yet any heap's. */
wl_segment_t *wl_segment_obtain(void) {
  wl_segment_t *seg = cache_pop();
  if (seg != NULL) return seg;
  bool is_zero = false;
  seg = wl_segment_os_alloc(WL_SEGMENT_SIZE, WL_SEGMENT_SIZE, 0, &is_zero);
  if (seg == NULL) return NULL;
  if (!is_zero) memset(seg, 0, sizeof *seg);
  seg->kind = WL_SEGMENT_NORMAL;
  seg->map_value = WL_MAP_NORMAL;
  seg->mapped_base = seg;
  seg->mapped_size = WL_SEGMENT_SIZE;
  seg->clean_mask = is_zero ? ~slice_bits(0, WL_SLICES_META) : 0;
  if (!WL_PURGE_NEVER) seg->fresh_mask = seg->clean_mask; /* slices_taken */
  if (wl_option(WL_OPT_HUGE_PAGES)) wl_osmem_advise_huge(seg, WL_SEGMENT_SIZE);
  uint64_t n = wl_fetch_add(&wl_stats.segments, 1) + 1;
  wl_peak_raise(&wl_stats.peak_segments, n);
  seg->page_map[0] = &seg->slices[0]; /* the header slice: kind NONE, no owner */
  segment_map_all(seg, WL_MAP_NORMAL);
  return seg;
}

/* An obtained segment joins the heap: all of it one free span. */
void wl_segment_give(wl_heap_t *heap, wl_segment_t *seg) {
  seg->used = 0;
  segment_attach(heap, seg);
  span_queue_push(heap, span_init(seg, WL_SLICES_META, WL_SLICES - WL_SLICES_META));
}

static bool segment_new(wl_heap_t *heap) {
  wl_segment_t *seg = wl_segment_obtain();
  if (seg == NULL) return false;
  wl_segment_give(heap, seg);
  return true;
}

/* An empty segment leaves its heap: into the cache, or back to the OS. */
static void segment_release(wl_heap_t *heap, wl_segment_t *seg) {
  wl_page_t *span = &seg->slices[WL_SLICES_META];
  wl_assert(span->kind == WL_PAGE_SPAN && span->slice_count == WL_SLICES - WL_SLICES_META);
  span_queue_remove(heap, span);
  segment_detach(heap, seg);
  seg->cache_expire = heap->now;
  wl_lock(&cache_lock);
  bool cached = wl_load_relaxed(&cache_count) < (size_t)wl_max(0, wl_option(WL_OPT_SEGMENT_CACHE));
  if (cached) {
    seg->next = cache_first;
    cache_first = seg;
    wl_fetch_add(&cache_count, 1);
  }
  wl_unlock(&cache_lock);
  if (cached) wl_fetch_add(&wl_stats.segments_cached, 1);
  else segment_os_free(seg);
}

void wl_segment_cache_collect(int64_t now, bool force) {
  if (wl_option(WL_OPT_SEGMENT_CACHE) <= 0) return; /* nothing is ever cached (wasm: folds away) */
  if (wl_load_relaxed(&cache_count) == 0) return;
  if (force) wl_lock(&cache_lock); /* trim or memory pressure: none may be skipped (no caller holds it) */
  else if (!wl_lock_try(&cache_lock)) return;
  wl_segment_t *release = NULL;
  long delay = wl_purge_delay();
  for (wl_segment_t **link = &cache_first; *link != NULL;) {
    wl_segment_t *seg = *link;
    if (delay >= 0) purge_round(seg, now, force);
    if (force) { /* unlink and release */
      *link = seg->next;
      wl_fetch_sub(&cache_count, 1);
      seg->next = release;
      release = seg;
      wl_fetch_sub(&wl_stats.segments_cached, 1);
    } else {
      link = &seg->next;
    }
  }
  wl_unlock(&cache_lock);
  while (release != NULL) {
    wl_segment_t *next = release->next;
    segment_os_free(release);
    release = next;
  }
}

/* ------------------------------------------------------------------------
   Pages: spans handed to and taken back from heaps
   ------------------------------------------------------------------------ */
/* Choose a free span of at least `slices` (m: span_mask shifted so bit 0 is
   `slices`). The best fit by size, except that a span whose first slices are
   still resident (freed, not yet purged) is preferred among the first few
   candidates: reusing resident memory keeps RSS down and saves page faults. */
static wl_page_t *span_pick(wl_heap_t *heap, size_t slices, uint64_t m) {
  if (WL_PURGE_NEVER) return heap->spans[slices + wl_ctz64(m)].first; /* nothing is ever purged: best fit */
  wl_page_t *first = NULL;
  int looked = 0;
  while (m != 0 && looked < 8) {
    size_t n = slices + wl_ctz64(m);
    m &= m - 1;
    for (wl_page_t *span = heap->spans[n].first; span != NULL && looked < 8; span = span->next, looked++) {
      if (first == NULL) first = span;
      wl_segment_t *seg = wl_segment_of(span);
      uint64_t want = slice_bits(wl_page_index(seg, span), slices);
      if (((seg->purge_mask | seg->purge_old) & want) == want) return span;
    }
  }
  return first;
}

wl_page_t *wl_segment_page_alloc(wl_heap_t *heap, size_t slices, wl_page_kind_t kind) {
  wl_assert(slices >= 1 && slices < WL_SLICES);
  uint64_t m;
  while ((m = heap->span_mask >> (slices - 1)) == 0) { /* what exited threads left first, then fresh memory */
    if ((WL_OS_ONE_THREAD || heap->shared || !wl_segment_reclaim_one(heap)) && !segment_new(heap)) return NULL;
  }
  wl_page_t *span = span_pick(heap, slices, m);
  size_t n = span->slice_count;
  wl_segment_t *seg = wl_segment_of(span);
  if (seg->by_free) { /* the heap allocates in it now: it keeps its empty pages again */
    seg->by_free = 0;
    heap->segments_by_free--;
  }
  size_t idx = wl_page_index(seg, span);
  span_queue_remove(heap, span);
  if (n > slices) span_queue_push(heap, span_init(seg, idx + slices, n - slices));
  page_slices_init(seg, idx, 1, slices);
  wl_page_t *page = span;
  memset(page, 0, sizeof *page);
  page->kind = (uint8_t)kind;
  page->slice_count = (uint32_t)slices;
  uint64_t bits = slice_bits(idx, slices);
  page->free_is_zero = (seg->clean_mask & bits) == bits;
  slices_taken(heap, seg, bits);
  seg->used++;
  segment_check(heap, seg);
  return page;
}

void wl_segment_page_free(wl_heap_t *heap, wl_page_t *page) {
  wl_segment_t *seg = wl_segment_of(page);
  size_t idx = wl_page_index(seg, page);
  size_t count = page->slice_count;
  wl_store_relaxed(&page->tid, 0);
  wl_store_relaxed(&page->heap, NULL);
  page->kind = WL_PAGE_NONE;
  seg->used--;
  schedule_purge(heap, seg, slice_bits(idx, count));
  span_free(heap, seg, idx, count);
  if (seg->used == 0) segment_release(heap, seg);
  else segment_check(heap, seg);
}

bool wl_segment_page_grow(wl_heap_t *heap, wl_page_t *page, size_t slices) {
  wl_segment_t *seg = wl_segment_of(page);
  size_t idx = wl_page_index(seg, page);
  size_t have = page->slice_count;
  size_t end = idx + have;
  if (slices <= have) return true;
  if (end >= WL_SLICES) return false;
  wl_page_t *next = &seg->slices[end];
  size_t need = slices - have;
  if (next->kind != WL_PAGE_SPAN || next->slice_count < need) return false;
  size_t n = next->slice_count;
  span_queue_remove(heap, next);
  if (n > need) span_queue_push(heap, span_init(seg, end + need, n - need));
  page_slices_init(seg, idx, have, slices);
  uint64_t bits = slice_bits(end, need);
  slices_taken(heap, seg, bits);
  page->slice_count = (uint32_t)slices;
  segment_check(heap, seg);
  return true;
}

void wl_segment_page_shrink(wl_heap_t *heap, wl_page_t *page, size_t slices) {
  wl_segment_t *seg = wl_segment_of(page);
  size_t idx = wl_page_index(seg, page);
  size_t have = page->slice_count;
  if (slices >= have || slices == 0) return;
  page->slice_count = (uint32_t)slices;
  schedule_purge(heap, seg, slice_bits(idx + slices, have - slices));
  span_free(heap, seg, idx + slices, have - slices);
  segment_check(heap, seg);
}

/* ------------------------------------------------------------------------
   Purging
   ------------------------------------------------------------------------ */
void wl_segments_purge(wl_heap_t *heap, int64_t now, bool force) {
  int64_t due = INT64_MAX;
  if (wl_purge_delay() < 0) { /* nothing is ever scheduled (wasm: folds away) */
    heap->purge_due = due;
    return;
  }
  for (wl_segment_t *seg = heap->segments; seg != NULL; seg = seg->next) {
    int64_t next = purge_round(seg, now, force);
    if (next < due) due = next;
  }
  heap->purge_due = due;
}

/* Purging a shared heap. A span taken out is described as a page of kind
   WL_PAGE_PURGING, counted in seg->used: span_pick cannot hand it out,
   span_free does not merge with it, and its segment cannot be released.
   Its descriptor carries the slices to purge (div_magic) and those known
   to be zero already (free_limit), which the segment's masks do not hold
   meanwhile: they describe free slices only (segment_check). */
size_t wl_segments_purge_take(wl_heap_t *heap, int64_t now, bool force, wl_page_t **spans, size_t max) {
  int64_t next_due = INT64_MAX;
  size_t n = 0;
  if (wl_purge_delay() < 0) {
    heap->purge_due = next_due;
    return 0;
  }
  for (wl_segment_t *seg = heap->segments; seg != NULL; seg = seg->next) {
    if (n == max) { /* the rest next time */
      if (seg->purge_expire < next_due && (seg->purge_old | seg->purge_mask) != 0) next_due = seg->purge_expire;
      continue;
    }
    uint64_t due;
    int64_t next = purge_round_due(seg, now, force, &due);
    while (due != 0 && n < max) {
      wl_page_t *span = seg->page_map[wl_ctz64(due)];
      wl_assert(span->kind == WL_PAGE_SPAN);
      size_t idx = wl_page_index(seg, span);
      uint64_t bits = slice_bits(idx, span->slice_count);
      span_queue_remove(heap, span);
      span->kind = WL_PAGE_PURGING;
      /* the span's other dirty slices go too: early, but never twice */
      span->div_magic = (due | seg->purge_mask | seg->purge_old) & bits & ~seg->clean_mask;
      wl_store_relaxed(&span->free_limit, seg->clean_mask & bits);
      seg->purge_mask &= ~bits;
      seg->purge_old &= ~bits;
      seg->clean_mask &= ~bits;
      seg->used++;
      due &= ~bits;
      spans[n++] = span;
    }
    if (due != 0) { /* no room: due at the next round */
      seg->purge_old |= due;
      seg->purge_expire = now;
      next = now;
    }
    if (next < next_due) next_due = next;
    segment_check(heap, seg);
  }
  heap->purge_due = next_due;
  return n;
}

void wl_segment_purge_span(wl_page_t *span) {
  uint64_t clean = purge_runs(wl_segment_of(span), span->div_magic);
  wl_store_relaxed(&span->free_limit, wl_load_relaxed(&span->free_limit) | clean);
}

void wl_segments_purge_return(wl_heap_t *heap, wl_page_t **spans, size_t n) {
  for (size_t k = 0; k < n; k++) {
    wl_page_t *span = spans[k];
    wl_segment_t *seg = wl_segment_of(span);
    uint64_t clean = wl_load_relaxed(&span->free_limit);
    size_t idx = wl_page_index(seg, span);
    size_t count = span->slice_count;
    span->kind = WL_PAGE_NONE;
    seg->used--;
    span_free(heap, seg, idx, count);
    seg->clean_mask |= clean;
    if (seg->used == 0) segment_release(heap, seg);
    else segment_check(heap, seg);
  }
}

/* ------------------------------------------------------------------------
   Abandoning and reclaiming
   ------------------------------------------------------------------------ */
void wl_segment_abandon(wl_heap_t *heap, wl_segment_t *seg) {
  for (size_t i = WL_SLICES_META; i < WL_SLICES;) {
    wl_page_t *d = &seg->slices[i];
    if (d->kind == WL_PAGE_SPAN) span_queue_remove(heap, d);
    i += d->slice_count;
  }
  segment_detach(heap, seg);
  wl_lock(&abandoned_lock);
  seg->next = abandoned_first; /* prev: NULL since segment_detach */
  if (abandoned_first != NULL) abandoned_first->prev = seg;
  abandoned_first = seg;
  seg->abandoned = 1;
  wl_unlock(&abandoned_lock);
  wl_fetch_add(&abandoned_count, 1);
  wl_fetch_add(&wl_stats.segments_abandoned, 1);
}

/* Purge what is due in abandoned segments (or all their free memory): no
   heap runs their purge rounds until one reclaims them, and a thread that
   exits leaves its free memory on the schedule it had. The lock keeps
   reclaimers out meanwhile; a busy lock is skipped unless forced. */
void wl_segment_abandoned_collect_(int64_t now, bool force) {
  if (WL_PURGE_NEVER) return; /* nothing is ever purged */
  if (wl_load_relaxed(&abandoned_count) == 0 || wl_purge_delay() < 0) return;
  if (force) wl_lock(&abandoned_lock);
  else if (!wl_lock_try(&abandoned_lock)) return;
  for (wl_segment_t *seg = abandoned_first; seg != NULL; seg = seg->next) purge_round(seg, now, force);
  wl_unlock(&abandoned_lock);
}

/* Take seg off the abandoned list (under its lock). */
static void abandoned_unlink(wl_segment_t *seg) {
  if (seg->prev != NULL) seg->prev->next = seg->next;
  else abandoned_first = seg->next;
  if (seg->next != NULL) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  seg->abandoned = 0;
}

/* The heap takes over seg, taken off the abandoned list: its free spans,
   and its pages, collected (adopting may free pages and so the segment
   itself). */
static void reclaim(wl_heap_t *heap, wl_segment_t *seg, bool by_free) {
  wl_fetch_sub(&abandoned_count, 1);
  wl_fetch_add(&wl_stats.segments_reclaimed, 1);
  segment_attach(heap, seg);
  seg->by_free = by_free;
  heap->segments_by_free += by_free;
  wl_page_t *pages[WL_SLICES];
  size_t npages = 0;
  for (size_t i = WL_SLICES_META; i < WL_SLICES;) {
    wl_page_t *d = &seg->slices[i];
    if (d->kind == WL_PAGE_SPAN) span_queue_push(heap, d);
    else pages[npages++] = d;
    i += d->slice_count;
  }
  segment_check(heap, seg);
  for (size_t k = 0; k < npages; k++) wl_heap_adopt_page(heap, pages[k]);
}

bool wl_segment_reclaim_one(wl_heap_t *heap) {
  if (WL_OS_ONE_THREAD) return false; /* nothing is ever abandoned: the reclaim code folds away */
  if (wl_load_relaxed(&abandoned_count) == 0) return false;
  wl_lock(&abandoned_lock);
  wl_segment_t *seg = abandoned_first;
  if (seg != NULL) abandoned_unlink(seg);
  wl_unlock(&abandoned_lock);
  if (seg == NULL) return false;
  reclaim(heap, seg, false);
  return true;
}

/* A free into an abandoned segment hands it to the freeing thread when that
   thread is taking over a dead thread's blocks rather than passing through:
   - at once if the heap has no segment yet (a thread that starts by freeing
     what its predecessor left: bench-larson's replacement threads);
   - while every segment the heap has came to it this way and it has not yet
     allocated a page in any (it is still clearing what it took over), at
     the WL_FREED_INTO_HITS-th free into one of the last WL_FREED_INTO
     abandoned segments it freed into (the predecessor's other segments:
     bench-thread-exit);
   - never once the heap allocates pages of its own: a thread that frees
     objects handed around by many threads hits many segments a few times
     each, and taking them made it hold them all (bench-mstress at 16
     threads: 48 MiB instead of 32).
   A segment taken this way gives each page back as soon as it is empty
   (wl_page_retire) until the heap allocates a page in it, so a thread that
   only frees holds no dead thread's memory: without that, a thread freeing
   what short-lived producers left grew by a segment per producer
   (tests/test_threads.c). */
#define WL_FREED_INTO_HITS 8

static bool freed_into_often(wl_heap_t *heap, wl_segment_t *seg) {
  if (heap->segment_count == 0) return true;
  if (heap->segments_by_free != heap->segment_count) return false;
  for (size_t i = 0; i < WL_FREED_INTO; i++) {
    if (heap->freed_into[i] == seg) {
      if (++heap->freed_into_hits[i] < WL_FREED_INTO_HITS) return false;
      heap->freed_into[i] = NULL;
      return true;
    }
  }
  size_t i = heap->freed_into_next++ % WL_FREED_INTO;
  heap->freed_into[i] = seg;
  heap->freed_into_hits[i] = 1;
  return false;
}

bool wl_segment_reclaim_on_free(wl_heap_t *heap, wl_segment_t *seg) {
  if (WL_OS_ONE_THREAD || !freed_into_often(heap, seg)) return false;
  wl_lock(&abandoned_lock);
  bool mine = seg->abandoned != 0;
  if (mine) abandoned_unlink(seg);
  wl_unlock(&abandoned_lock);
  if (mine) reclaim(heap, seg, true);
  return mine;
}
