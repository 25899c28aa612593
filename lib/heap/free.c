/* free.c: giving blocks back.
 *
 * The fast path (heap.h, wl_free_fast) handles a block freed by the thread
 * that owns its page. Everything else lands here:
 *  - a foreign pointer (not in any walloc segment) is ignored and counted,
 *    and reported when WALLOC_VERBOSE is on;
 *  - a huge block goes to huge.c;
 *  - a block of another thread's page is pushed onto the page's atomic
 *    xthread_free list; if the owner has parked the page in its full queue
 *    (state WL_DELAYED_USE), the first such free also pushes the block onto
 *    the owner heap's thread_delayed_free list so the owner notices;
 *  - with debug checks on, interior pointers and double frees are caught.
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

static bool list_contains(const wl_block_t *list, const void *p) {
  for (; list != NULL; list = list->next) {
    if (list == p) return true;
  }
  return false;
}

/* Debug checks: p must be a block start and, for the owner, not free already. */
static bool debug_check_free(wl_page_t *page, void *p, bool owner) {
  if ((uint8_t *)p < page->start || wl_block_start(page, p) != (uint8_t *)p) {
    wl_error("free of an interior or invalid pointer", p);
    return false;
  }
  if (owner && (page->used == 0 || list_contains(page->free, p) || list_contains(page->local_free, p))) {
    wl_fatal("double free", p);
    return false;
  }
  return true;
}

void wl_free_generic(void *p, wl_page_t *page) {
  if (WL_UNLIKELY(page->kind < WL_PAGE_SMALL || page->kind > WL_PAGE_LARGE)) {
    wl_fatal("free of a pointer into free walloc memory (double free?)", p);
    return;
  }
  bool owner = wl_load_relaxed(&page->tid) == wl_os_thread_id();
  if (WL_DEBUG > 0 && !debug_check_free(page, p, owner)) return;
  /* one thread (single-threaded wasm): every page in use is its own, so
     the foreign-free path folds away */
  if (owner || WL_OS_ONE_THREAD) wl_free_local(wl_load_relaxed(&page->heap), page, (wl_block_t *)p);
  else free_remote(page, (wl_block_t *)p);
}

void wl_free_special(void *p) {
  if (p == NULL) return;
  unsigned v = wl_map_value(p);
  if (v == WL_MAP_NONE) {
    wl_fetch_add(&wl_stats.foreign_frees, 1);
    wl_error("free of a pointer walloc does not own (ignored)", p);
    return;
  }
  wl_huge_free(wl_huge_header(p, v), p);
}

bool wl_owns(const void *p) {
  unsigned v = wl_map_value(p);
  if (v == WL_MAP_NONE) return false;
  if (v != WL_MAP_NORMAL) return !wl_huge_header(p, v)->huge_in_cache;
  wl_page_t *page = wl_page_of(wl_segment_of(p), p);
  if (page->kind == WL_PAGE_LARGE) return page->used != 0 && (const uint8_t *)p == page->start; /* not cached */
  return page->kind >= WL_PAGE_SMALL && page->kind <= WL_PAGE_MEDIUM && (const uint8_t *)p >= page->start;
}
