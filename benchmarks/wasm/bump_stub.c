/* bump_stub.c: the smallest possible malloc (a bump pointer, free does
 * nothing), linked into trivial.c with -sMALLOC=none so run.py can measure a
 * module without a real allocator: trivial.wasm with an allocator minus this
 * one is that allocator's own code. Not for running workloads. */
#include <stddef.h>
#include <string.h>

extern unsigned char __heap_base;
static unsigned char *top = &__heap_base;

void *malloc(size_t n) {
  unsigned char *p = (unsigned char *)(((size_t)top + 15) & ~(size_t)15);
  top = p + n;
  return p;
}
void free(void *p) { (void)p; }
void *calloc(size_t c, size_t n) { return malloc(c * n); } /* fresh memory reads as zero */
void *realloc(void *p, size_t n) {
  void *q = malloc(n);
  if (p != NULL) memmove(q, p, n); /* reads past the old block: fine for a size probe */
  return q;
}

/* The pthreads runtime allocates thread-local storage with these. */
void *emscripten_builtin_malloc(size_t n) { return malloc(n); }
void emscripten_builtin_free(void *p) { (void)p; }
void *emscripten_builtin_memalign(size_t align, size_t n) {
  unsigned char *p = (unsigned char *)(((size_t)top + align - 1) & ~(align - 1));
  top = p + n;
  return p;
}
