/* large.c: blocks of 32 KiB to 2 MiB, a span each, in segments every
 * thread shares.
 *
 * Small and medium blocks live in their thread's pages (heap.h). A large
 * block is one span, and a span of a thread's own segment could serve only
 * that thread again: freed by another thread, or left by one that exited,
 * it waited for its owner, or for its purge, while the threads that needed
 * large memory took and touched fresh spans of their own. In bench-mstress
 * (one item in 200 of 16-256 KiB, handed between short-lived threads) those
 * items made walloc's peak 60 MiB at 32 threads where the same run without
 * them peaks at 7 MiB, and tcmalloc, whose page heap any thread reuses,
 * peaks at 22 MiB.
 *
 * So large blocks come from one heap of their own, `large_heap`, that owns
 * no thread: its segments and free spans (segment.c, the same code as a
 * thread heap's) are touched under one lock. A freed span serves the next
 * large malloc of any thread, with its memory still resident (span_pick
 * prefers resident spans), and is purged a delay after it was freed as in
 * any heap; the purge runs from any thread's maintenance tick. Every large
 * malloc and free takes the lock once; the program writes at least 32 KiB
 * for each, which costs more than the lock.
 *
 * In front of the lock, each thread keeps the last few large blocks it
 * freed (at most 8 blocks and 512 KiB), as the per-thread heaps did before:
 * a thread that frees and mallocs large blocks in turn (bench-mixed-bursts)
 * takes one back with no lock, its memory resident. Whoever frees a block
 * caches it, so a block freed by another thread serves that thread next.
 * Entries older than the purge delay go back to the shared heap at the
 * thread's maintenance tick, all of them at its exit and under memory
 * pressure. Single-threaded wasm has no cache: its one thread's frees go
 * straight to the spans, which serve it as well (and the module is smaller
 * than it was with the per-thread heaps' cache: benchmarks/wasm/funcsizes.py).
 *
 * A large page says whose it is by its `heap` (large_heap) and its `tid`
 * (the address of large_heap, which no thread has, with WL_TID_SLOW): the
 * free fast path never takes it, and wl_free_generic sends it here. A page
 * in a thread's cache is still the shared heap's, with `used` 0.
 * Misuse: a free exchanges the block's free tag (heap.h, wl_block_t), so of
 * two racing frees of one block exactly one goes on; the other, and any
 * free of a cached block, is reported as a double free (free.c).
 * Statistics: counted in the calling thread's heap, published with its
 * other counters, or straight into wl_stats by a thread without a heap.
 */
#include "heap.h"

#include <string.h>

WL_LOCK_STATIC(large_lock, WL_LEVEL_HEAP_LARGE);
/* its id is its own address, which no thread has */
static wl_heap_t large_heap = {.purge_due = INT64_MAX, .shared = true, .tid = (uintptr_t)&large_heap};
static _Atomic(int64_t) large_purge_due = INT64_MAX; /* large_heap.purge_due, readable without the lock */

static size_t slices_of(size_t size) { return (size + WL_SLICE_SIZE - 1) >> WL_SLICE_SHIFT; }

/* The calling thread's clock, and its heap for the statistics (NULL when it
   has none: a thread that only frees, or one past its exit). */
static wl_heap_t *caller(int64_t *now) {
  wl_heap_t *heap = wl_heap_tls;
  /* one thread (single-threaded wasm): it has a heap, or it never had a
     large block to free (and the clock is the heap's, heap.c) */
  if (!WL_OS_ONE_THREAD && heap == &wl_heap_empty) {
    *now = wl_os_clock_ms();
    return NULL;
  }
  *now = heap->now;
  return heap;
}

static void stat_live(wl_heap_t *heap, int64_t blocks, int64_t bytes) {
  if (WL_OS_ONE_THREAD || heap != NULL) {
    heap->stat_large_live += blocks;
    wl_heap_stat_live(heap, bytes);
    return;
  }
  if (blocks != 0) atomic_fetch_add_explicit(&wl_stats.large_live, blocks, memory_order_relaxed);
  wl_stats_live_add(bytes);
}

/* Under the lock: the clock purges are scheduled by, and afterwards the
   lock-free copy of the next purge's deadline. Without `wait`, a busy lock
   is not taken (false). */
static bool locked_try(int64_t now, bool wait) {
  if (wait) wl_lock(&large_lock);
  else if (!wl_lock_try(&large_lock)) return false;
  if (now > large_heap.now) large_heap.now = now;
  return true;
}
static void locked_begin(int64_t now) { locked_try(now, true); }
static void locked_end(void) {
  wl_store_relaxed(&large_purge_due, large_heap.purge_due);
  wl_unlock(&large_lock);
}

/* ------------------------------------------------------------------------
   The shared heap, under the lock
   ------------------------------------------------------------------------ */
/* A span of `slices` for a large block. A fresh segment is mapped outside
   the lock, like the purges below; another thread may take its spans before
   this one is back, and then it looks again. */
static wl_page_t *shared_alloc(int64_t now, size_t slices) {
  for (;;) {
    locked_begin(now);
    if (wl_segment_has_span(&large_heap, slices)) {
      wl_page_t *page = wl_segment_page_alloc(&large_heap, slices, WL_PAGE_LARGE);
      page->reserved = page->capacity = 1;
      wl_store_relaxed(&page->heap, &large_heap);
      wl_page_set_owner(page, large_heap.tid, WL_PAGE_IN_FULL); /* the free fast path never takes it */
      locked_end();
      return page;
    }
    locked_end();
    wl_segment_t *seg = wl_segment_obtain();
    if (seg == NULL) return NULL;
    locked_begin(now);
    wl_segment_give(&large_heap, seg);
    locked_end();
  }
}

/* A list (linked by `next`) of pages back to the shared heap. */
static void shared_free(int64_t now, wl_page_t *list) {
  locked_begin(now);
  while (list != NULL) {
    wl_page_t *page = list;
    list = page->next;
    page->next = NULL;
    wl_segment_page_free(&large_heap, page);
  }
  locked_end();
}

/* ------------------------------------------------------------------------
   The thread's cache
   ------------------------------------------------------------------------ */
/* With one thread (single-threaded wasm) no lock is ever waited for, and
   the shared heap's spans are the thread's: no cache (smaller code). */
#define WL_LARGE_CACHE        (!WL_OS_ONE_THREAD)
#define WL_LARGE_CACHE_COUNT  8
#define WL_LARGE_CACHE_SLICES 8   /* 512 KiB per thread: more is resident memory held idle */

static void cache_push(wl_heap_t *heap, wl_page_t *page) {
  page->next = heap->large_free;
  page->prev = NULL;
  page->cached_at = (uint32_t)heap->now;
  heap->large_free = page;
  heap->large_free_count++;
  heap->large_free_slices += page->slice_count;
}

/* The smallest cached page of `slices` to a quarter more, or NULL. */
static wl_page_t *cache_take(wl_heap_t *heap, size_t slices) {
  wl_page_t **best = NULL;
  for (wl_page_t **link = &heap->large_free; *link != NULL; link = &(*link)->next) {
    size_t have = (*link)->slice_count;
    if (have >= slices && have <= slices + slices / 4 && (best == NULL || have < (*best)->slice_count)) best = link;
  }
  if (best == NULL) return NULL;
  wl_page_t *page = *best;
  *best = page->next;
  page->next = NULL;
  heap->large_free_count--;
  heap->large_free_slices -= page->slice_count;
  return page;
}

/* Keep the newest entries within the bounds and younger than the delay
   (none when `all`); the rest go back to the shared heap in one lock. */
void wl_large_cache_trim(wl_heap_t *heap, bool all) {
  if (!WL_LARGE_CACHE) return;
  long delay = wl_purge_delay();
  wl_page_t **link = &heap->large_free;
  wl_page_t *back = NULL;
  uint32_t count = 0, slices = 0;
  while (*link != NULL) {
    wl_page_t *page = *link;
    bool keep = !all && count < WL_LARGE_CACHE_COUNT && slices + page->slice_count <= WL_LARGE_CACHE_SLICES &&
                (delay < 0 || wl_clock_since(heap->now, page->cached_at) < delay);
    if (keep) {
      count++;
      slices += page->slice_count;
      link = &page->next;
    } else {
      *link = page->next;
      heap->large_free_count--;
      heap->large_free_slices -= page->slice_count;
      page->next = back;
      back = page;
    }
  }
  if (back != NULL) shared_free(heap->now, back);
}

/* ------------------------------------------------------------------------
   malloc, free, realloc
   ------------------------------------------------------------------------ */
void *wl_large_alloc(wl_heap_t *heap, size_t size, bool zero) {
  size_t slices = slices_of(size);
  wl_page_t *page = WL_LARGE_CACHE && heap->large_free != NULL ? cache_take(heap, slices) : NULL;
  bool is_zero = false;
  if (page == NULL) {
    page = shared_alloc(heap->now, slices);
    if (page == NULL) return NULL;
    is_zero = page->free_is_zero;
    page->free_is_zero = false;
  }
  page->block_size = (size_t)page->slice_count * WL_SLICE_SIZE;
  page->used = 1;
  heap->stat_large_allocs++;
  stat_live(heap, 1, (int64_t)page->block_size);
  void *p = wl_page_start(page);
  if (zero && !is_zero) memset(p, 0, size);
  else wl_store_relaxed(&((wl_block_t *)p)->tag, 0); /* live: see wl_block_t */
  return p;
}

bool wl_large_free(void *p, wl_page_t *page) {
  wl_block_t *block = (wl_block_t *)p;
  if (atomic_exchange_explicit(&block->tag, wl_free_tag(page), memory_order_relaxed) == wl_free_tag(page)) {
    return false; /* another free of it won the race */
  }
  int64_t now;
  wl_heap_t *heap = caller(&now);
  page->used = 0;
  stat_live(heap, -1, -(int64_t)page->block_size);
  if (!WL_LARGE_CACHE || heap == NULL) { /* no heap to cache it in */
    page->next = NULL;
    shared_free(now, page);
    return true;
  }
  cache_push(heap, page);
  if (heap->large_free_count > WL_LARGE_CACHE_COUNT || heap->large_free_slices > WL_LARGE_CACHE_SLICES) {
    wl_large_cache_trim(heap, false);
  }
  return true;
}

bool wl_large_resize(wl_page_t *page, size_t size) {
  if (size <= WL_MEDIUM_MAX || size > WL_LARGE_MAX) return false;
  size_t slices = slices_of(size);
  int64_t now;
  wl_heap_t *heap = caller(&now);
  locked_begin(now);
  size_t old = page->block_size;
  bool done = page->kind == WL_PAGE_LARGE && page->used != 0;
  if (done && slices > page->slice_count) done = wl_segment_page_grow(&large_heap, page, slices);
  else if (done && slices < page->slice_count) wl_segment_page_shrink(&large_heap, page, slices);
  if (done) page->block_size = slices * WL_SLICE_SIZE;
  locked_end();
  if (done) stat_live(heap, 0, (int64_t)page->block_size - (int64_t)old);
  return done;
}

/* Purges run without the lock, as mappings do (shared_alloc). A madvise,
   and the TLB shootdown it sends to the other cores, took long enough under
   it to make the threads waiting for it yield (ten times the context
   switches in bench-mixed-bursts at 8 threads). The due spans are taken out
   under the lock, purged, and put back, a batch at a time. */
#define WL_PURGE_BATCH 16

void wl_large_collect(int64_t now, bool force) {
  if (WL_PURGE_NEVER) return; /* nothing is ever purged (wasm: folds away) */
  if (!force && wl_load_relaxed(&large_purge_due) > now) return;
  wl_page_t *spans[WL_PURGE_BATCH];
  size_t n;
  do {
    /* memory pressure or a trim waits: none may be skipped; otherwise a busy
       lock means another thread is at it */
    if (!locked_try(now, force)) return;
    n = wl_segments_purge_take(&large_heap, large_heap.now, force, spans, WL_PURGE_BATCH);
    locked_end();
    if (n == 0) return;
    for (size_t k = 0; k < n; k++) wl_segment_purge_span(spans[k]);
    locked_begin(now);
    wl_segments_purge_return(&large_heap, spans, n);
    locked_end();
  } while (n == WL_PURGE_BATCH);
}
