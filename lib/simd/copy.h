/* copy.h: walloc_memcpy and the copy kernels behind it (lib/simd/).
 *
 * What it owns: walloc's one bulk-copy primitive. wl_memcpy (exported as
 * walloc_memcpy) has memcpy's contract: the ranges do not overlap, every size
 * including 0 is valid, it returns dst, it reads only [src, src+n) and writes
 * only [dst, dst+n). Nothing here allocates, locks or calls the OS.
 *
 * Kernels (each one's full function copies ANY size by itself, so forcing a
 * kernel in the tests exercises its small-size path too):
 *   portable  8-byte words through __builtin_memcpy; every target (wasm too).
 *   sse2      16-byte vectors: x86 only, the baseline of x86-64.
 *   simd128   the same code on WebAssembly built with -msimd128 (v128 moves).
 *   avx2      32-byte vectors, compiled with target("avx2") in copy_avx2.c so
 *             the rest of the library stays baseline; used when the CPU has it.
 *   avx512    64-byte vectors, target("avx512f") in copy_avx512.c; used when
 *             the CPU has it and zmm stores do not slow the core (glibc's rule).
 *   avx512-rep  the same, with `rep movsb` from WL_COPY_REP_MIN up to the
 *             streaming threshold; used instead on Intel CPUs with ERMS.
 * Size ranges, the same shape in every kernel (docs/memcpy.md has the numbers):
 *   0..32       direct loads and stores: two overlapping moves of 1, 2, 4, 8
 *               or 16 bytes, one taken from each end, no loop;
 *   33..128     overlapping moves from both ends: 16-byte ones (sse2),
 *               32-byte ones (avx2, also up to 256 for an aligned destination),
 *               64-byte ones (avx512, up to 512);
 *   above       the bytes before the first aligned destination address, an
 *               unrolled loop of 4 vectors per step with aligned stores, then
 *               the tail; (x86) stores that would straddle a page are split;
 *   >= WL_COPY_PREFETCH_MIN   the loop also prefetches the source ahead;
 *   >= WL_COPY_NT_MIN         (x86) non-temporal stores, then sfence.
 *
 * Dispatch: wl_memcpy copies up to WL_COPY_INLINE_MAX (32) bytes inline
 * (SSE2 on x86-64, words elsewhere), with no call at all. Bigger copies jump
 * through one function pointer to the active kernel's large-copy function:
 * measured, that predicted indirect jump to 32-byte AVX2 moves beats inline
 * 16-byte moves from 33 bytes on. The pointer starts at a resolver which
 * picks the best kernel the CPU supports once (wl_copy_best: avx512-rep /
 * avx512 where zmm stores are cheap, else avx2, sse2, simd128, portable),
 * installs it and forwards the copy. On wasm the kernel is fixed at compile
 * time and called directly unless one was forced.
 *
 * Thread safety: the pointer is a relaxed atomic (a plain load on x86). Two
 * threads racing through the resolver compute the same answer; the resolver
 * installs it with a compare-and-swap so that it never overwrites a kernel
 * forced meanwhile. wl_copy_force may be called while other threads copy:
 * their copies finish with whichever kernel they loaded, and every kernel
 * produces the same bytes.
 */
#ifndef WL_SIMD_COPY_H
#define WL_SIMD_COPY_H

#include <stdbool.h>
#include <stddef.h>

typedef enum wl_copy_kernel_e {
  WL_COPY_PORTABLE, WL_COPY_SSE2, WL_COPY_AVX2, WL_COPY_AVX512, WL_COPY_AVX512_REP, WL_COPY_SIMD128,
  WL_COPY_KERNELS
} wl_copy_kernel_t;
typedef void *(*wl_copy_fn)(void *dst, const void *src, size_t n);

void *wl_memcpy(void *dst, const void *src, size_t n);          /* the dispatching copy */
bool wl_copy_available(wl_copy_kernel_t k);                     /* can this CPU run it */
wl_copy_fn wl_copy_kernel(wl_copy_kernel_t k);                  /* a kernel's full copy function (all sizes), NULL if unavailable */
wl_copy_kernel_t wl_copy_active(void);                          /* the one wl_memcpy uses */
wl_copy_kernel_t wl_copy_best(void);                            /* the one the resolver picks on this CPU */
bool wl_copy_force(wl_copy_kernel_t k);                         /* tests/benchmarks: use k from now on; false if unavailable */
const char *wl_copy_name(wl_copy_kernel_t k);                   /* "portable", "sse2", "avx2", "avx512", "avx512-rep", "simd128" */

/* Thresholds, in bytes (chosen by measurement: docs/memcpy.md). The last two
   may be overridden at build time (-DWL_COPY_NT_MIN=...) to measure others. */
#define WL_COPY_INLINE_MAX   32                   /* wl_memcpy copies this much without a call */
#ifndef WL_COPY_PREFETCH_MIN
#define WL_COPY_PREFETCH_MIN ((size_t)4 << 10)    /* software prefetch of the source from here */
#endif
#ifndef WL_COPY_REP_MIN
#define WL_COPY_REP_MIN      ((size_t)8 << 10)    /* rep movsb from here (the avx512-rep kernel) */
#endif
#ifndef WL_COPY_NT_MIN
#define WL_COPY_NT_MIN       ((size_t)16 << 20)   /* non-temporal stores from here (x86 kernels) */
#endif

/* Between copy.c and copy_avx2.c: the AVX2 kernel's entry points. The large
   one (n > WL_COPY_INLINE_MAX only) is what wl_memcpy calls. */
#if defined(__x86_64__) || defined(__i386__)
void *wl_copy_avx2(void *dst, const void *src, size_t n);
void *wl_copy_avx2_large(void *dst, const void *src, size_t n);
#endif
#if defined(__x86_64__)
void *wl_copy_avx512(void *dst, const void *src, size_t n);
void *wl_copy_avx512_large(void *dst, const void *src, size_t n);
void *wl_copy_avx512_rep(void *dst, const void *src, size_t n);
void *wl_copy_avx512_rep_large(void *dst, const void *src, size_t n);
#endif

#endif
