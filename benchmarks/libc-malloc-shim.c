/* libc-malloc-shim.so: glibc's malloc for a program linked against another
 * allocator.
 *
 * Debian's redis-server is linked against libjemalloc.so.2, so running it
 * "without a preload" measures jemalloc, not glibc. run_programs.py preloads
 * this shim for the glibc column of such programs: every name of the malloc
 * family the program could bind to forwards to glibc's implementation, so
 * neither the program nor the allocator it was linked with gets a say.
 *
 * malloc, free, calloc, realloc and memalign have glibc aliases
 * (__libc_malloc and friends) that cannot be interposed; the rest are looked
 * up in libc.so.6 itself (a handle to it searches only libc, never the
 * allocator that comes before it in the global scope). The lookup runs in a
 * constructor, before the program's first call, and dlsym on a library handle
 * does not allocate on this path; a call that could arrive earlier falls back
 * to an equivalent built from the aliases.
 *
 * Not part of walloc: a benchmark fixture only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define SHIM_API __attribute__((visibility("default")))

static size_t (*libc_usable_size)(void *);
static int (*libc_posix_memalign)(void **, size_t, size_t);

__attribute__((constructor)) static void shim_init(void) {
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (!libc) return;
  libc_usable_size = (size_t (*)(void *))dlsym(libc, "malloc_usable_size");
  libc_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(libc, "posix_memalign");
  dlclose(libc);
}

SHIM_API void *malloc(size_t n) { return __libc_malloc(n); }
SHIM_API void free(void *p) { __libc_free(p); }
SHIM_API void *calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
SHIM_API void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
SHIM_API void *memalign(size_t align, size_t n) { return __libc_memalign(align, n); }
SHIM_API void *aligned_alloc(size_t align, size_t n) { return __libc_memalign(align, n); }
SHIM_API void *valloc(size_t n) { return __libc_memalign(4096, n); }
SHIM_API void *pvalloc(size_t n) { return __libc_memalign(4096, (n + 4095) & ~(size_t)4095); }

SHIM_API int posix_memalign(void **out, size_t align, size_t n) {
  if (libc_posix_memalign) return libc_posix_memalign(out, align, n);
  if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
  void *p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

SHIM_API size_t malloc_usable_size(void *p) {
  return libc_usable_size ? libc_usable_size(p) : 0;
}
