/* copy_avx2.c: the AVX2 copy kernel (32-byte vectors). Every function here is
 * compiled with target("avx2"), the rest of the library stays baseline; copy.c
 * calls in only after __builtin_cpu_supports("avx2") said yes. The shape is
 * the SSE2 kernel's with vectors twice as wide (copy.h, docs/memcpy.md).
 */
#include "copy.h"
#include "scalar.h"

#include "../platform/base.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define WL_AVX2_FN     __attribute__((target("avx2"), aligned(64))) /* on a cache line: see copy.c */
#define WL_AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))


WL_AVX2_INLINE __m128i ldu16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }
WL_AVX2_INLINE void stu16(uint8_t *p, __m128i v) { _mm_storeu_si128((__m128i *)(void *)p, v); }
WL_AVX2_INLINE __m256i ldu(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
WL_AVX2_INLINE void stu(uint8_t *p, __m256i v) { _mm256_storeu_si256((__m256i *)(void *)p, v); }
WL_AVX2_INLINE void sta(uint8_t *p, __m256i v) { _mm256_store_si256((__m256i *)(void *)p, v); }
WL_AVX2_INLINE void stnt(uint8_t *p, __m256i v) { _mm256_stream_si256((__m256i *)(void *)p, v); }

/* n <= 32: two overlapping moves from the two ends, of the widest width
   that fits. */
WL_AVX2_INLINE void avx2_small(uint8_t *d, const uint8_t *s, size_t n) {
  if (n >= 16) {
    __m128i a = ldu16(s), b = ldu16(s + n - 16);
    stu16(d, a);
    stu16(d + n - 16, b);
  } else {
    copy_lt16(d, s, n);
  }
}

/* Four 32-byte moves from s to d. */
WL_AVX2_INLINE void copy128(uint8_t *d, const uint8_t *s) {
  __m256i a = ldu(s), b = ldu(s + 32), c = ldu(s + 64), e = ldu(s + 96);
  stu(d, a);
  stu(d + 32, b);
  stu(d + 64, c);
  stu(d + 96, e);
}

enum { LOOP_PLAIN, LOOP_PREFETCH, LOOP_STREAM };

/* The loop, for n > 256 (and 129..256 when the destination is unaligned).
   Aligned stores are cheaper than unaligned ones, and an unaligned store that
   straddles a page costs several times an ordinary one (measured: 4097 bytes
   took 40 % longer than 4096 when the last store straddled a page), so:
     - the bytes before the first aligned destination address (32-aligned;
       64, whole lines, when streaming): one unaligned vector, or when it
       would straddle a page, the small path up to the page;
     - 128-byte steps of aligned stores (or streaming ones);
     - 1 to 128 bytes left: aligned stores while more than 32 remain, then
       the last 32 bytes, split at the page boundary when they straddle one. */
WL_AVX2_INLINE void avx2_loop(uint8_t *d, const uint8_t *s, size_t n, int mode) {
  uint8_t *end = d + n;
  size_t lead = (size_t)(-(uintptr_t)d & 31);
  size_t skip = mode == LOOP_STREAM ? (size_t)(-(uintptr_t)d & 63) : lead;
  if (WL_UNLIKELY(((uintptr_t)d & 4095) > 4096 - 32)) {
    avx2_small(d, s, lead);
  } else {
    stu(d, ldu(s));
  }
  if (skip > lead) sta(d + lead, ldu(s + lead)); /* streaming: the rest of the line */
  uint8_t *p = d + skip;
  const uint8_t *q = s + skip;
  for (; p < end - 128; p += 128, q += 128) {
    if (mode != LOOP_PLAIN) { /* the two lines this step will load in dist bytes */
      size_t dist = mode == LOOP_STREAM ? WL_COPY_STREAM_PREFETCH_DIST : WL_COPY_PREFETCH_DIST;
      _mm_prefetch((const char *)q + dist, _MM_HINT_T0);
      _mm_prefetch((const char *)q + dist + 64, _MM_HINT_T0);
    }
    __m256i a = ldu(q), b = ldu(q + 32), c = ldu(q + 64), e = ldu(q + 96);
    if (mode == LOOP_STREAM) {
      stnt(p, a);
      stnt(p + 32, b);
      stnt(p + 64, c);
      stnt(p + 96, e);
    } else {
      sta(p, a);
      sta(p + 32, b);
      sta(p + 64, c);
      sta(p + 96, e);
    }
  }
  if (mode == LOOP_STREAM) _mm_sfence(); /* streamed stores are weakly ordered */
  /* 1 to 128 bytes left: aligned stores while more than 32 remain, then the
     last 32 bytes (overlapping what came before). */
  size_t left = (size_t)(end - p);
  if (left > 32) {
    sta(p, ldu(q));
    if (left > 64) {
      sta(p + 32, ldu(q + 32));
      if (left > 96) sta(p + 64, ldu(q + 64));
    }
  }
  if (WL_UNLIKELY(((uintptr_t)end & 4095) - 1 < 31)) {
    uint8_t *a = (uint8_t *)((uintptr_t)end & ~(uintptr_t)31); /* the page boundary */
    if (a > p) sta(a - 32, ldu(s + (a - 32 - d)));
    avx2_small(a, s + (a - d), (size_t)(end - a));
  } else {
    stu(end - 32, ldu(s + n - 32));
  }
}

/* n > 32 (what wl_memcpy calls): one, two or four 32-byte moves from each
   end up to 128 bytes, and up to 256 when the destination is 32-aligned (for
   an unaligned one the loop's aligned stores measured 10-25 % faster); the
   loop beyond. */
WL_NOINLINE WL_AVX2_FN void *wl_copy_avx2_large(void *dst, const void *src, size_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (n <= 128) {
    if (n <= 64) {
      __m256i a = ldu(s), b = ldu(s + n - 32);
      stu(d, a);
      stu(d + n - 32, b);
    } else {
      __m256i a = ldu(s), b = ldu(s + 32), c = ldu(s + n - 64), e = ldu(s + n - 32);
      stu(d, a);
      stu(d + 32, b);
      stu(d + n - 64, c);
      stu(d + n - 32, e);
    }
  } else if (n <= 256 && ((uintptr_t)d & 31) == 0) {
    copy128(d, s);
    copy128(d + n - 128, s + n - 128);
  } else if (n < WL_COPY_PREFETCH_MIN) {
    avx2_loop(d, s, n, LOOP_PLAIN);
  } else if (n < WL_COPY_NT_MIN) {
    avx2_loop(d, s, n, LOOP_PREFETCH);
  } else {
    avx2_loop(d, s, n, LOOP_STREAM);
  }
  return dst;
}

/* Any size (the kernel's full function). */
WL_AVX2_FN void *wl_copy_avx2(void *dst, const void *src, size_t n) {
  if (WL_LIKELY(n <= WL_COPY_INLINE_MAX)) {
    avx2_small((uint8_t *)dst, (const uint8_t *)src, n);
    return dst;
  }
  return wl_copy_avx2_large(dst, src, n);
}

#else
typedef int wl_copy_avx2_unused; /* not x86: nothing to compile, but no empty file */
#endif
