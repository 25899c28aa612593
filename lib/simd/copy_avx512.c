/* copy_avx512.c: the AVX-512 copy kernel (64-byte zmm vectors). Every
 * function here is compiled with target("avx512f"), the rest of the library
 * stays baseline; copy.c calls in only when the CPU and the OS support
 * AVX-512F and wide stores do not slow the core down (copy.c: copy_best).
 *
 * Why a kernel of its own: on CPUs with full-width AVX-512 (Zen 4, Sapphire
 * Rapids) one zmm store moves a whole line, so 257..16 KiB copies take half
 * the store instructions of AVX2 and glibc's __memmove_avx512_unaligned_erms
 * ran up to 1.9x faster than the AVX2 kernel there (docs/memcpy.md).
 * The shape is avx2's with vectors twice as wide, and longer straight-line
 * code (as glibc's): 65..128 bytes are two moves, one from each end; up to
 * 256 four; up to 512 eight; the loop (4 vectors a step) above.
 */
#include "copy.h"

#include <stdbool.h>
#include "scalar.h"

#include "../platform/base.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define WL_AVX512_FN     __attribute__((target("avx512f"), aligned(64))) /* on a cache line: see copy.c */
#define WL_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* Every vector move goes through xmm16/ymm16/zmm16..19 in inline assembly,
   as glibc's EVEX code does. Those registers exist only with AVX-512 and
   leave the upper-state tracking of ymm0-15 clean, so the function needs no
   vzeroupper on return. With intrinsics, gcc allocates ymm0-15 and ends
   every path with vzeroupper, which measured 10-20 % slower at 33-128 bytes
   (the whole copy is 4-5 cycles there). A move is one load and one store of
   the same block: the ranges never overlap, so no move depends on another's
   order, and the "m" operands tell the compiler exactly which bytes each
   one reads and writes. */
typedef struct { unsigned char b[16]; } wl_b16_t;
typedef struct { unsigned char b[32]; } wl_b32_t;
typedef struct { unsigned char b[64]; } wl_b64_t;

/* One move of a `type`-sized block from s to d through register `reg`,
   stored with `store`; `clob` names the register for the compiler. */
#define WL_MOVE(type, store, reg, clob)                                        \
  __asm__("vmovdqu64 %1, %%" reg "\n\t" store " %%" reg ", %0"                 \
          : "=m"(*(type *)(void *)d) : "m"(*(const type *)(const void *)s) : clob)

WL_AVX512_INLINE void mv16(uint8_t *d, const uint8_t *s) { WL_MOVE(wl_b16_t, "vmovdqu64", "xmm16", "xmm16"); }
WL_AVX512_INLINE void mv32(uint8_t *d, const uint8_t *s) { WL_MOVE(wl_b32_t, "vmovdqu64", "ymm17", "xmm17"); }
WL_AVX512_INLINE void mvu(uint8_t *d, const uint8_t *s) { WL_MOVE(wl_b64_t, "vmovdqu64", "zmm18", "xmm18"); }
WL_AVX512_INLINE void mva(uint8_t *d, const uint8_t *s) { WL_MOVE(wl_b64_t, "vmovdqa64", "zmm19", "xmm19"); }

/* Four 64-byte moves (256 bytes): four loads, then four stores. The
   addresses go in registers; the "m" operands only tell the compiler which
   256 bytes are read and written. */
typedef struct { unsigned char b[256]; } wl_b256_t;
#define WL_MOVE4(store)                                                                \
  __asm__("vmovdqu64 (%[s]), %%zmm16\n\tvmovdqu64 64(%[s]), %%zmm17\n\t"               \
          "vmovdqu64 128(%[s]), %%zmm18\n\tvmovdqu64 192(%[s]), %%zmm19\n\t"           \
          store " %%zmm16, (%[d])\n\t" store " %%zmm17, 64(%[d])\n\t"                  \
          store " %%zmm18, 128(%[d])\n\t" store " %%zmm19, 192(%[d])"                   \
          : "=m"(*(wl_b256_t *)(void *)d)                                               \
          : [d] "r"(d), [s] "r"(s), "m"(*(const wl_b256_t *)(const void *)s)            \
          : "xmm16", "xmm17", "xmm18", "xmm19")
WL_AVX512_INLINE void mv256u(uint8_t *d, const uint8_t *s) { WL_MOVE4("vmovdqu64"); }
WL_AVX512_INLINE void mv256a(uint8_t *d, const uint8_t *s) { WL_MOVE4("vmovdqa64"); }
WL_AVX512_INLINE void mv256nt(uint8_t *d, const uint8_t *s) { WL_MOVE4("vmovntdq"); }

/* n <= 64: two overlapping moves from the two ends, of the widest width
   that fits. */
WL_AVX512_INLINE void avx512_small(uint8_t *d, const uint8_t *s, size_t n) {
  if (n >= 32) {
    mv32(d, s);
    mv32(d + n - 32, s + n - 32);
  } else if (n >= 16) {
    mv16(d, s);
    mv16(d + n - 16, s + n - 16);
  } else {
    copy_lt16(d, s, n);
  }
}

enum { LOOP_PLAIN, LOOP_PREFETCH, LOOP_STREAM };

/* n > 512: avx2_loop (copy_avx2.c explains it) with 64-byte vectors: one
   unaligned vector (split at a page boundary it would straddle), 256-byte
   steps of aligned (or streaming) stores from the first 64-aligned
   destination address, then aligned stores while more than 64 bytes remain
   and the last 64 bytes (split at a page boundary they would straddle). */
WL_AVX512_INLINE void avx512_loop(uint8_t *d, const uint8_t *s, size_t n, int mode) {
  uint8_t *end = d + n;
  size_t lead = (size_t)(-(uintptr_t)d & 63);
  if (WL_UNLIKELY(((uintptr_t)d & 4095) > 4096 - 64)) {
    avx512_small(d, s, lead);
  } else {
    mvu(d, s);
  }
  uint8_t *p = d + lead;
  const uint8_t *q = s + lead;
  for (; p < end - 256; p += 256, q += 256) {
    if (mode != LOOP_PLAIN) { /* the lines this step will load in dist bytes */
      size_t dist = mode == LOOP_STREAM ? WL_COPY_STREAM_PREFETCH_DIST : WL_COPY_PREFETCH_DIST;
      _mm_prefetch((const char *)q + dist, _MM_HINT_T0);
      _mm_prefetch((const char *)q + dist + 64, _MM_HINT_T0);
      _mm_prefetch((const char *)q + dist + 128, _MM_HINT_T0);
      _mm_prefetch((const char *)q + dist + 192, _MM_HINT_T0);
    }
    if (mode == LOOP_STREAM) {
      mv256nt(p, q);
    } else {
      mv256a(p, q);
    }
  }
  if (mode == LOOP_STREAM) _mm_sfence(); /* streamed stores are weakly ordered */
  size_t left = (size_t)(end - p); /* 1 to 256 */
  if (left > 64) {
    mva(p, q);
    if (left > 128) {
      mva(p + 64, q + 64);
      if (left > 192) mva(p + 128, q + 128);
    }
  }
  if (WL_UNLIKELY(((uintptr_t)end & 4095) - 1 < 63)) {
    uint8_t *a = (uint8_t *)((uintptr_t)end & ~(uintptr_t)63); /* the page boundary */
    if (a > p) mva(a - 64, s + (a - 64 - d));
    avx512_small(a, s + (a - d), (size_t)(end - a));
  } else {
    mvu(end - 64, s + n - 64);
  }
}

/* n > 32. With `rep`, copies from WL_COPY_REP_MIN up to the streaming
   threshold use `rep movsb` instead of the loop: on Intel CPUs with fast
   string moves (ERMS) that is what glibc does there, and it measured up to
   6 % faster than the loop at 8 KiB-1 MiB; from 2 KiB it was 40 % slower,
   and on Zen 4 the loop beat glibc's rep movsb (docs/memcpy.md). */
WL_AVX512_INLINE void *avx512_large(void *dst, const void *src, size_t n, bool rep) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (n <= 64) {
    mv32(d, s);
    mv32(d + n - 32, s + n - 32);
  } else if (n <= 128) {
    mvu(d, s);
    mvu(d + n - 64, s + n - 64);
  } else if (n <= 512) {
    if (n <= 256) {
      mvu(d, s);
      mvu(d + 64, s + 64);
      mvu(d + n - 128, s + n - 128);
      mvu(d + n - 64, s + n - 64);
    } else {
      mv256u(d, s);
      mv256u(d + n - 256, s + n - 256);
    }
  } else if (n < WL_COPY_PREFETCH_MIN) {
    avx512_loop(d, s, n, LOOP_PLAIN);
  } else if (rep && n >= WL_COPY_REP_MIN && n < WL_COPY_NT_MIN) {
    void *dd = d; const void *ss = s; size_t nn = n;
    __asm__ volatile("rep movsb" : "+D"(dd), "+S"(ss), "+c"(nn) : : "memory");
  } else if (n < WL_COPY_NT_MIN) {
    avx512_loop(d, s, n, LOOP_PREFETCH);
  } else {
    avx512_loop(d, s, n, LOOP_STREAM);
  }
  return dst;
}

/* What wl_memcpy calls (n > 32), for the "avx512" and "avx512-rep" kernels. */
WL_NOINLINE WL_AVX512_FN void *wl_copy_avx512_large(void *dst, const void *src, size_t n) {
  return avx512_large(dst, src, n, false);
}

WL_NOINLINE WL_AVX512_FN void *wl_copy_avx512_rep_large(void *dst, const void *src, size_t n) {
  return avx512_large(dst, src, n, true);
}

/* Any size (the kernels' full functions). */
WL_AVX512_FN void *wl_copy_avx512(void *dst, const void *src, size_t n) {
  if (WL_LIKELY(n <= WL_COPY_INLINE_MAX)) {
    avx512_small((uint8_t *)dst, (const uint8_t *)src, n);
    return dst;
  }
  return wl_copy_avx512_large(dst, src, n);
}

WL_AVX512_FN void *wl_copy_avx512_rep(void *dst, const void *src, size_t n) {
  if (WL_LIKELY(n <= WL_COPY_INLINE_MAX)) {
    avx512_small((uint8_t *)dst, (const uint8_t *)src, n);
    return dst;
  }
  return wl_copy_avx512_rep_large(dst, src, n);
}

#else
typedef int wl_copy_avx512_unused; /* not x86-64: nothing to compile, but no empty file */
#endif
