/* alloc.c: allocation: the slow path behind wl_malloc_fast, zeroed and
 * aligned allocation, realloc and usable size.
 *
 * Every allocating call reduces to wl_malloc_slow(size, heap, zero) once its
 * fast path misses: it makes sure the thread has a heap, does the heap's
 * maintenance (delayed frees, due purges), then routes by size: small and
 * medium sizes to a page of their class, large ones to a span of their own in
 * the heap all threads share (large.c), huge ones to a mapping of their own (huge.c).
 * Errors follow the C library: NULL with errno ENOMEM for sizes that cannot
 * be served; EINVAL is decided by the entry points that take an alignment.
 * When the OS refuses memory, wl_malloc_slow and the aligned huge path give
 * back what every layer caches and try once more before they answer ENOMEM
 * (pressure.c).
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

WL_INLINE void *page_pop(wl_page_t *page, size_t size, bool zero) {
  wl_block_t *block = page->free;
  page->free = block->next;
  wl_store_relaxed(&block->tag, 0); /* live: see wl_block_t */
  page->used++;
  page->allocs++;
  if (zero) {
    if (page->free_is_zero) block->next = NULL;
    else memset(block, 0, size);
  }
  return block;
}

WL_NOINLINE void *wl_malloc_slow(size_t size, wl_heap_t *heap, bool zero) {
  wl_page_t *page;
  if (size <= WL_MEDIUM_MAX) { /* second chance: the class queue's first page */
    page = heap->pages[wl_bin_of(size)].first;
    if (page != NULL && page->free != NULL) goto pop;
  }
  if (WL_UNLIKELY(heap == &wl_heap_empty)) {
    heap = wl_heap_get_or_init();
    if (heap == NULL) goto nomem;
  }
  wl_heap_maintenance(heap);
  if (size <= WL_MEDIUM_MAX) {
    page = wl_page_find(heap, size);
    if (page == NULL) goto nomem;
  pop: /* one inlined pop for both: it clears memory for calloc */
    return page_pop(page, size, zero);
  }
  void *p = size <= WL_LARGE_MAX ? wl_large_alloc(heap, size, zero) : wl_huge_alloc(size, WL_MIN_ALIGN, zero);
  if (p != NULL) return p;
nomem: /* give back what every layer caches, try once more, else ENOMEM (pressure.c) */
  return wl_malloc_refused(size, heap, zero);
}

void *wl_malloc(size_t size) { return wl_malloc_fast(size); }

void *wl_zalloc(size_t size) {
  wl_heap_t *heap = wl_heap_tls;
  if (WL_LIKELY(size <= WL_DIRECT_WSIZE * WL_MIN_ALIGN)) {
    wl_page_t *page = heap->pages_direct[wl_wsize(size)];
    if (WL_LIKELY(page->free != NULL)) return page_pop(page, size, true);
  }
  return wl_malloc_slow(size, heap, true);
}

void *wl_calloc(size_t count, size_t size) {
  size_t total;
  if (WL_UNLIKELY(wl_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  return wl_zalloc(total);
}

/* Alignment is a power of two (callers check). Blocks of a class whose size is
   a multiple of the alignment are aligned already, because pages start on
   64 KiB boundaries: round the size up to the alignment and every class
   qualifies. Larger alignments get a huge mapping placed for them. */
void *wl_aligned(size_t align, size_t size, bool zero) {
  if (WL_UNLIKELY(!wl_is_pow2(align))) {
    errno = EINVAL;
    return NULL;
  }
  if (align > WL_MIN_ALIGN) {
    if (WL_UNLIKELY(size > WL_MAX_ALLOC || align > WL_MAX_ALLOC / 2)) {
      errno = ENOMEM;
      return NULL;
    }
    size_t rounded = wl_align_up(size == 0 ? 1 : size, align);
    if (align > WL_ALIGN_MAX_PAGE || rounded > WL_LARGE_MAX) {
      wl_heap_t *heap = wl_heap_get_or_init();
      if (heap != NULL) wl_heap_maintenance(heap);
      void *p = wl_huge_alloc(size, align, zero);
      if (p == NULL && wl_give_back(heap != NULL ? heap : &wl_heap_empty)) p = wl_huge_alloc(size, align, zero);
      if (p == NULL) errno = ENOMEM;
      return p;
    }
    size = rounded;
  }
  /* one allocation site for both cases: the inlined fast path once */
  void *p = zero ? wl_zalloc(size) : wl_malloc_also(size);
  wl_assert(p == NULL || ((uintptr_t)p & (align - 1)) == 0);
  return p;
}

/* ------------------------------------------------------------------------
   realloc
   ------------------------------------------------------------------------ */
static void *realloc_move(void *p, size_t old_usable, size_t size) {
  void *q = wl_malloc_also(size);
  if (q == NULL) return NULL; /* errno set; p untouched */
  memcpy(q, p, wl_min(old_usable, size));
  wl_free_also(p);
  return q;
}

void *wl_realloc(void *p, size_t size) {
  if (p == NULL) return wl_malloc_also(size);
  if (size == 0) { /* glibc: free and return NULL */
    wl_free_also(p);
    return NULL;
  }
  if (WL_UNLIKELY(size > WL_MAX_ALLOC)) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned v = wl_map_value(p);
  if (v != WL_MAP_NORMAL) {
    if (v != WL_MAP_NONE && wl_live_block_size(p, NULL) != 0) return wl_huge_realloc(wl_huge_header(p, v), p, size);
  } else {
    wl_page_t *page = wl_page_of(wl_segment_of(p), p);
    size_t usable = wl_page_live_size(page, p); /* small and medium blocks, inline */
    if (usable == 0 && page->kind == WL_PAGE_LARGE) {
      usable = wl_live_block_size(p, NULL);
      if (usable != 0 && wl_large_resize(page, size)) return p; /* in its own span */
    }
    if (usable != 0) {
      if (size <= usable && size >= usable / 2) return p; /* fits, and not much smaller: keep it */
      return realloc_move(p, usable, size);
    }
  }
  /* not a live block: a freed, interior or foreign pointer (reported; when
     the option says to go on, nothing is touched) */
  wl_live_block_size(p, "realloc");
  errno = EINVAL;
  return NULL;
}

size_t wl_usable_size(const void *p) { return wl_live_block_size(p, NULL); }
