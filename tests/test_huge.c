/* test_huge.c: huge blocks, white-box (linked with the core archive, so it
 * can read the ownership map).
 *
 * realloc moves a huge block with mremap, which frees the old range at once;
 * another thread can map a block there and set that range's map byte before
 * the moving thread goes on. The test puts itself in that gap: it defines
 * mremap (the executable's definition comes first), and after the real move
 * marks the old range's byte as another block's would be. The byte must
 * survive the realloc: the move used to clear it afterwards, so that a live
 * block read as "not walloc's memory" (and its free now aborts). Found by
 * benchmarks/bench-realloc with 4 threads, about one run in four.
 */
#include "test_common.h"

#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "heap/heap.h"

#define MiB ((size_t)1 << 20)

/* Under ThreadSanitizer walloc never resizes or moves a mapping
   (lib/platform/linux.c): the tests that need it say so and return. */
#if defined(WL_TSAN)
#define WL_NO_REMAP 1
#else
#define WL_NO_REMAP 0
#endif
#define SKIP_WITHOUT_REMAP(test)                                                                             \
  do {                                                                                                      \
    if (WL_NO_REMAP) {                                                                                      \
      printf("skipped: %s (under ThreadSanitizer walloc never resizes or moves a mapping: lib/platform/linux.c)\n", \
             test);                                                                                         \
      return;                                                                                               \
    }                                                                                                       \
  } while (0)

static void *moved_from;  /* set by the interposed mremap when it moved a range */
static bool mark_after_move;

void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...) {
  void *dst = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    dst = va_arg(ap, void *);
    va_end(ap);
  }
  void *p = (void *)syscall(SYS_mremap, old, old_size, new_size, flags, dst);
  if (p != MAP_FAILED && p != old && mark_after_move) {
    moved_from = old;
    wl_segment_map_set(old, WL_MAP_HUGE); /* another thread's new block, mapped there meanwhile */
  }
  return p;
}

START_TEST(realloc_move_keeps_a_newer_blocks_map_byte) {
  SKIP_WITHOUT_REMAP("realloc_move_keeps_a_newer_blocks_map_byte");
  char *p = walloc_malloc(8 * MiB);
  ck_assert_ptr_nonnull(p);
  p[0] = 42;
  /* something just after the block, so that it cannot grow in place */
  void *fence = mmap(p + 8 * MiB + 64 * 1024, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  mark_after_move = true;
  char *q = walloc_realloc(p, 40 * MiB);
  mark_after_move = false;
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(q[0], 42);
  ck_assert_msg(moved_from != NULL, "the block did not move (fence %p): nothing tested", fence);
  ck_assert_ptr_ne(q, p);
  ck_assert_msg(wl_map_value(moved_from) == WL_MAP_HUGE,
                "the move cleared the map byte of the range it left after another block took it");
  wl_segment_map_set(moved_from, WL_MAP_NONE); /* the pretend block is gone */
  ck_assert(walloc_owns(q));
  walloc_free(q);
  if (fence != MAP_FAILED) munmap(fence, 4096);
}
END_TEST

/* ------------------------------------------------------------------------
   The huge cache across sizes: a freed mapping serves the next block of any
   size, grown in place or moved by the kernel when it is too small, lending
   its surplus when it is too large; the surplus is given back after the
   cache delay (or at once under memory pressure).
   ------------------------------------------------------------------------ */
static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static void touch_pages(char *p, size_t n, char v) {
  for (size_t o = 0; o < n; o += 4096) p[o] = v;
}

START_TEST(varying_huge_sizes_reuse_the_same_pages) {
  SKIP_WITHOUT_REMAP("varying_huge_sizes_reuse_the_same_pages");
  walloc_collect(true);
  walloc_heap_stats before = wl_test_stats();
  long faults_before = minor_faults();
  uint64_t x = 12345;
  size_t touched = 0;
  for (int i = 0; i < 200; i++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    size_t n = (size_t)(3 + (x >> 33) % 14) * MiB - 4096 * (size_t)(x >> 60); /* 3 to 16 MiB */
    char *p = walloc_malloc(n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(walloc_usable_size(p), n);
    touch_pages(p, n, (char)i);
    p[n - 1] = (char)i;
    touched += n / 4096;
    walloc_free(p);
  }
  long faults = minor_faults() - faults_before;
  walloc_heap_stats after = wl_test_stats();
  /* One block at a time: the pages of the largest mapping, faulted in once,
     serve all (a fresh mapping per size that misses faulted in about a third
     of the pages touched, and kept up to 8 mappings resident: 89 MiB). */
  ck_assert_msg(faults < (long)(touched / 20), "%ld page faults for %zu pages touched", faults, touched);
  ck_assert_uint_le(after.peak_mapped_bytes, before.mapped_bytes + 24 * MiB);
  ck_assert_uint_ge(after.huge_cache_hits - before.huge_cache_hits, 190);
}
END_TEST

START_TEST(a_lent_surplus_is_given_back_after_the_delay) {
  SKIP_WITHOUT_REMAP("a_lent_surplus_is_given_back_after_the_delay");
  walloc_collect(true);
  char *big = walloc_malloc(32 * MiB);
  touch_pages(big, 32 * MiB, 1);
  walloc_free(big);
  uint64_t cached = wl_test_mapped_bytes();
  char *p = walloc_malloc(4 * MiB); /* from the cached 32 MiB: 27 MiB lent */
  ck_assert_ptr_nonnull(p);
  size_t usable = walloc_usable_size(p);
  ck_assert_uint_ge(usable, 4 * MiB);
  ck_assert_uint_le(usable, 5 * MiB + 4096); /* the surplus is not the block's */
  memset(p, 7, usable);
  ck_assert_uint_ge(wl_test_mapped_bytes(), cached); /* nothing given back yet */
  walloc_collect(false);                             /* not due yet */
  ck_assert_uint_ge(wl_test_mapped_bytes(), cached);
  struct timespec ts = {0, 150 * 1000 * 1000}; /* longer than the 100 ms cache delay */
  nanosleep(&ts, NULL);
  walloc_collect(false);
  ck_assert_uint_le(wl_test_mapped_bytes() + 24 * MiB, cached);
  for (size_t i = 0; i < usable; i += 4093) ck_assert_int_eq(p[i], 7);
  ck_assert_uint_eq(walloc_usable_size(p), usable);
  walloc_free(p);
  /* pressure trims at once */
  big = walloc_malloc(32 * MiB);
  touch_pages(big, 32 * MiB, 1);
  walloc_free(big);
  cached = wl_test_mapped_bytes();
  p = walloc_malloc(4 * MiB);
  walloc_collect(true);
  ck_assert_uint_le(wl_test_mapped_bytes() + 24 * MiB, cached);
  walloc_free(p);
}
END_TEST

START_TEST(realloc_of_a_lent_block_gives_what_it_asks) {
  walloc_collect(true);
  char *big = walloc_malloc(32 * MiB);
  touch_pages(big, 32 * MiB, 1);
  walloc_free(big);
  char *p = walloc_malloc(4 * MiB); /* lent */
  memset(p, 3, 4 * MiB);
  for (size_t n = 20 * MiB; n <= 40 * MiB; n += 20 * MiB) { /* within its mapping, then past it */
    p = walloc_realloc(p, n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(walloc_usable_size(p), n);
    ck_assert_int_eq(p[4 * MiB - 1], 3);
    memset(p + 4 * MiB, 4, walloc_usable_size(p) - 4 * MiB);
  }
  p = walloc_realloc(p, 3 * MiB); /* shrinks: still a valid block */
  ck_assert_uint_ge(walloc_usable_size(p), 3 * MiB);
  ck_assert_int_eq(p[0], 3);
  walloc_free(p);
  walloc_collect(true);
}
END_TEST

/* WALLOC_HUGE_CACHE can be set to 0 at run time: what was cached and lent
   before must still be looked after (freed from the lists, released). */
START_TEST(turning_the_cache_off_leaves_nothing_behind) {
  SKIP_WITHOUT_REMAP("turning_the_cache_off_leaves_nothing_behind");
  walloc_collect(true);
  uint64_t base = wl_test_mapped_bytes();
  char *big = walloc_malloc(32 * MiB);
  touch_pages(big, 32 * MiB, 1);
  walloc_free(big);
  char *p = walloc_malloc(4 * MiB); /* lends 27 MiB */
  char *q = walloc_malloc(24 * MiB);
  walloc_free(q); /* cached */
  ck_assert_int_eq(walloc_option_set("huge_cache", 0), WALLOC_OK);
  walloc_free(p);
  walloc_collect(true);
  ck_assert_int_eq(walloc_option_set("huge_cache", 8), WALLOC_OK);
  ck_assert_msg(wl_test_mapped_bytes() <= base + MiB, "%.1f MiB still mapped",
                (double)(wl_test_mapped_bytes() - base) / MiB);
  p = walloc_malloc(4 * MiB); /* the lists are sound */
  walloc_free(p);
  walloc_collect(true);
}
END_TEST

/* A cached huge mapping grown by moving it (an inaccessible page right after
   it stops growth in place) past where it was: the whole grown block is the
   program's. Natively the kernel sees to it; under valgrind (CI runs this
   suite under memcheck) it checks that walloc tells memcheck what its
   MREMAP_FIXED handling gets wrong (lib/platform/linux.c, wl_os_remap). */
START_TEST(remap_past_a_guard_page) {
  SKIP_WITHOUT_REMAP("remap_past_a_guard_page");
  walloc_collect(true);
  char *p = walloc_malloc(8 * MiB);
  ck_assert_ptr_nonnull(p);
  wl_segment_t *seg = wl_huge_header(p, WL_MAP_HUGE);
  uint8_t *end = (uint8_t *)seg + seg->mapped_size;
  walloc_free(p); /* cached */
  void *guard = mmap(end, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  size_t n = 20 * MiB;
  char *q = walloc_malloc(n); /* the cached mapping, moved and grown */
  ck_assert_ptr_nonnull(q);
  ck_assert_ptr_ne(wl_huge_header(q, WL_MAP_HUGE), seg);
  ck_assert_uint_ge(wl_stats.huge_cache_hits, 1);
  memset(q + n - 2 * MiB, 7, 2 * MiB); /* the grown tail */
  ck_assert_int_eq(q[n - 1], 7);
  walloc_free(q);
  if (guard != MAP_FAILED) munmap(guard, 4096);
  walloc_collect(true);
}
END_TEST

/* Blocks with lent surpluses freed and reallocated by one thread while
   another trims them (walloc_collect) and a third frees the first's blocks:
   run under ThreadSanitizer and valgrind in CI. */
#define LENT_ROUNDS 300
static char *_Atomic handoff;

static void *lent_worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < LENT_ROUNDS; i++) {
    seed = seed * 1103515245u + 12345u;
    size_t n = (size_t)(3 + seed % 20) * MiB;
    char *p = walloc_malloc(n);
    ck_assert_ptr_nonnull(p);
    p[0] = 1;
    p[n - 1] = 2;
    if (seed & 0x100) p = walloc_realloc(p, n + (seed & 0x200 ? MiB : 0) / 2 + 4096);
    ck_assert_int_eq(p[0], 1);
    p = atomic_exchange(&handoff, p); /* free another thread's block, or our own */
    walloc_free(p);
  }
  return NULL;
}

static void *lent_collector(void *arg) {
  _Atomic int *stop = arg;
  while (!atomic_load(stop)) walloc_collect((atomic_load(stop) & 1) != 0);
  return NULL;
}

START_TEST(lent_surpluses_under_threads) {
  WL_WASM_SKIP_THREADS();
  _Atomic int stop = 0;
  pthread_t w[2], c;
  pthread_create(&c, NULL, lent_collector, &stop);
  for (int i = 0; i < 2; i++) pthread_create(&w[i], NULL, lent_worker, (void *)(uintptr_t)(i + 1));
  for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
  atomic_store(&stop, 1);
  pthread_join(c, NULL);
  walloc_free(atomic_exchange(&handoff, NULL));
  walloc_collect(true);
  ck_assert_int_eq(atomic_load(&wl_stats.huge_live), 0);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("huge");
  WL_TCASE(s, "remap", 60, realloc_move_keeps_a_newer_blocks_map_byte, remap_past_a_guard_page);
  WL_TCASE(s, "cache", 120, varying_huge_sizes_reuse_the_same_pages, a_lent_surplus_is_given_back_after_the_delay,
           realloc_of_a_lent_block_gives_what_it_asks, lent_surpluses_under_threads,
           turning_the_cache_off_leaves_nothing_behind);
  return s;
}
