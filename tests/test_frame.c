/* test_frame.c: per-thread frame arenas: allocation inside and outside
 * frames, alignment, bad and impossible requests, steady memory over 1000
 * frames, growth past the 1 MiB chunks, dedicated chunks, trimming after a
 * spike, misuse (nesting), threads, thread exit, and (debug builds or ASan)
 * use after the frame.
 *
 * Each case runs in a fresh forked process (Check). Uses the walloc_ names only.
 */
#include "test_common.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if WL_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static walloc_frame_stats frame_stats(void) {
  walloc_frame_stats s;
  memset(&s, 0xff, sizeof s);
  walloc_frame_stats_get(&s);
  return s;
}

#define mapped_bytes wl_test_mapped_bytes

/* ------------------------------------------------------------------------
   Basics
   ------------------------------------------------------------------------ */
START_TEST(null_outside_a_frame) {
  ck_assert_ptr_null(walloc_frame_alloc(16, 16));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  walloc_frame_begin();
  void *p = walloc_frame_alloc(16, 16);
  ck_assert_ptr_nonnull(p);
  memset(p, 1, 16);
  walloc_frame_end();
  ck_assert_ptr_null(walloc_frame_alloc(16, 16));
  ck_assert_ptr_null(walloc_frame_alloc(0, 0));
  ck_assert_ptr_null(walloc_frame_alloc(5 * MiB, 16)); /* not even a dedicated chunk */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  /* the first allocation of a frame before any chunk exists */
  walloc_frame_begin();
  ck_assert_ptr_nonnull(walloc_frame_alloc(1, 1));
  walloc_frame_end();
}
END_TEST

START_TEST(alignment_of_many_sizes) {
  static const size_t aligns[] = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192, 65536};
  enum { N = 4000 };
  static uint8_t *ptrs[N];
  static size_t sizes[N];
  walloc_frame_begin();
  size_t n = 0;
  uint64_t rng = 12345;
  for (int round = 0; round < 3; round++) {
    for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++) {
      for (size_t size = 0; size < 700 && n < N; size += 1 + (size_t)(wl_test_rand(&rng) % 97)) {
        size_t a = aligns[ai];
        uint8_t *p = walloc_frame_alloc(size, a);
        ck_assert_msg(p != NULL, "size %zu align %zu", size, a);
        ck_assert_uint_eq((uintptr_t)p % (a == 0 ? 16 : a), 0);
        size_t fill = size == 0 ? 1 : size; /* size 0: a distinct pointer, one byte of room */
        wl_test_fill(p, fill, (uint32_t)n);
        ptrs[n] = p;
        sizes[n++] = fill;
      }
    }
  }
  for (size_t i = 0; i < n; i++) ck_assert_uint_eq(wl_test_check(ptrs[i], sizes[i], (uint32_t)i), sizes[i]);
  walloc_frame_stats s = frame_stats();
  ck_assert_uint_eq(s.allocations, n);
  size_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += sizes[i];
  ck_assert_uint_ge(s.bytes, sum);
  walloc_frame_end();
}
END_TEST

START_TEST(bad_and_impossible_requests) {
  walloc_frame_begin();
  void *before = walloc_frame_alloc(32, 16);
  ck_assert_ptr_nonnull(before);
  memset(before, 0x5a, 32);
  static const size_t bad_align[] = {3, 6, 24, 48, 100, 4097, WL_TEST_POW2(63) | 1};
  for (size_t i = 0; i < sizeof bad_align / sizeof *bad_align; i++) {
    ck_assert_ptr_null(walloc_frame_alloc(16, wl_opaque(bad_align[i])));
    ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  }
  static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 8, SIZE_MAX / 2, (size_t)PTRDIFF_MAX, WL_TEST_POW2(60)};
  for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
    ck_assert_ptr_null(walloc_frame_alloc(wl_opaque(huge[i]), 16));
    ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
  }
  ck_assert_ptr_null(walloc_frame_alloc(64, wl_opaque(WL_TEST_POW2(63)))); /* alignment beyond any memory */
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
  /* size 0 gives distinct pointers */
  void *z1 = walloc_frame_alloc(0, 0), *z2 = walloc_frame_alloc(0, 0);
  ck_assert_ptr_nonnull(z1);
  ck_assert_ptr_nonnull(z2);
  ck_assert_ptr_ne(z1, z2);
  /* nothing above disturbed the frame */
  uint8_t *after = walloc_frame_alloc(32, 16);
  ck_assert_ptr_nonnull(after);
  memset(after, 0x11, 32);
  for (int i = 0; i < 32; i++) ck_assert_int_eq(((uint8_t *)before)[i], 0x5a);
  walloc_frame_end();
}
END_TEST

START_TEST(stats_follow_the_frame) {
  walloc_frame_stats s = frame_stats();
  ck_assert_uint_eq(s.chunks, 0);
  ck_assert_uint_eq(s.allocations, 0);
  walloc_frame_begin();
  for (int i = 0; i < 100; i++) ck_assert_ptr_nonnull(walloc_frame_alloc(100, 4));
  s = frame_stats();
  ck_assert_uint_eq(s.allocations, 100);
  ck_assert_uint_ge(s.bytes, 100 * 100);
  ck_assert_uint_lt(s.bytes, 100 * 100 + 4096);
  ck_assert_uint_eq(s.chunks, 1);
  walloc_frame_end();
  walloc_frame_begin();
  ck_assert_ptr_nonnull(walloc_frame_alloc(1000, 16));
  s = frame_stats();
  ck_assert_uint_eq(s.allocations, 1);
  ck_assert_uint_ge(s.bytes, 1000);
  ck_assert_uint_lt(s.bytes, 2000);
  ck_assert_uint_ge(s.peak_bytes, 100 * 100);
  walloc_frame_end();
}
END_TEST

/* ------------------------------------------------------------------------
   Memory over many frames
   ------------------------------------------------------------------------ */
/* Under valgrind (its test setup sets CK_TIMEOUT_MULTIPLIER) the long loops
   run a fifth of their frames: the other builds run them all. */
static int frames_scaled(int n) { return getenv("CK_TIMEOUT_MULTIPLIER") != NULL ? n / 5 : n; }

START_TEST(steady_memory_over_1000_frames) {
  enum { OBJECTS = 9000 }; /* about 1.2 MiB a frame: five chunks */
  static size_t sizes[OBJECTS];
  uint64_t rng = 99;
  for (int i = 0; i < OBJECTS; i++) sizes[i] = 16 + (size_t)(wl_test_rand(&rng) % 241);
  size_t chunks_warm = 0;
  uint64_t mapped_warm = 0;
  int frames = frames_scaled(1000);
  for (int f = 0; f < frames; f++) {
    walloc_frame_begin();
    uint8_t *first = NULL, *last = NULL;
    for (int i = 0; i < OBJECTS; i++) {
      uint8_t *p = walloc_frame_alloc(sizes[i], 16);
      if (p == NULL) ck_abort_msg("frame %d object %d: NULL", f, i);
      p[0] = (uint8_t)f;
      p[sizes[i] - 1] = (uint8_t)i;
      if (i == 0) first = p;
      last = p;
    }
    ck_assert_int_eq(first[0], (uint8_t)f);
    ck_assert_int_eq(last[sizes[OBJECTS - 1] - 1], (uint8_t)(OBJECTS - 1));
    walloc_frame_stats s = frame_stats();
    ck_assert_uint_eq(s.allocations, OBJECTS);
    ck_assert_uint_ge(s.chunks, 5);
    walloc_frame_end();
    if (f == 9) {
      chunks_warm = s.chunks;
      mapped_warm = mapped_bytes();
    } else if (f > 9) {
      ck_assert_msg(s.chunks == chunks_warm, "frame %d holds %zu chunks, %zu after warm-up", f, s.chunks,
                    chunks_warm);
      uint64_t m = mapped_bytes();
      ck_assert_msg(m <= mapped_warm, "frame %d: mapped %llu > %llu after warm-up", f, (unsigned long long)m,
                    (unsigned long long)mapped_warm);
    }
  }
  /* chunks double up to 1 MiB: far fewer than 64 KiB chunks would need */
  ck_assert_uint_le(chunks_warm, 6);
}
END_TEST

START_TEST(growth_beyond_1mib_chunks) {
  uint64_t m0 = mapped_bytes();
  walloc_frame_begin();
  enum { N = 2048 };
  static uint8_t *ptrs[N];
  for (int i = 0; i < N; i++) { /* 8 MiB of 4 KiB objects */
    ptrs[i] = walloc_frame_alloc(4 * KiB, 64);
    ck_assert_ptr_nonnull(ptrs[i]);
    ck_assert_uint_eq((uintptr_t)ptrs[i] % 64, 0);
    wl_test_fill_sparse(ptrs[i], 4 * KiB, (uint32_t)i);
  }
  for (int i = 0; i < N; i++) ck_assert(wl_test_check_sparse(ptrs[i], 4 * KiB, (uint32_t)i));
  walloc_frame_stats s = frame_stats();
  /* 64+128+256+512 KiB, then 1 MiB chunks: 5 + about 7 */
  ck_assert_uint_ge(s.chunks, 9);
  ck_assert_uint_le(s.chunks, 14);
  uint64_t grown = mapped_bytes() - m0;
  ck_assert_uint_ge(grown, 8 * MiB);
  ck_assert_uint_le(grown, 8 * MiB + 3 * MiB);
  /* a request no chunk can hold gets its own, gone at frame end */
  uint8_t *big = walloc_frame_alloc(3 * MiB + 5, 4096);
  ck_assert_ptr_nonnull(big);
  ck_assert_uint_eq((uintptr_t)big % 4096, 0);
  wl_test_fill_sparse(big, 3 * MiB + 5, 7);
  ck_assert(wl_test_check_sparse(big, 3 * MiB + 5, 7));
  ck_assert_uint_eq(frame_stats().chunks, s.chunks + 1);
  ck_assert_uint_ge(frame_stats().bytes, 8 * MiB + 3 * MiB);
  for (int i = 0; i < N; i++) ck_assert(wl_test_check_sparse(ptrs[i], 4 * KiB, (uint32_t)i));
  walloc_frame_end();
  ck_assert_uint_eq(frame_stats().chunks, s.chunks);
  ck_assert_uint_le(mapped_bytes(), m0 + grown);
  /* the next frame reuses the chunks: nothing new is mapped */
  walloc_frame_begin();
  for (int i = 0; i < N; i++) ck_assert_ptr_nonnull(walloc_frame_alloc(4 * KiB, 64));
  ck_assert_uint_eq(frame_stats().chunks, s.chunks);
  ck_assert_uint_le(mapped_bytes(), m0 + grown);
  walloc_frame_end();
}
END_TEST

START_TEST(trimming_after_a_spike) {
  for (int f = 0; f < 5; f++) { /* warm: 100 KiB a frame */
    walloc_frame_begin();
    for (int i = 0; i < 100; i++) ck_assert_ptr_nonnull(walloc_frame_alloc(1000, 16));
    walloc_frame_end();
  }
  size_t small_chunks = frame_stats().chunks;
  uint64_t small_mapped = mapped_bytes();
  ck_assert_uint_le(small_chunks, 2);
  walloc_frame_begin(); /* one frame of 20 MiB */
  for (int i = 0; i < 20 * 256; i++) ck_assert_ptr_nonnull(walloc_frame_alloc(4 * KiB, 16));
  walloc_frame_end();
  ck_assert_uint_gt(frame_stats().chunks, 15);
  ck_assert_uint_gt(mapped_bytes(), small_mapped + 18 * MiB);
  int released_at = -1;
  for (int f = 0; f < 200; f++) {
    walloc_frame_begin();
    for (int i = 0; i < 100; i++) ck_assert_ptr_nonnull(walloc_frame_alloc(1000, 16));
    walloc_frame_end();
    if (released_at < 0 && frame_stats().chunks == small_chunks) released_at = f;
  }
  ck_assert_msg(released_at >= 0, "the spike's chunks were never released");
  ck_assert_msg(released_at >= 10, "released after %d frames: chunks must survive a short lull", released_at);
  ck_assert_uint_le(mapped_bytes(), small_mapped);
}
END_TEST

START_TEST(nesting_and_stray_end_are_tolerated) {
  walloc_frame_end(); /* reported, ignored */
  ck_assert_ptr_null(walloc_frame_alloc(8, 8));
  walloc_frame_begin();
  uint8_t *a = walloc_frame_alloc(64, 16);
  ck_assert_ptr_nonnull(a);
  memset(a, 0x33, 64);
  walloc_frame_begin(); /* reported, ignored: the frame goes on */
  uint8_t *b = walloc_frame_alloc(64, 16);
  ck_assert_ptr_nonnull(b);
  memset(b, 0x44, 64);
  for (int i = 0; i < 64; i++) ck_assert_int_eq(a[i], 0x33);
  ck_assert_uint_eq(frame_stats().allocations, 2);
  walloc_frame_end();
  ck_assert_ptr_null(walloc_frame_alloc(8, 8));
  walloc_frame_end(); /* reported, ignored */
  walloc_frame_begin();
  ck_assert_ptr_nonnull(walloc_frame_alloc(8, 8));
  walloc_frame_end();
}
END_TEST

/* ------------------------------------------------------------------------
   Threads
   ------------------------------------------------------------------------ */
enum { THREADS = 8, THREAD_FRAMES = 150, THREAD_OBJECTS = 3000 };

static void *frame_thread(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint8_t **ptrs = malloc(THREAD_OBJECTS * sizeof *ptrs);
  size_t *sizes = malloc(THREAD_OBJECTS * sizeof *sizes);
  uint64_t rng = 1000 + id;
  int frames = frames_scaled(THREAD_FRAMES);
  for (int f = 0; f < frames; f++) {
    walloc_frame_begin();
    int n = 500 + (int)(wl_test_rand(&rng) % (THREAD_OBJECTS - 500));
    for (int i = 0; i < n; i++) {
      sizes[i] = 1 + (size_t)(wl_test_rand(&rng) % 600);
      ptrs[i] = walloc_frame_alloc(sizes[i], (size_t)1 << (wl_test_rand(&rng) % 7));
      if (ptrs[i] == NULL) return (void *)1;
      wl_test_fill(ptrs[i], sizes[i], (uint32_t)(id * 7919 + (uintptr_t)i + (uintptr_t)f));
    }
    for (int i = 0; i < n; i++) {
      if (wl_test_check(ptrs[i], sizes[i], (uint32_t)(id * 7919 + (uintptr_t)i + (uintptr_t)f)) != sizes[i]) {
        return (void *)2;
      }
    }
    walloc_frame_stats s;
    walloc_frame_stats_get(&s);
    if (s.allocations != (size_t)n) return (void *)3;
    walloc_frame_end();
  }
  free(ptrs);
  free(sizes);
  return NULL;
}

START_TEST(frames_in_eight_threads) {
  WL_WASM_SKIP_THREADS();
  wl_test_run_workers(THREADS, frame_thread, "thread");
  ck_assert_uint_eq(frame_stats().chunks, 0); /* the main thread's frames were never touched */
}
END_TEST

static uint64_t mapped_in_thread;

static void *exits_mid_frame(void *arg) {
  (void)arg;
  walloc_frame_begin();
  for (int i = 0; i < 10 * 256; i++) { /* 10 MiB */
    uint8_t *p = walloc_frame_alloc(4 * KiB, 16);
    if (p == NULL) return (void *)1;
    p[0] = 1;
  }
  mapped_in_thread = mapped_bytes();
  return NULL; /* no walloc_frame_end: thread exit releases the chunks */
}

START_TEST(thread_exit_releases_chunks) {
  WL_WASM_SKIP_THREADS();
  for (int round = 0; round < 3; round++) {
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, exits_mid_frame, NULL), 0);
    void *ret;
    pthread_join(t, &ret);
    ck_assert_ptr_null(ret);
    uint64_t after = mapped_bytes();
    ck_assert_msg(after + 9 * MiB <= mapped_in_thread, "round %d: mapped %llu in the thread, %llu after exit",
                  round, (unsigned long long)mapped_in_thread, (unsigned long long)after);
  }
}
END_TEST

/* ------------------------------------------------------------------------
   Use after the frame: the debug poison check, or ASan
   ------------------------------------------------------------------------ */
#if WL_DEBUG > 0 && !WL_TEST_ASAN
#define stderr_has wl_test_stderr_has

static void write_after_end(void) {
  walloc_frame_begin();
  uint8_t *p = walloc_frame_alloc(64, 16);
  ck_assert_ptr_nonnull(p);
  walloc_frame_end();
  p[10] = 42; /* the misuse */
  walloc_frame_begin();
  walloc_frame_end();
}

static void clean_frames(void) {
  for (int f = 0; f < 3; f++) {
    walloc_frame_begin();
    uint8_t *p = walloc_frame_alloc(64, 16);
    ck_assert_ptr_nonnull(p);
    memset(p, 1, 64);
    walloc_frame_end();
  }
}

START_TEST(write_after_frame_end_is_reported) {
  ck_assert(!stderr_has(clean_frames, "frame memory written after walloc_frame_end"));
  ck_assert(stderr_has(write_after_end, "frame memory written after walloc_frame_end"));
  ck_assert(!stderr_has(clean_frames, "frame memory written after walloc_frame_end")); /* back to normal */
}
END_TEST
#endif

#if WL_TEST_ASAN
START_TEST(ended_frame_memory_is_poisoned_for_asan) {
  walloc_frame_begin();
  uint8_t *p = walloc_frame_alloc(64, 16);
  ck_assert_ptr_nonnull(p);
  ck_assert(!__asan_address_is_poisoned(p));
  ck_assert(!__asan_address_is_poisoned(p + 63));
  ck_assert(__asan_address_is_poisoned(p + 64)); /* not handed out yet */
  walloc_frame_end();
  ck_assert(__asan_address_is_poisoned(p));
  ck_assert(__asan_address_is_poisoned(p + 32));
  walloc_frame_begin();
  uint8_t *q = walloc_frame_alloc(64, 16);
  ck_assert_ptr_eq(q, p); /* recycled, and usable again */
  ck_assert(!__asan_address_is_poisoned(q));
  walloc_frame_end();
}
END_TEST
#endif

Suite *wl_test_suite(void) {
  Suite *s = suite_create("frame");
  WL_TCASE(s, "basics", 60, null_outside_a_frame, alignment_of_many_sizes, bad_and_impossible_requests,
           stats_follow_the_frame, nesting_and_stray_end_are_tolerated);
  WL_TCASE(s, "memory", 120, steady_memory_over_1000_frames, growth_beyond_1mib_chunks, trimming_after_a_spike);
  WL_TCASE(s, "threads", 120, frames_in_eight_threads, thread_exit_releases_chunks);
#if WL_DEBUG > 0 && !WL_TEST_ASAN
  WL_TCASE(s, "debug", 30, write_after_frame_end_is_reported);
#endif
#if WL_TEST_ASAN
  WL_TCASE(s, "asan", 30, ended_frame_memory_is_poisoned_for_asan);
#endif
  return s;
}
