/* copy.c: wl_memcpy (exported as walloc_memcpy), the kernel table and its
 * dispatch, and the portable and 16-byte vector (SSE2 / wasm SIMD128)
 * kernels. The AVX2 and AVX-512 kernels are in copy_avx2.c and copy_avx512.c. copy.h describes the design; docs/memcpy.md the measurements.
 *
 * No loop here copies one byte at a time: small sizes use two overlapping
 * moves from the two ends, large ones whole words or vectors. The word loops
 * are unrolled four times, which also keeps GCC and clang from recognising
 * them as a copy idiom and turning them back into a call to memcpy.
 */
#include "copy.h"
#include "scalar.h"

#include "../platform/base.h"
#include "walloc.h"

#if defined(__x86_64__) || defined(__i386__)
#define WL_COPY_X86 1
#include <cpuid.h>
#include <emmintrin.h>
#include <xmmintrin.h>
#else
#define WL_COPY_X86 0
#endif
#if defined(__wasm_simd128__)
#define WL_COPY_HAVE_SIMD128 1
#include <wasm_simd128.h>
#else
#define WL_COPY_HAVE_SIMD128 0
#endif
#define WL_COPY_VEC16 (WL_COPY_X86 || WL_COPY_HAVE_SIMD128)
/* wasm with bulk memory: from here a copy is one memory.copy instruction,
   the engine's own memmove. Under node 20 that was 1.3x the v128 loop at
   512 bytes and 1.4-2x at 1-16 KiB; at 256 bytes the loop was faster. */
#ifndef WL_COPY_WASM_BULK_MIN
#define WL_COPY_WASM_BULK_MIN ((size_t)512)
#endif

/* The copy functions start on a cache line: at the speed of a 2-ns copy one
   cycle matters, and without this their speed moved by up to 20 % with the
   size of whatever code the linker happened to put before them. */
#define WL_COPY_FN_ALIGN __attribute__((aligned(64)))

/* ------------------------------------------------------------------------
   The portable kernel: 8-byte words.
   ------------------------------------------------------------------------ */
WL_INLINE void copy32_words(uint8_t *d, const uint8_t *s) {
  uint64_t a = ld64(s), b = ld64(s + 8), c = ld64(s + 16), e = ld64(s + 24);
  st64(d, a);
  st64(d + 8, b);
  st64(d + 16, c);
  st64(d + 24, e);
}

WL_INLINE void portable_small(uint8_t *d, const uint8_t *s, size_t n) { /* n <= 32 */
  if (n < 16) {
    copy_lt16(d, s, n);
  } else {
    uint64_t a = ld64(s), b = ld64(s + 8), c = ld64(s + n - 16), e = ld64(s + n - 8);
    st64(d, a);
    st64(d + 8, b);
    st64(d + n - 16, c);
    st64(d + n - 8, e);
  }
}

/* n > 32: 32-byte blocks from both ends up to 128 bytes; beyond, the first
   word, 32-byte steps from the first 8-aligned destination address, and the
   last 32 bytes (overlapping the loop's end). */
static WL_NOINLINE WL_COPY_FN_ALIGN void *portable_large(void *dst, const void *src, size_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  uint8_t *end = d + n;
  if (n <= 64) {
    copy32_words(d, s);
    copy32_words(end - 32, s + n - 32);
    return dst;
  }
  if (n <= 128) {
    copy32_words(d, s);
    copy32_words(d + 32, s + 32);
    copy32_words(end - 64, s + n - 64);
    copy32_words(end - 32, s + n - 32);
    return dst;
  }
  st64(d, ld64(s));
  size_t skip = (size_t)(-(uintptr_t)d & 7);
  uint8_t *p = d + skip;
  const uint8_t *q = s + skip;
  if (n >= WL_COPY_PREFETCH_MIN) {
    for (; p < end - 32; p += 32, q += 32) {
      __builtin_prefetch(q + WL_COPY_PREFETCH_DIST);
      copy32_words(p, q);
    }
  } else {
    for (; p < end - 32; p += 32, q += 32) copy32_words(p, q);
  }
  copy32_words(end - 32, s + n - 32);
  return dst;
}

static WL_COPY_FN_ALIGN void *portable_copy(void *dst, const void *src, size_t n) {
  if (WL_LIKELY(n <= WL_COPY_INLINE_MAX)) {
    portable_small((uint8_t *)dst, (const uint8_t *)src, n);
    return dst;
  }
  return portable_large(dst, src, n);
}

/* ------------------------------------------------------------------------
   The 16-byte vector kernel: SSE2 on x86 (the baseline of x86-64), SIMD128 on
   WebAssembly (built with -msimd128). One source for both: the vector moves
   below are the only target-specific part. On wasm there is no prefetch and
   no non-temporal store, so only the plain loop is compiled there.
   ------------------------------------------------------------------------ */
#if WL_COPY_VEC16
#if WL_COPY_X86
#define WL_VEC16 __attribute__((target("sse2")))
#define WL_VEC16_INLINE static inline __attribute__((always_inline, target("sse2")))
typedef __m128i wl_v16_t;
WL_VEC16_INLINE wl_v16_t ldu(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }
WL_VEC16_INLINE void stu(uint8_t *p, wl_v16_t v) { _mm_storeu_si128((__m128i *)(void *)p, v); }
WL_VEC16_INLINE void sta(uint8_t *p, wl_v16_t v) { _mm_store_si128((__m128i *)(void *)p, v); }
WL_VEC16_INLINE void stnt(uint8_t *p, wl_v16_t v) { _mm_stream_si128((__m128i *)(void *)p, v); }
WL_VEC16_INLINE void prefetch(const uint8_t *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }
WL_VEC16_INLINE void sfence(void) { _mm_sfence(); }
#else /* WebAssembly SIMD128 */
#define WL_VEC16
#define WL_VEC16_INLINE static inline __attribute__((always_inline))
typedef v128_t wl_v16_t;
WL_VEC16_INLINE wl_v16_t ldu(const uint8_t *p) { return wasm_v128_load(p); }
WL_VEC16_INLINE void stu(uint8_t *p, wl_v16_t v) { wasm_v128_store(p, v); }
WL_VEC16_INLINE void sta(uint8_t *p, wl_v16_t v) { wasm_v128_store(p, v); }
WL_VEC16_INLINE void stnt(uint8_t *p, wl_v16_t v) { wasm_v128_store(p, v); }
WL_VEC16_INLINE void prefetch(const uint8_t *p) { (void)p; }
WL_VEC16_INLINE void sfence(void) {}
#endif

WL_VEC16_INLINE void vec16_small(uint8_t *d, const uint8_t *s, size_t n) { /* n <= 32 */
  if (n < 16) {
    copy_lt16(d, s, n);
  } else {
    wl_v16_t a = ldu(s), b = ldu(s + n - 16);
    stu(d, a);
    stu(d + n - 16, b);
  }
}

enum { LOOP_PLAIN, LOOP_PREFETCH, LOOP_STREAM };


/* n > 128, the same shape as avx2_loop in copy_avx2.c (which explains it):
   the bytes before the first aligned destination address (16-aligned; 64,
   whole lines, when streaming), 64-byte steps of aligned stores, aligned
   stores while more than 16 bytes remain, then the last 16 bytes; an
   unaligned store that would straddle a page is split at the page. */
WL_VEC16_INLINE void vec16_loop(uint8_t *d, const uint8_t *s, size_t n, int mode) {
  uint8_t *end = d + n;
  size_t lead = (size_t)(-(uintptr_t)d & 15);
  size_t skip = mode == LOOP_STREAM ? (size_t)(-(uintptr_t)d & 63) : lead;
  if (WL_UNLIKELY(((uintptr_t)d & 4095) > 4096 - 16)) {
    copy_lt16(d, s, lead);
  } else {
    stu(d, ldu(s));
  }
  for (size_t o = lead; o < skip; o += 16) sta(d + o, ldu(s + o)); /* streaming: the rest of the line */
  uint8_t *p = d + skip;
  const uint8_t *q = s + skip;
  for (; p < end - 64; p += 64, q += 64) {
    if (mode == LOOP_PREFETCH) prefetch(q + WL_COPY_PREFETCH_DIST);
    if (mode == LOOP_STREAM) prefetch(q + WL_COPY_STREAM_PREFETCH_DIST);
    wl_v16_t a = ldu(q), b = ldu(q + 16), c = ldu(q + 32), e = ldu(q + 48);
    if (mode == LOOP_STREAM) {
      stnt(p, a);
      stnt(p + 16, b);
      stnt(p + 32, c);
      stnt(p + 48, e);
    } else {
      sta(p, a);
      sta(p + 16, b);
      sta(p + 32, c);
      sta(p + 48, e);
    }
  }
  if (mode == LOOP_STREAM) sfence(); /* streamed stores are weakly ordered */
  size_t left = (size_t)(end - p); /* 1 to 64 */
  if (left > 16) {
    sta(p, ldu(q));
    if (left > 32) {
      sta(p + 16, ldu(q + 16));
      if (left > 48) sta(p + 32, ldu(q + 32));
    }
  }
  if (WL_UNLIKELY(((uintptr_t)end & 4095) - 1 < 15)) {
    uint8_t *a = (uint8_t *)((uintptr_t)end & ~(uintptr_t)15); /* the page boundary */
    if (a > p) sta(a - 16, ldu(s + (a - 16 - d)));
    copy_lt16(a, s + (a - d), (size_t)(end - a));
  } else {
    stu(end - 16, ldu(s + n - 16));
  }
}

/* n > 32: 16-byte moves from both ends up to 128 bytes, the loop beyond. */
static WL_NOINLINE WL_VEC16 WL_COPY_FN_ALIGN void *vec16_large(void *dst, const void *src, size_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (n <= 64) {
    wl_v16_t a = ldu(s), b = ldu(s + 16), c = ldu(s + n - 32), e = ldu(s + n - 16);
    stu(d, a);
    stu(d + 16, b);
    stu(d + n - 32, c);
    stu(d + n - 16, e);
  } else if (n <= 128) {
    wl_v16_t a = ldu(s), b = ldu(s + 16), c = ldu(s + 32), e = ldu(s + 48);
    stu(d, a);
    stu(d + 16, b);
    stu(d + 32, c);
    stu(d + 48, e);
    a = ldu(s + n - 64), b = ldu(s + n - 48), c = ldu(s + n - 32), e = ldu(s + n - 16);
    stu(d + n - 64, a);
    stu(d + n - 48, b);
    stu(d + n - 32, c);
    stu(d + n - 16, e);
#if defined(__wasm_bulk_memory__)
  } else if (n >= WL_COPY_WASM_BULK_MIN) { /* memory.copy: the engine's own memmove */
    __builtin_memcpy(d, s, n);
#endif
  } else if (!WL_COPY_X86 || n < WL_COPY_PREFETCH_MIN) { /* wasm: the plain loop only */
    vec16_loop(d, s, n, LOOP_PLAIN);
  } else if (n < WL_COPY_NT_MIN) {
    vec16_loop(d, s, n, LOOP_PREFETCH);
  } else {
    vec16_loop(d, s, n, LOOP_STREAM);
  }
  return dst;
}

static WL_VEC16 WL_COPY_FN_ALIGN void *vec16_copy(void *dst, const void *src, size_t n) {
  if (WL_LIKELY(n <= WL_COPY_INLINE_MAX)) {
    vec16_small((uint8_t *)dst, (const uint8_t *)src, n);
    return dst;
  }
  return vec16_large(dst, src, n);
}
#endif /* WL_COPY_VEC16 */

/* ------------------------------------------------------------------------
   The kernel table and dispatch
   ------------------------------------------------------------------------ */
typedef struct wl_copy_entry_s {
  const char *name;
  wl_copy_fn full;   /* any size */
  wl_copy_fn large;  /* n > WL_COPY_INLINE_MAX only: what wl_memcpy calls */
} wl_copy_entry_t;

static const wl_copy_entry_t wl_copy_table[WL_COPY_KERNELS] = {
  [WL_COPY_PORTABLE] = {"portable", portable_copy, portable_large},
#if WL_COPY_X86
  [WL_COPY_SSE2] = {"sse2", vec16_copy, vec16_large},
  [WL_COPY_AVX2] = {"avx2", wl_copy_avx2, wl_copy_avx2_large},
#else
  [WL_COPY_SSE2] = {"sse2", NULL, NULL},
  [WL_COPY_AVX2] = {"avx2", NULL, NULL},
#endif
#if defined(__x86_64__)
  [WL_COPY_AVX512] = {"avx512", wl_copy_avx512, wl_copy_avx512_large},
  [WL_COPY_AVX512_REP] = {"avx512-rep", wl_copy_avx512_rep, wl_copy_avx512_rep_large},
#else
  [WL_COPY_AVX512] = {"avx512", NULL, NULL},
  [WL_COPY_AVX512_REP] = {"avx512-rep", NULL, NULL},
#endif
#if WL_COPY_HAVE_SIMD128
  [WL_COPY_SIMD128] = {"simd128", vec16_copy, vec16_large},
#else
  [WL_COPY_SIMD128] = {"simd128", NULL, NULL},
#endif
};

static void *copy_resolve(void *dst, const void *src, size_t n);

/* The large-copy function wl_memcpy calls: the only state. It starts at the
   resolver; which kernel is active is read back from it (see copy.h for the
   thread-safety argument). */
static _Atomic(wl_copy_fn) wl_copy_large = copy_resolve;

#if WL_COPY_X86
/* The CPU's and the OS's support, read with CPUID and XGETBV on first use.
   Not __builtin_cpu_supports: it links libgcc's __cpu_indicator_init, a
   constructor that runs a dozen CPUID instructions in every process that
   loads walloc, each a trap to the hypervisor on a virtual machine (measured:
   a quarter of the start-up time of /bin/true under LD_PRELOAD). Every
   CPUID read of this file goes through copy_cpuid. */
static bool copy_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  return (unsigned)__get_cpuid_max(0, NULL) >= leaf && __get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]);
}

/* Bit `bit` of CPUID.(EAX=7,ECX=0):EBX (5 = AVX2, 9 = ERMS, 16 = AVX-512F). */
static bool copy_cpuid7_ebx(unsigned bit) {
  unsigned r[4];
  return copy_cpuid(7, 0, r) && ((r[1] >> bit) & 1);
}

/* Whether the OS saves the register state bits `mask` of XCR0 (and the CPU
   has AVX, which XGETBV's presence implies here). */
static bool copy_os_saves(unsigned mask) {
  unsigned r[4];
  if (!copy_cpuid(1, 0, r) || !((r[2] >> 27) & 1) || !((r[2] >> 28) & 1)) return false; /* OSXSAVE, AVX */
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & mask) == mask;
}

static bool copy_cpu_has_avx2(void) {
  return copy_cpuid7_ebx(5) && copy_os_saves(0x6u); /* ymm state */
}
#endif

#if defined(__x86_64__)
static bool copy_cpu_has_avx512f(void) {
  return copy_cpuid7_ebx(16) && copy_os_saves(0xe6u); /* ymm, opmask, zmm state */
}
#endif

bool wl_copy_available(wl_copy_kernel_t k) {
  switch (k) {
    case WL_COPY_PORTABLE: return true;
#if WL_COPY_X86
    case WL_COPY_SSE2:
#if defined(__x86_64__)
      return true;
#else
      { unsigned r[4]; return copy_cpuid(1, 0, r) && ((r[3] >> 26) & 1); } /* SSE2 */
#endif
    case WL_COPY_AVX2:
      return copy_cpu_has_avx2();
#endif
#if defined(__x86_64__)
    case WL_COPY_AVX512:   /* the check includes the OS saving zmm state (XCR0) */
      return copy_cpu_has_avx512f();
    case WL_COPY_AVX512_REP:
      return copy_cpu_has_avx512f() && copy_cpuid7_ebx(9);  /* ERMS */
#endif
#if WL_COPY_HAVE_SIMD128
    case WL_COPY_SIMD128: return true;  /* compiled in only with -msimd128 */
#endif
    default: return false;
  }
}

#if defined(__x86_64__)
/* Whether the CPU is an AMD one. */
static bool copy_cpu_amd(void) {
  unsigned r[4];
  return copy_cpuid(0, 0, r) && r[1] == 0x68747541u;  /* "AuthenticAMD" */
}

/* Whether 512-bit stores run at full speed: glibc's rule (cpu_features.c,
   Prefer_No_AVX512), so walloc_memcpy and memcpy make the same choice. On
   Intel before Sapphire Rapids (no AVX-VNNI) zmm code lowers the clock of
   the whole core, which costs more than a faster copy gains; AMD's Zen 4
   has no such penalty. */
static bool copy_wide_stores_cheap(void) {
  unsigned r[4];
  if (copy_cpu_amd()) return true;
  return copy_cpuid(7, 1, r) && ((r[0] >> 4) & 1);  /* CPUID.(7,1):EAX[4] = AVX-VNNI */
}
#endif

wl_copy_kernel_t wl_copy_best(void) {
#if defined(__x86_64__)
  if (wl_copy_available(WL_COPY_AVX512) && copy_wide_stores_cheap()) {
    /* rep movsb measured faster than the loop on Intel, slower on Zen 4 */
    return !copy_cpu_amd() && wl_copy_available(WL_COPY_AVX512_REP) ? WL_COPY_AVX512_REP : WL_COPY_AVX512;
  }
#endif
  if (wl_copy_available(WL_COPY_AVX2)) return WL_COPY_AVX2;
  if (wl_copy_available(WL_COPY_SSE2)) return WL_COPY_SSE2;
  if (wl_copy_available(WL_COPY_SIMD128)) return WL_COPY_SIMD128;
  return WL_COPY_PORTABLE;
}

/* The installed large-copy function, picking it on first use. The choice is
   installed only over the resolver itself, so a kernel forced by another
   thread in the meantime stays. */
static wl_copy_fn copy_resolved(void) {
  wl_copy_fn f = wl_load_relaxed(&wl_copy_large);
  if (WL_LIKELY(f != copy_resolve)) return f;
  wl_copy_fn best = wl_copy_table[wl_copy_best()].large;
  if (wl_cas_strong(&wl_copy_large, &f, best)) return best;
  return f;  /* resolved or forced by another thread first */
}

static void *copy_resolve(void *dst, const void *src, size_t n) { return copy_resolved()(dst, src, n); }

wl_copy_fn wl_copy_kernel(wl_copy_kernel_t k) {
  return wl_copy_available(k) ? wl_copy_table[k].full : NULL;
}

wl_copy_kernel_t wl_copy_active(void) {
  wl_copy_fn f = copy_resolved();
  for (int k = 0; k < WL_COPY_KERNELS; k++) {
    if (wl_copy_table[k].large == f) return (wl_copy_kernel_t)k;
  }
  return WL_COPY_PORTABLE;  /* not reached */
}

bool wl_copy_force(wl_copy_kernel_t k) {
  if (!wl_copy_available(k)) return false;
  wl_store_relaxed(&wl_copy_large, wl_copy_table[k].large);
  return true;
}

const char *wl_copy_name(wl_copy_kernel_t k) {
  return (unsigned)k < WL_COPY_KERNELS ? wl_copy_table[k].name : "?";
}

/* ------------------------------------------------------------------------
   wl_memcpy: small sizes inline, the rest through the pointer (a tail call).
   The hint only arranges the code: the jump for n > 32 falls straight through
   and the small path sits behind one taken branch. Of the three layouts
   measured, this one made 33..256-byte copies 10-25 % faster (the jump no
   longer straddles a 64-byte line), for up to 0.5 ns more at 8..32 bytes,
   which stay 1.3x faster than glibc's (docs/memcpy.md).
   ------------------------------------------------------------------------ */
WL_INLINE void *copy_dispatch(void *dst, const void *src, size_t n) {
#if WL_COPY_HAVE_SIMD128
  /* wasm: the best kernel is known at compile time, and call_indirect
     measured about 2 ns a call under node (a third of a 64-byte copy), so
     the default kernel is called directly; only a forced one goes through
     the pointer. */
  if (WL_LIKELY(n > WL_COPY_INLINE_MAX)) {
    wl_copy_fn f = wl_load_relaxed(&wl_copy_large);
    if (WL_LIKELY(f == vec16_large || f == copy_resolve)) return vec16_large(dst, src, n);
    return f(dst, src, n);
  }
#else
  if (WL_LIKELY(n > WL_COPY_INLINE_MAX)) return wl_load_relaxed(&wl_copy_large)(dst, src, n);
#endif
#if WL_COPY_VEC16 && (defined(__SSE2__) || WL_COPY_HAVE_SIMD128)
  vec16_small((uint8_t *)dst, (const uint8_t *)src, n);
#else
  portable_small((uint8_t *)dst, (const uint8_t *)src, n);
#endif
  return dst;
}

WL_COPY_FN_ALIGN void *wl_memcpy(void *dst, const void *src, size_t n) { return copy_dispatch(dst, src, n); }

WL_API WL_COPY_FN_ALIGN void *walloc_memcpy(void *dst, const void *src, size_t n) { return copy_dispatch(dst, src, n); }
