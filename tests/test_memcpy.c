/* test_memcpy.c: walloc_memcpy and its kernels (lib/simd/copy.h, white box).
 *
 * Every copier is checked byte for byte against the source, with guard bytes
 * on both sides of the destination. The copiers, one loop-test index each:
 *   0..2  a kernel's full function (portable, sse2, avx2), so each kernel's
 *         own small-size path is tested too;
 *   3..5  wl_memcpy with that kernel forced (the shared inline path below
 *         WL_COPY_INLINE_MAX bytes, the kernel's large path above);
 *   6     walloc_memcpy as it dispatches by default.
 * Kernels the CPU lacks are skipped (reported on stdout).
 *
 * The destination is prepared so that every byte the copy must not write,
 * and every byte it must, holds the complement of the source byte that a
 * copy shifted over it would carry: a missing store, a store off by any
 * distance, or a store past either end shows as a mismatch.
 *
 * Coverage: every size 0..1024 with every source and destination offset
 * 0..63 (4.2 million copies per copier; about 0.5 s each). Under valgrind
 * (CK_TIMEOUT_MULTIPLIER set) the offsets are the subset
 * {0, 1, 7, 15, 16, 31, 33, 63}. Then sizes around every threshold and
 * random sizes (log-uniform) and offsets up to 64 MiB, including one full
 * 64 MiB copy per copier; under valgrind up to 4 MiB, plus one copy just
 * above the non-temporal threshold.
 */
#include "test_common.h"
#include "simd/copy.h"

#include <pthread.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__wasm_simd128__)
#define WL_TEST_SIMD128 1
#else
#define WL_TEST_SIMD128 0
#endif
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define COPIERS (2 * WL_COPY_KERNELS + 1)
#define GUARD 128                       /* guard bytes checked on each side (small sizes) */
#define BIG_GUARD 4096                  /* and for the big copies */
#define SMALL_MAX 1024
#define BIG_MAX ((size_t)64 << 20)

static bool under_valgrind(void) { return getenv("CK_TIMEOUT_MULTIPLIER") != NULL; }

/* The kernel wl_memcpy should pick by itself on this CPU, by the rule in
   copy.h, worked out here from CPUID: AVX-512 where zmm stores are cheap
   (AMD, or Intel with AVX-VNNI), with rep movsb on Intel with ERMS; else
   AVX2; else the 16-byte kernel of the target; else portable. */
static wl_copy_kernel_t best_kernel(void) {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c, d;
  __builtin_cpu_init();
  __get_cpuid(0, &a, &b, &c, &d);
  bool amd = b == 0x68747541u, vnni = false, erms = false;
  if (a >= 7) {
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    vnni = (a >> 4) & 1;
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    erms = (b >> 9) & 1;
  }
  if (__builtin_cpu_supports("avx512f") && (amd || vnni)) return !amd && erms ? WL_COPY_AVX512_REP : WL_COPY_AVX512;
  if (__builtin_cpu_supports("avx2")) return WL_COPY_AVX2;
  return WL_COPY_SSE2;
#elif defined(__wasm_simd128__)
  return WL_COPY_SIMD128;
#else
  return WL_COPY_PORTABLE;
#endif
}

typedef struct copier_s {
  char name[48];
  wl_copy_fn fn;
} copier_t;

/* Sets up copier i (forcing its kernel where needed); false if this CPU
   cannot run it. */
static bool copier_get(int i, copier_t *c) {
  if (i < WL_COPY_KERNELS) {
    wl_copy_kernel_t k = (wl_copy_kernel_t)i;
    c->fn = wl_copy_kernel(k);
    snprintf(c->name, sizeof c->name, "kernel %s", wl_copy_name(k));
    if (c->fn == NULL) printf("skipped: %s (not available on this CPU)\n", c->name);
    return c->fn != NULL;
  }
  if (i < 2 * WL_COPY_KERNELS) {
    wl_copy_kernel_t k = (wl_copy_kernel_t)(i - WL_COPY_KERNELS);
    snprintf(c->name, sizeof c->name, "wl_memcpy forced to %s", wl_copy_name(k));
    c->fn = wl_memcpy;
    if (!wl_copy_force(k)) printf("skipped: %s (not available on this CPU)\n", c->name);
    return wl_copy_active() == k;
  }
  snprintf(c->name, sizeof c->name, "walloc_memcpy (default: %s)", wl_copy_name(best_kernel()));
  c->fn = walloc_memcpy;
  wl_copy_force(best_kernel());
  return true;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t st = seed | 1;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = wl_test_rand(&st);
    __builtin_memcpy(p + i, &v, 8);
  }
  for (; i < n; i++) p[i] = (uint8_t)wl_test_rand(&st);
}

static inline uint8_t inv(uint8_t x) { return (uint8_t)(x ^ 0xffu); }

/* dst[j] = ~src[j] for j in [0, n). */
static void fill_complement(uint8_t *dst, const uint8_t *src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    __builtin_memcpy(&v, src + i, 8);
    v = ~v;
    __builtin_memcpy(dst + i, &v, 8);
  }
  for (; i < n; i++) dst[i] = inv(src[i]);
}

/* One checked copy of n bytes from s to d. The caller guarantees `guard`
   readable source bytes on both sides of s and writable destination bytes on
   both sides of d. Fails the test with a description on any mismatch. */
static void checked_copy(const copier_t *c, uint8_t *d, const uint8_t *s, size_t n, size_t guard) {
  fill_complement(d - guard, s - guard, n + 2 * guard);
  void *ret = c->fn(d, s, n);
  /* (no ck_assert in the hot path: every Check assertion writes to a pipe) */
  if (ret != d) ck_abort_msg("%s: n=%zu returned %p, not dst %p", c->name, n, ret, (void *)d);
  bool ok = memcmp(d, s, n) == 0;
  for (size_t j = 1; ok && j <= guard; j++) ok = d[-(ptrdiff_t)j] == inv(s[-(ptrdiff_t)j]);
  for (size_t j = 0; ok && j < guard; j++) ok = d[n + j] == inv(s[n + j]);
  if (ok) return;
  /* locate the first bad byte for the message */
  ptrdiff_t bad = 0;
  const char *what = "";
  for (ptrdiff_t j = -(ptrdiff_t)guard; j < (ptrdiff_t)(n + guard); j++) {
    bool inside = j >= 0 && (size_t)j < n;
    uint8_t want = inside ? s[j] : inv(s[j]);
    if (d[j] != want) {
      bad = j;
      what = inside ? "copied byte wrong" : (j < 0 ? "guard before dst written" : "guard after dst written");
      break;
    }
  }
  ck_abort_msg("%s: n=%zu, src offset %zu, dst offset %zu (mod 64): %s at index %td", c->name, n,
               (size_t)((uintptr_t)s & 63), (size_t)((uintptr_t)d & 63), what, bad);
}

/* Two page-aligned buffers with room for a guard and 64 bytes of offset on
   each side of `n` bytes. */
typedef struct bufs_s {
  uint8_t *src, *dst; /* aligned bases: offset 0 sits at base + guard */
  size_t len;
} bufs_t;

static void bufs_init(bufs_t *b, size_t n, size_t guard, uint64_t seed) {
  b->len = guard + 64 + n + guard + 64;
  void *s = NULL, *d = NULL;
  ck_assert_int_eq(posix_memalign(&s, 4096, b->len), 0);
  ck_assert_int_eq(posix_memalign(&d, 4096, b->len), 0);
  b->src = s;
  b->dst = d;
  fill_random(b->src, b->len, seed);
}

static void bufs_free(bufs_t *b) {
  free(b->src);
  free(b->dst);
}

/* ------------------------------------------------------------------------ */

START_TEST(kernel_table) {
  ck_assert_str_eq(wl_copy_name(WL_COPY_PORTABLE), "portable");
  ck_assert_str_eq(wl_copy_name(WL_COPY_SSE2), "sse2");
  ck_assert_str_eq(wl_copy_name(WL_COPY_AVX2), "avx2");
  ck_assert_str_eq(wl_copy_name(WL_COPY_AVX512), "avx512");
  ck_assert_str_eq(wl_copy_name(WL_COPY_AVX512_REP), "avx512-rep");
  ck_assert_str_eq(wl_copy_name(WL_COPY_SIMD128), "simd128");
  ck_assert(wl_copy_available(WL_COPY_PORTABLE));
#if defined(__x86_64__)
  ck_assert(wl_copy_available(WL_COPY_SSE2));
  __builtin_cpu_init();
  ck_assert_int_eq(wl_copy_available(WL_COPY_AVX2), __builtin_cpu_supports("avx2") != 0);
  ck_assert_int_eq(wl_copy_available(WL_COPY_AVX512), __builtin_cpu_supports("avx512f") != 0);
  ck_assert(!wl_copy_available(WL_COPY_SIMD128));
#elif defined(__wasm__)
  ck_assert(!wl_copy_available(WL_COPY_SSE2) && !wl_copy_available(WL_COPY_AVX2));
  ck_assert_int_eq(wl_copy_available(WL_COPY_SIMD128), WL_TEST_SIMD128);
#endif
  ck_assert_int_eq(wl_copy_best(), best_kernel());
  ck_assert(!wl_copy_available(WL_COPY_KERNELS));
  ck_assert_ptr_null(wl_copy_kernel(WL_COPY_KERNELS));
  ck_assert(!wl_copy_force(WL_COPY_KERNELS));

  /* untouched, wl_memcpy picks the best kernel the CPU has */
  ck_assert_int_eq(wl_copy_active(), best_kernel());
  for (int k = 0; k < WL_COPY_KERNELS; k++) {
    bool avail = wl_copy_available((wl_copy_kernel_t)k);
    ck_assert_int_eq(wl_copy_kernel((wl_copy_kernel_t)k) != NULL, avail);
    ck_assert_int_eq(wl_copy_force((wl_copy_kernel_t)k), avail);
    if (avail) ck_assert_int_eq(wl_copy_active(), k);
  }
  ck_assert(wl_copy_force(best_kernel()));
  ck_assert_int_eq(wl_copy_active(), best_kernel());
}
END_TEST

START_TEST(zero_bytes_touch_nothing) {
  uint8_t src[4] = {1, 2, 3, 4}, dst[4] = {9, 9, 9, 9};
  for (int i = 0; i < COPIERS; i++) {
    copier_t c;
    if (!copier_get(i, &c)) continue;
    ck_assert_ptr_eq(c.fn(dst + 1, src + 1, 0), dst + 1);
    ck_assert_int_eq(dst[0] + dst[1] + dst[2] + dst[3], 36);
  }
  wl_copy_force(best_kernel());
}
END_TEST

/* Every size 0..1024 at every (or, under valgrind, a dense subset of)
   source and destination offset modulo 64. */
START_TEST(every_size_every_offset) {
  copier_t c;
  if (!copier_get(_i, &c)) return;
  static const size_t subset[] = {0, 1, 7, 15, 16, 31, 33, 63};
  size_t noffs = under_valgrind() ? sizeof subset / sizeof *subset : 64;
  bufs_t b;
  bufs_init(&b, SMALL_MAX, GUARD, 0x5eed0000u + (uint64_t)_i);
  for (size_t n = 0; n <= SMALL_MAX; n++) {
    for (size_t si = 0; si < noffs; si++) {
      size_t so = noffs == 64 ? si : subset[si];
      for (size_t di = 0; di < noffs; di++) {
        size_t dof = noffs == 64 ? di : subset[di];
        checked_copy(&c, b.dst + GUARD + dof, b.src + GUARD + so, n, GUARD);
      }
    }
  }
  bufs_free(&b);
  wl_copy_force(best_kernel());
}
END_TEST

/* Sizes at and around every boundary of the kernels' paths, at random
   offsets, including destinations that end or start next to a page boundary. */
START_TEST(sizes_around_thresholds) {
  copier_t c;
  if (!copier_get(_i, &c)) return;
  size_t max = WL_COPY_NT_MIN + 4096;
  bufs_t b;
  bufs_init(&b, max + 8192, GUARD, 0x7417u + (uint64_t)_i);
  static const size_t edges[] = {1024, 2048, 4096, 8192, 65536, 1u << 20};
  size_t centres[sizeof edges / sizeof *edges + 3];
  size_t nc = 0;
  for (size_t e = 0; e < sizeof edges / sizeof *edges; e++) centres[nc++] = edges[e];
  centres[nc++] = WL_COPY_PREFETCH_MIN;
  centres[nc++] = WL_COPY_REP_MIN;
  centres[nc++] = WL_COPY_NT_MIN;
  uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
  for (size_t k = 0; k < nc; k++) {
    bool huge = centres[k] >= ((size_t)1 << 20);
    size_t step = huge ? (under_valgrind() ? 130 : 65) : 1;
    for (size_t n = centres[k] - 130; n <= centres[k] + 130; n += step) {
      size_t so = wl_test_rand(&rng) % 64, dof = wl_test_rand(&rng) % 64;
      checked_copy(&c, b.dst + GUARD + dof, b.src + GUARD + so, n, GUARD);
    }
  }
  /* destinations starting just before, or ending just after, a page boundary
     (the loops split such stores) */
  for (size_t n = 33; n <= 5000; n += n < 300 ? 1 : 97) {
    for (size_t back = 1; back <= 40; back += 3) {
      uint8_t *page = b.dst + 8192; /* page-aligned */
      size_t so = wl_test_rand(&rng) % 64;
      checked_copy(&c, page - back, b.src + GUARD + so, n, GUARD);            /* starts before the page */
      if (n + back <= 8192) checked_copy(&c, page + back - n, b.src + GUARD + so, n, GUARD); /* ends after it */
    }
  }
  bufs_free(&b);
  wl_copy_force(best_kernel());
}
END_TEST

/* Random sizes (log-uniform) and offsets up to 64 MiB, and one full 64 MiB
   copy; under valgrind up to 4 MiB and one copy above the streaming
   threshold. */
START_TEST(random_sizes_up_to_64_mib) {
  copier_t c;
  if (!copier_get(_i, &c)) return;
  bool vg = under_valgrind();
  size_t max = vg ? WL_COPY_NT_MIN + 65536 : BIG_MAX;
  size_t rand_max = vg ? (size_t)4 << 20 : BIG_MAX;
  int rounds = vg ? 4 : 16;
  bufs_t b;
  bufs_init(&b, max, BIG_GUARD, 0xb16u + (uint64_t)_i);
  uint64_t rng = 0x243f6a8885a308d3ull + (uint64_t)_i;
  for (int r = 0; r < rounds; r++) {
    unsigned top = 63u - (unsigned)__builtin_clzll((unsigned long long)rand_max);
    unsigned bits = 11 + (unsigned)(wl_test_rand(&rng) % (top - 10));
    size_t lo = (size_t)1 << (bits - 1), n = lo + wl_test_rand(&rng) % lo; /* in [2^(bits-1), 2^bits) */
    if (n > rand_max) n = rand_max;
    size_t so = wl_test_rand(&rng) % 64, dof = wl_test_rand(&rng) % 64;
    checked_copy(&c, b.dst + BIG_GUARD + dof, b.src + BIG_GUARD + so, n, BIG_GUARD);
  }
  size_t so = wl_test_rand(&rng) % 64, dof = wl_test_rand(&rng) % 64;
  checked_copy(&c, b.dst + BIG_GUARD + dof, b.src + BIG_GUARD + so, max, BIG_GUARD);
  bufs_free(&b);
  wl_copy_force(best_kernel());
}
END_TEST

/* Threads copy (the first of them resolving the kernel lazily) while the main
   thread switches the forced kernel under them: every copy stays exact. */
typedef struct racer_s {
  int id;
  bool ok;
} racer_t;

static _Atomic(bool) race_stop;

static void *racer(void *arg) {
  racer_t *r = arg;
  uint8_t src[4096 + 64], dst[4096 + 64];
  uint64_t rng = 0xfeedull + (uint64_t)r->id;
  fill_random(src, sizeof src, rng);
  r->ok = true;
  for (int iter = 0; iter < 20000 || !atomic_load(&race_stop); iter++) {
    if (iter >= 200000) break;
    size_t n = wl_test_rand(&rng) % 4097, so = wl_test_rand(&rng) % 64, dof = wl_test_rand(&rng) % 64;
    memset(dst, 0, sizeof dst);
    wl_memcpy(dst + dof, src + so, n);
    if (memcmp(dst + dof, src + so, n) != 0) r->ok = false;
  }
  return NULL;
}

START_TEST(kernel_switch_under_load) {
  WL_WASM_SKIP_THREADS();
  enum { THREADS = 3 };
  pthread_t th[THREADS];
  racer_t rs[THREADS];
  atomic_store(&race_stop, false);
  for (int i = 0; i < THREADS; i++) {
    rs[i].id = i;
    ck_assert_int_eq(pthread_create(&th[i], NULL, racer, &rs[i]), 0);
  }
  for (int i = 0; i < 3000; i++) {
    wl_copy_force((wl_copy_kernel_t)(i % WL_COPY_KERNELS)); /* unavailable ones are refused */
    if (i % 64 == 0) sched_yield();
  }
  atomic_store(&race_stop, true);
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    ck_assert_msg(rs[i].ok, "thread %d saw a wrong copy", i);
  }
  wl_copy_force(best_kernel());
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("memcpy");
  WL_TCASE(s, "api", 30, kernel_table, zero_bytes_touch_nothing, kernel_switch_under_load);
  TCase *tc = tcase_create("copies");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, every_size_every_offset, 0, COPIERS);
  tcase_add_loop_test(tc, sizes_around_thresholds, 0, COPIERS);
  tcase_add_loop_test(tc, random_sizes_up_to_64_mib, 0, COPIERS);
  suite_add_tcase(s, tc);
  return s;
}
