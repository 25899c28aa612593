/* copy.c: placeholder until the SIMD copy kernels land. */
#include "../platform/base.h"
#include "walloc.h"

#include <string.h>

WL_API void *walloc_memcpy(void *dst, const void *src, size_t n) { return memcpy(dst, src, n); }
