/* libc_names.c (WebAssembly): musl's internal allocation names, which
 * Emscripten's dlmalloc and emmalloc also define. musl calls them from
 * atexit (so every program built with -sEXIT_RUNTIME=1 needs them), locales
 * and sem_open. They are plain functions in an object of their own, not
 * aliases in override.c: a static library links this object only when a
 * program uses one of the names, so modules that do not keep no calloc or
 * realloc on their account. */
#include <stdlib.h>

#include "walloc.h"

WALLOC_EXPORT void *__libc_malloc(size_t size);
WALLOC_EXPORT void __libc_free(void *p);
WALLOC_EXPORT void *__libc_calloc(size_t count, size_t size);
WALLOC_EXPORT void *__libc_realloc(void *p, size_t size);

void *__libc_malloc(size_t size) { return malloc(size); }
void __libc_free(void *p) { free(p); }
void *__libc_calloc(size_t count, size_t size) { return calloc(count, size); }
void *__libc_realloc(void *p, size_t size) { return realloc(p, size); }
