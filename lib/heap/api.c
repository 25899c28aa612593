/* api.c: the exported walloc_ names of the general heap.
 *
 * Each is one inlined fast path or one call into the heap; the malloc family
 * (preload/) is built from the same inline functions, so both cost the same.
 */
#include "heap.h"
#include "walloc.h"

#include <errno.h>

WL_API const char *walloc_version(void) { return WALLOC_VERSION_STRING; }
WL_API void *walloc_malloc(size_t size) { return wl_malloc_fast(size); }
WL_API void *walloc_calloc(size_t count, size_t size) { return wl_calloc(count, size); }
WL_API void *walloc_realloc(void *ptr, size_t size) { return wl_realloc(ptr, size); }
WL_API void walloc_free(void *ptr) { wl_free_fast(ptr); }
WL_API size_t walloc_usable_size(const void *ptr) { return wl_usable_size(ptr); }
WL_API bool walloc_owns(const void *ptr) { return wl_owns(ptr); }
WL_API void walloc_stats_print(int fd) { wl_stats_print(fd); }

WL_API void *walloc_aligned_alloc(size_t alignment, size_t size) {
  if (!wl_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return wl_aligned(alignment, size, false);
}

/* force: what every layer caches goes back, as when the OS refuses memory (pressure.c). */
WL_API void walloc_collect(bool force) {
  wl_heap_t *heap = wl_heap_get_or_init();
  if (heap == NULL) return;
  if (force) wl_give_back(heap);
  else wl_heap_collect(heap, false);
}
