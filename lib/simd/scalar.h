/* scalar.h: the scalar moves every copy kernel shares (copy.c, copy_avx2.c).
 * __builtin_memcpy of a constant size is one load or store of that width, at
 * any alignment, on every target. These carry no target attribute, so they
 * inline into the baseline kernels and into the target("avx2") ones alike.
 */
#ifndef WL_SIMD_SCALAR_H
#define WL_SIMD_SCALAR_H

#include <stddef.h>
#include <stdint.h>

#define WL_SCALAR_INLINE static inline __attribute__((always_inline))

/* How far ahead of the loads the loops prefetch (bytes): measured, 256 is
   as good as any in cache and costs least when the source comes from DRAM;
   the streaming loop, which only runs from DRAM, does best with 512. */
#define WL_COPY_PREFETCH_DIST        256
#define WL_COPY_STREAM_PREFETCH_DIST 512

WL_SCALAR_INLINE uint64_t ld64(const uint8_t *p) { uint64_t v; __builtin_memcpy(&v, p, 8); return v; }
WL_SCALAR_INLINE uint32_t ld32(const uint8_t *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
WL_SCALAR_INLINE uint16_t ld16(const uint8_t *p) { uint16_t v; __builtin_memcpy(&v, p, 2); return v; }
WL_SCALAR_INLINE void st64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }
WL_SCALAR_INLINE void st32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
WL_SCALAR_INLINE void st16(uint8_t *p, uint16_t v) { __builtin_memcpy(p, &v, 2); }

/* n < 16: two overlapping moves of the widest width that fits, one from each
   end (so 13 bytes are two 8-byte moves at 0 and 5). */
WL_SCALAR_INLINE void copy_lt16(uint8_t *d, const uint8_t *s, size_t n) {
  if (n >= 8) {
    uint64_t a = ld64(s), b = ld64(s + n - 8);
    st64(d, a);
    st64(d + n - 8, b);
  } else if (n >= 4) {
    uint32_t a = ld32(s), b = ld32(s + n - 4);
    st32(d, a);
    st32(d + n - 4, b);
  } else if (n >= 2) {
    uint16_t a = ld16(s), b = ld16(s + n - 2);
    st16(d, a);
    st16(d + n - 2, b);
  } else if (n == 1) {
    *d = *s;
  }
}

#endif
