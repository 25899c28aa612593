/* override.c: the C library's allocation family, served by walloc.
 *
 * Linked into libwalloc.so only, so that LD_PRELOAD=libwalloc.so (or linking
 * it) replaces malloc in a whole program; on wasm into libwalloc.a, which
 * takes dlmalloc's place in a module linked with -sMALLOC=none (glibc's
 * internal names and mallinfo2 are glibc-only). Each entry point is the heap's
 * inline fast path plus one call to its slow path; the glibc-internal names
 * (__libc_malloc...) are aliases of the same functions. errno follows glibc:
 * ENOMEM for sizes that cannot be served, EINVAL for bad alignments.
 */
#define _GNU_SOURCE
#include "../lib/heap/heap.h"
#include "walloc.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

#define WL_EXPORT_ALIAS(name) __attribute__((alias(#name), used, visibility("default")))

WL_API void *malloc(size_t size) { return wl_malloc_fast(size); }
WL_API void free(void *p) { wl_free_fast(p); }
WL_API void *calloc(size_t count, size_t size) { return wl_calloc(count, size); }
WL_API void *realloc(void *p, size_t size) { return wl_realloc(p, size); }
WL_API size_t malloc_usable_size(void *p) { return wl_usable_size(p); }

WL_API void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (wl_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return wl_realloc(p, total);
}

/* glibc's memalign: a non-power-of-two alignment is rounded up to one. */
WL_API void *memalign(size_t align, size_t size) {
  if (align > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
    errno = EINVAL;
    return NULL;
  }
  if (!wl_is_pow2(align)) align = align <= 1 ? 1 : (size_t)1 << (wl_bsr(align) + 1);
  return wl_aligned(align, size, false);
}

/* C17 and glibc 2.38+: the alignment must be a power of two. */
WL_API void *aligned_alloc(size_t align, size_t size) {
  if (!wl_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return wl_aligned(align, size, false);
}

WL_API int posix_memalign(void **out, size_t align, size_t size) {
  if (align < sizeof(void *) || !wl_is_pow2(align)) return EINVAL;
  int saved = errno;
  void *p = wl_aligned(align, size, false);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

WL_API void *valloc(size_t size) { return wl_aligned(wl_os.page_size ? wl_os.page_size : 4096, size, false); }

WL_API void *pvalloc(size_t size) {
  size_t page = wl_os.page_size ? wl_os.page_size : 4096;
  if (size > WL_MAX_ALLOC) {
    errno = ENOMEM;
    return NULL;
  }
  return wl_aligned(page, size == 0 ? page : wl_align_up(size, page), false);
}

#ifdef __GLIBC__
/* glibc-internal names some programs and libraries call directly */
void *__libc_malloc(size_t size) WL_EXPORT_ALIAS(malloc);
void __libc_free(void *p) WL_EXPORT_ALIAS(free);
void *__libc_calloc(size_t count, size_t size) WL_EXPORT_ALIAS(calloc);
void *__libc_realloc(void *p, size_t size) WL_EXPORT_ALIAS(realloc);
void *__libc_memalign(size_t align, size_t size) WL_EXPORT_ALIAS(memalign);
void *__libc_valloc(size_t size) WL_EXPORT_ALIAS(valloc);
void *__libc_pvalloc(size_t size) WL_EXPORT_ALIAS(pvalloc);
int __posix_memalign(void **out, size_t align, size_t size) WL_EXPORT_ALIAS(posix_memalign);
#endif

#ifdef __EMSCRIPTEN__
/* musl's internal names (__libc_malloc...) are in preload/libc_names.c. */
/* The names Emscripten's JavaScript runtime allocates with (dlmalloc and
   emmalloc define them; with -sMALLOC=none walloc must). */
#if defined(__EMSCRIPTEN_PTHREADS__)
/* With pthreads the runtime allocates a thread's TLS block here before the
   thread's thread-locals exist (heap.c, wl_heap_runtime_alloc), and frees it
   and the thread's key array after they are gone: free reads no
   thread-local, the allocations come from the runtime's locked heap. */
WL_API void *emscripten_builtin_malloc(size_t size) { return wl_heap_runtime_alloc(WL_MIN_ALIGN, size); }
WL_API void *emscripten_builtin_memalign(size_t align, size_t size) {
  if (!wl_is_pow2(align)) align = align <= 1 ? 1 : (size_t)1 << (wl_bsr(align) + 1);
  return wl_heap_runtime_alloc(align, size);
}
void emscripten_builtin_free(void *p) WL_EXPORT_ALIAS(free);
#else
void *emscripten_builtin_malloc(size_t size) WL_EXPORT_ALIAS(malloc);
void emscripten_builtin_free(void *p) WL_EXPORT_ALIAS(free);
void *emscripten_builtin_memalign(size_t align, size_t size) WL_EXPORT_ALIAS(memalign);
#endif
#endif

/* ------------------------------------------------------------------------
   Tuning and introspection, answered from walloc's own state
   ------------------------------------------------------------------------ */
static uint64_t given_back(void) {
  wl_osmem_stats_t os;
  wl_osmem_stats(&os);
  return os.purged + os.released;
}

WL_API int malloc_trim(size_t pad) {
  WL_UNUSED(pad);
  uint64_t before = given_back();
  wl_heap_t *heap = wl_heap_get_or_init();
  if (heap != NULL) wl_give_back(heap); /* every layer's caches, as walloc_collect(true) */
  return given_back() > before;
}

/* walloc has no arenas or thresholds to tune: every parameter is accepted
   (returns 1, as glibc does on success) and has no effect. */
WL_API int mallopt(int param, int value) {
  WL_UNUSED(param);
  WL_UNUSED(value);
  return 1;
}

/* The figures of mallinfo2 (glibc) and mallinfo (glibc and Emscripten). */
typedef struct info_s { size_t arena, hblks, uordblks, fordblks, usmblks; } info_t;

static info_t info_get(void) {
  walloc_heap_stats s;
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
  info_t i;
  i.arena = s.mapped_bytes;                 /* bytes walloc holds from the OS */
  i.hblks = (size_t)s.huge_allocations;
  i.uordblks = s.live_bytes;                /* in use */
  i.fordblks = s.mapped_bytes > s.live_bytes ? s.mapped_bytes - s.live_bytes : 0;
  i.usmblks = s.peak_bytes;
  return i;
}

#ifdef __GLIBC__
WL_API struct mallinfo2 mallinfo2(void) {
  info_t i = info_get();
  struct mallinfo2 mi;
  memset(&mi, 0, sizeof mi);
  mi.arena = i.arena;
  mi.hblks = i.hblks;
  mi.uordblks = i.uordblks;
  mi.fordblks = i.fordblks;
  mi.usmblks = i.usmblks;
  mi.keepcost = 0;
  return mi;
}
#endif

static int clamp_int(size_t v) { return v > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)v; }

WL_API struct mallinfo mallinfo(void) {
  info_t i = info_get();
  struct mallinfo mi;
  memset(&mi, 0, sizeof mi);
  mi.arena = clamp_int(i.arena);
  mi.hblks = clamp_int(i.hblks);
  mi.uordblks = clamp_int(i.uordblks);
  mi.fordblks = clamp_int(i.fordblks);
  mi.usmblks = clamp_int(i.usmblks);
  return mi;
}

WL_API void malloc_stats(void) { wl_stats_print(2); }
