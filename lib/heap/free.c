/* free.c: giving blocks back, and telling misuse from a free.
 *
 * The fast path (heap.h, wl_free_fast) handles a block freed by the thread
 * that owns its page. Everything else lands here:
 *  - a pointer outside walloc's memory, or into walloc memory where no block
 *    handed out starts (an interior pointer, a free span, metadata, a block
 *    past the page's capacity), or a block that is free already: misuse,
 *    reported and aborted (wl_misuse; WALLOC_MISUSE_ABORT=0 ignores it);
 *  - a huge block goes to huge.c, a large one to large.c;
 *  - a block of another thread's page is pushed onto the page's atomic
 *    xthread_free list; if the owner has parked the page in its full queue
 *    (state WL_DELAYED_USE), the first such free also pushes the block onto
 *    the owner heap's thread_delayed_free list so the owner notices.
 *
 * How misuse is seen, at the cost of a compare or two on the fast path:
 *  - a block is a block when the page's block check says so (heap.h,
 *    wl_page_t): one multiply tells a block start among the blocks handed
 *    out so far from anything else in the page;
 *  - a block is free when its tag word holds its page's address (heap.h,
 *    wl_block_t): every path that puts a block on a free list sets it,
 *    every path that hands one out clears it. Another thread sets it with an
 *    atomic exchange, so of two racing frees of one block exactly one goes
 *    on; only a free by the owner racing with a free by another thread at
 *    the same instant can slip through (the walks of the lists are bounded,
 *    so even then nothing hangs: page.c);
 *  - large blocks: one per page, so p must be the page's start and the page
 *    in use; huge blocks: huge.c.
 * Thread safety: frees by the owner touch only its own page fields; other
 * threads only push onto the atomic lists and exchange the tag.
 */
#include "heap.h"

void wl_free(void *p) { wl_free_fast(p); }

void wl_free_local(wl_heap_t *heap, wl_page_t *page, wl_block_t *block) {
  block->next = page->local_free;
  page->local_free = block;
  if (--page->used == 0) wl_page_retire(heap, page);
  else if (page->flags & WL_PAGE_IN_FULL) wl_page_unfull(heap, page);
}

static void push_delayed(wl_heap_t *heap, wl_block_t *block) {
  wl_block_t *head = wl_load_relaxed(&heap->thread_delayed_free);
  do {
    block->next = head;
  } while (!wl_cas_weak(&heap->thread_delayed_free, &head, block));
}

static void free_remote(wl_page_t *page, wl_block_t *block) {
  uintptr_t tf = wl_load_relaxed(&page->xthread_free);
  uintptr_t tfx;
  bool notify;
  do {
    notify = wl_delayed_state(tf) == WL_DELAYED_USE;
    if (notify) {
      tfx = wl_delayed_make(wl_delayed_ptr(tf), WL_DELAYED_FREEING);
    } else {
      block->next = wl_delayed_ptr(tf);
      tfx = wl_delayed_make(block, wl_delayed_state(tf));
    }
  } while (!wl_cas_weak(&page->xthread_free, &tf, tfx));
  if (!notify) return;
  /* FREEING keeps the heap alive: abandoning waits for it to end. */
  wl_heap_t *heap = wl_load_acquire(&page->heap);
  if (heap != NULL) push_delayed(heap, block);
  tf = wl_load_relaxed(&page->xthread_free);
  do {
    if (heap == NULL) {
      block->next = wl_delayed_ptr(tf);
      tfx = wl_delayed_make(block, WL_DELAYED_NORMAL);
    } else {
      tfx = wl_delayed_make(wl_delayed_ptr(tf), WL_DELAYED_NORMAL);
    }
  } while (!wl_cas_weak(&page->xthread_free, &tf, tfx));
}

/* A block of a segment whose thread exited: the freeing thread may take
   the segment over (the rules: segment.c, wl_segment_reclaim_on_free), and
   then the free is its own. Whoever takes over a dead thread's blocks (the
   thread that replaced it) then reuses their memory; left on the abandoned
   list, the pages held every freed block until a thread short of memory
   reclaimed the segment (bench-larson at 16 threads: 56 MiB instead of 34,
   docs/benchmarks.md). A thread that has not allocated yet gets its heap
   here; one that has exited does not. The caller has exchanged the block's
   tag: it is counted in page->used and on no list, so adopting the page
   cannot free it or the segment. */
static bool free_reclaim(wl_page_t *page, wl_block_t *b) {
  if (WL_OS_ONE_THREAD) return false;
  wl_heap_t *heap = wl_heap_for_reclaim();
  if (heap == NULL || !wl_segment_reclaim_on_free(heap, wl_segment_of(page))) return false;
  wl_free_local(heap, page, b);
  return true;
}

/* ------------------------------------------------------------------------
   Which block p is
   ------------------------------------------------------------------------ */
static bool page_in_use(const wl_page_t *page) {
  return page->kind >= WL_PAGE_SMALL && page->kind <= WL_PAGE_LARGE;
}

/* What is wrong with freeing p, a pointer into a normal segment with page
   descriptor `page`, or -1 if nothing (p starts a live block). *block and
   *size receive the block p falls in, when there is one. Without `tag` the
   free tag is not looked at (the caller exchanges it: wl_free_generic). */
static int block_misuse(const wl_page_t *page, const void *p, bool tag, const uint8_t **block, size_t *size) {
  *block = NULL;
  *size = 0;
  if (!page_in_use(page)) { /* a free span or metadata */
    /* a slice's first byte in a free span: where a large block (or a page's
       first block) was, freed already, and its span given back */
    bool was_block = (page->kind == WL_PAGE_SPAN || page->kind == WL_PAGE_PURGING) && ((uintptr_t)p & (WL_SLICE_SIZE - 1)) == 0;
    return was_block ? WL_MISUSE_DOUBLE_FREE : WL_MISUSE_NOT_ALLOCATED;
  }
  const uint8_t *u = (const uint8_t *)p;
  if (page->kind == WL_PAGE_LARGE) {
    *block = wl_page_start(page);
    *size = page->block_size;
    if (u != wl_page_start(page)) return WL_MISUSE_INTERIOR;
    if (page->used == 0 || (tag && wl_block_is_free(page, p))) return WL_MISUSE_DOUBLE_FREE; /* cached, or freed by another thread */
    return -1;
  }
  if (!wl_block_check(page, p)) {
    if (!WL_REPORTS) return WL_MISUSE_INTERIOR; /* nothing is printed: which kind does not matter */
    size_t area;
    uint8_t *start = wl_page_area(page, &area);
    if (u >= start && u < start + (size_t)page->capacity * page->block_size) {
      *block = wl_block_start(page, p);
      *size = page->block_size;
      return WL_MISUSE_INTERIOR;
    }
    return WL_MISUSE_NOT_ALLOCATED; /* past the blocks handed out, or before the page */
  }
  *block = u;
  *size = page->block_size;
  return tag && wl_block_is_free(page, p) ? WL_MISUSE_DOUBLE_FREE : -1;
}

size_t wl_live_block_size(const void *p, const char *call) {
  unsigned v = wl_map_value(p);
  const uint8_t *block = NULL;
  size_t size = 0;
  int misuse;
  if (v == WL_MAP_NONE) {
    misuse = WL_MISUSE_FOREIGN;
  } else if (v != WL_MAP_NORMAL) {
    wl_segment_t *seg = wl_huge_header(p, v);
    block = (const uint8_t *)seg + seg->huge_offset;
    size = seg->huge_size;
    if (seg->huge_in_cache) misuse = WL_MISUSE_DOUBLE_FREE;
    else if ((const uint8_t *)p == block) return size;
    else misuse = (const uint8_t *)p > block && (const uint8_t *)p < block + size ? WL_MISUSE_INTERIOR
                                                                                 : WL_MISUSE_NOT_ALLOCATED;
  } else {
    wl_page_t *page = wl_page_of(wl_segment_of(p), p);
    size = wl_page_live_size(page, p);
    if (WL_LIKELY(size != 0)) return size;
    misuse = block_misuse(page, p, true, &block, &size);
    if (misuse < 0) return size;
  }
  if (call != NULL) wl_misuse((wl_misuse_t)misuse, call, p, block, size);
  return 0;
}

bool wl_owns(const void *p) { return p != NULL && wl_live_block_size(p, NULL) != 0; }

/* ------------------------------------------------------------------------
   The generic free
   ------------------------------------------------------------------------ */
static void misuse_free(wl_misuse_t what, const void *p, const uint8_t *block, size_t size) {
  wl_misuse(what, "free", p, block, size);
}

/* Debug builds (WL_DEBUG 3): the tag and the block check must agree with a
   walk of the page's own lists. */
static bool list_contains(const wl_block_t *list, const void *p) {
  for (; list != NULL; list = list->next) {
    if (list == p) return true;
  }
  return false;
}

/* The report of a bad free of p (page: its descriptor): `what`, or when
   it is -1, whatever block_misuse finds. Out of line, so that the free paths
   keep no state for it. */
static WL_COLD WL_NOINLINE void free_misuse(void *p, const wl_page_t *page, int what) {
  const uint8_t *block;
  size_t size;
  int found = block_misuse(page, p, true, &block, &size);
  misuse_free((wl_misuse_t)(what >= 0 ? what : found >= 0 ? found : WL_MISUSE_DOUBLE_FREE), p, block, size);
}

void wl_free_generic(void *p, wl_page_t *page) {
  if (page->kind == WL_PAGE_LARGE) { /* the shared heap's, whoever frees it (large.c) */
    if ((uint8_t *)p != wl_page_start(page) || page->used == 0 || !wl_large_free(p, page)) free_misuse(p, page, -1);
    return;
  }
  bool owner = wl_page_owner(page) == wl_os_thread_id() || WL_OS_ONE_THREAD;
  /* a block of a small or medium page (the owner's in a full page, or
     another thread's): anything else is misuse, and so is a block the owner
     finds free (another thread exchanges the tag below) */
  bool ok = (page->kind == WL_PAGE_SMALL || page->kind == WL_PAGE_MEDIUM) && wl_block_check(page, p);
  wl_assert_expensive(!ok || !owner || wl_block_is_free(page, p) ||
                      (!list_contains(page->free, p) && !list_contains(page->local_free, p)));
  if (WL_UNLIKELY(!ok || (owner && wl_block_is_free(page, p)))) {
    free_misuse(p, page, -1);
    return;
  }
  wl_block_t *b = (wl_block_t *)p;
  /* one thread (single-threaded wasm): every page in use is its own, so
     the foreign-free path folds away */
  if (owner) {
    wl_store_relaxed(&b->tag, wl_free_tag(page));
    wl_free_local(wl_load_relaxed(&page->heap), page, b);
    return;
  }
  /* Another thread's block: the tag is looked at only here, exchanged, so
     that of two racing frees exactly one goes on. */
  if (atomic_exchange_explicit(&b->tag, wl_free_tag(page), memory_order_relaxed) == wl_free_tag(page)) {
    free_misuse(p, page, WL_MISUSE_DOUBLE_FREE);
    return;
  }
  if (wl_page_owner(page) == 0 && free_reclaim(page, b)) return;
  free_remote(page, b);
}

void wl_free_special(void *p) {
  if (p == NULL) return;
  unsigned v = wl_map_value(p);
  if (v == WL_MAP_NONE) {
    wl_fetch_add(&wl_stats.foreign_frees, 1);
    misuse_free(WL_MISUSE_FOREIGN, p, NULL, 0);
    return;
  }
  if (wl_live_block_size(p, "free") == 0) return; /* freed, interior: reported */
  wl_huge_free(wl_huge_header(p, v), p);
}
