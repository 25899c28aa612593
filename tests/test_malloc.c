/* test_malloc.c: the malloc family as exported by libwalloc.so.
 *
 * This executable links libwalloc.so, so malloc, free and the rest resolve
 * to walloc (walloc_owns proves it). Every case runs in its own forked
 * process (Check's default), so a broken heap fails one case, not all.
 */
#include "test_common.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__EMSCRIPTEN__) /* walloc defines them; Emscripten's headers do not declare them */
void *pvalloc(size_t size);
int malloc_trim(size_t pad);
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static char static_buffer[256];

/* Sizes that cross every boundary of the heap: classes, pages, large, huge. */
static const size_t boundary_sizes[] = {
  0, 1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 64, 100, 127, 128, 129, 144, 255, 256, 257,
  500, 512, 1000, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 8191, 8192, 8193, 12000, 16384,
  32768, 65535, 65536, 65537, 100000, 131072, 262144, 1000000, 2 * MiB - 1, 2 * MiB,
  2 * MiB + 1, 3 * MiB, 4 * MiB, 5 * MiB + 12345, 17 * MiB,
};
#define NSIZES (sizeof boundary_sizes / sizeof boundary_sizes[0])

START_TEST(malloc_is_served_by_walloc) {
  void *p = malloc(100);
  ck_assert_ptr_nonnull(p);
  ck_assert(walloc_owns(p));
  free(p);
  int *q = calloc(10, sizeof *q);
  ck_assert(walloc_owns(q));
  free(q);
  ck_assert(!walloc_owns(static_buffer));
  ck_assert(!walloc_owns(NULL));
}
END_TEST

START_TEST(every_size_is_usable_and_aligned) {
  void *blocks[NSIZES];
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = boundary_sizes[i];
    blocks[i] = malloc(n);
    ck_assert_ptr_nonnull(blocks[i]);
    ck_assert_uint_eq((uintptr_t)blocks[i] % 16, 0);
    size_t usable = malloc_usable_size(blocks[i]);
    ck_assert_uint_ge(usable, n);
    ck_assert_uint_ge(usable, 1);
    wl_test_fill(blocks[i], usable, (uint32_t)i); /* the whole usable size is writable */
  }
  for (size_t i = 0; i < NSIZES; i++) {
    ck_assert_uint_eq(wl_test_check(blocks[i], malloc_usable_size(blocks[i]), (uint32_t)i),
                      malloc_usable_size(blocks[i]));
    free(blocks[i]);
  }
}
END_TEST

START_TEST(malloc_zero_gives_distinct_blocks) {
  void *a = malloc(0), *b = malloc(0);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_ne(a, b);
  free(a);
  free(b);
}
END_TEST

START_TEST(aligned_entry_points_align) {
  for (size_t align = sizeof(void *); align <= 8 * MiB; align *= 2) {
    const size_t sizes[] = {1, 24, align, align + 1, 3 * align / 2, 100000, 3 * MiB};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      size_t n = sizes[k];
      void *p = NULL;
      ck_assert_int_eq(posix_memalign(&p, align, n), 0);
      void *q = aligned_alloc(align, n);
      void *r = memalign(align, n);
      ck_assert_ptr_nonnull(p);
      ck_assert_ptr_nonnull(q);
      ck_assert_ptr_nonnull(r);
      ck_assert_uint_eq((uintptr_t)p % align, 0);
      ck_assert_uint_eq((uintptr_t)q % align, 0);
      ck_assert_uint_eq((uintptr_t)r % align, 0);
      ck_assert_uint_ge(malloc_usable_size(p), n);
      ck_assert(walloc_owns(p) && walloc_owns(q) && walloc_owns(r));
      memset(p, 0xab, n);
      memset(q, 0xcd, n);
      memset(r, 0xef, n);
      free(p);
      free(q);
      free(r);
    }
  }
  long page = sysconf(_SC_PAGESIZE);
  void *v = valloc(10);
  ck_assert_uint_eq((uintptr_t)v % (uintptr_t)page, 0);
  void *pv = pvalloc(10);
  ck_assert_uint_eq((uintptr_t)pv % (uintptr_t)page, 0);
  ck_assert_uint_ge(malloc_usable_size(pv), (size_t)page); /* pvalloc rounds up to a page */
  void *pv0 = pvalloc(0);
  ck_assert_ptr_nonnull(pv0);
  free(v);
  free(pv);
  free(pv0);
  void *w = walloc_aligned_alloc(4096, 100);
  ck_assert_uint_eq((uintptr_t)w % 4096, 0);
  walloc_free(w);
}
END_TEST

/* A zero-byte request at a huge alignment once got a mapping of exactly the
   alignment and a block just past its end: at 4 MiB and more that is the next
   4 MiB of address space, often the heap's own segment, whose map byte the
   allocation overwrote and its free then cleared (found by tests/fuzz_malloc.c). */
START_TEST(aligned_zero_bytes_get_a_block_of_their_own) {
  void *small = malloc(100);
  size_t small_usable = malloc_usable_size(small);
  for (size_t align = 16; align <= 16 * MiB; align *= 2) {
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, align, 0), 0);
    void *q = aligned_alloc(align, 0), *r = memalign(align, 0);
    void *all[] = {p, q, r};
    for (int i = 0; i < 3; i++) {
      ck_assert_ptr_nonnull(all[i]);
      ck_assert_uint_eq((uintptr_t)all[i] % align, 0);
      size_t usable = malloc_usable_size(all[i]);
      ck_assert_uint_ge(usable, 1); /* a block of its own, inside its own mapping */
      memset(all[i], 0x5a, usable);
    }
    ck_assert(walloc_owns(small));
    ck_assert_uint_eq(malloc_usable_size(small), small_usable);
    for (int i = 0; i < 3; i++) free(all[i]);
    ck_assert(walloc_owns(small));
    ck_assert_uint_eq(malloc_usable_size(small), small_usable);
  }
  free(small);
}
END_TEST

START_TEST(bad_alignments_are_einval) {
  void *p = static_buffer;
  ck_assert_int_eq(posix_memalign(&p, 3, 16), EINVAL);
  ck_assert_ptr_eq(p, static_buffer); /* untouched on error */
  ck_assert_int_eq(posix_memalign(&p, sizeof(void *) / 2, 16), EINVAL); /* below sizeof(void *) */
  ck_assert_int_eq(posix_memalign(&p, 0, 16), EINVAL);
  errno = 0;
  ck_assert_ptr_null(aligned_alloc(wl_opaque(3), 16));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(aligned_alloc(wl_opaque(0), 16));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(walloc_aligned_alloc(wl_opaque(48), 16));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(memalign(wl_opaque(SIZE_MAX), 16)); /* glibc: beyond half the address space */
  ck_assert_int_eq(errno, EINVAL);
  void *m = memalign(wl_opaque(24), 100); /* glibc rounds a non-power of two up: 32 */
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_eq((uintptr_t)m % 32, 0);
  free(m);
}
END_TEST

START_TEST(impossible_sizes_are_enomem) {
  const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1,
#if SIZE_MAX > UINT32_MAX /* (not on wasm32, where 3 GiB may well be granted) */
                          (size_t)1 << 62, (size_t)1 << 47
#endif
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = wl_opaque(sizes[i]);
    errno = 0;
    ck_assert_ptr_null(malloc(n));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(calloc(1, n));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(aligned_alloc(64, n));
    ck_assert_int_eq(errno, ENOMEM);
    void *p = static_buffer;
    ck_assert_int_eq(posix_memalign(&p, 64, n), ENOMEM);
    ck_assert_ptr_eq(p, static_buffer);
    errno = 0;
    ck_assert_ptr_null(valloc(n));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(pvalloc(n));
    ck_assert_int_eq(errno, ENOMEM);
  }
  /* the heap still works afterwards */
  void *q = malloc(64);
  ck_assert_ptr_nonnull(q);
  free(q);
}
END_TEST

START_TEST(calloc_checks_overflow) {
  errno = 0;
  ck_assert_ptr_null(calloc(wl_opaque(SIZE_MAX / 2), 3));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
#if SIZE_MAX > UINT32_MAX
  ck_assert_ptr_null(calloc(wl_opaque((size_t)1 << 33), (size_t)1 << 33));
#else
  ck_assert_ptr_null(calloc(wl_opaque((size_t)1 << 17), (size_t)1 << 17)); /* 2^34 overflows 32 bits */
#endif
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(reallocarray(NULL, wl_opaque(SIZE_MAX / 2), 3));
  ck_assert_int_eq(errno, ENOMEM);
  int *a = reallocarray(NULL, 100, sizeof(int));
  ck_assert_ptr_nonnull(a);
  for (int i = 0; i < 100; i++) a[i] = i;
  a = reallocarray(a, 1000, sizeof(int));
  for (int i = 0; i < 100; i++) ck_assert_int_eq(a[i], i);
  free(a);
  void *z = calloc(0, 0);
  ck_assert_ptr_nonnull(z);
  free(z);
}
END_TEST

/* calloc must zero recycled memory of every size class and kind. */
START_TEST(calloc_zeroes_recycled_memory) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = boundary_sizes[i];
    for (int round = 0; round < 3; round++) {
      void *dirty[8];
      for (int k = 0; k < 8; k++) {
        dirty[k] = malloc(n);
        memset(dirty[k], 0x5a, malloc_usable_size(dirty[k]));
      }
      for (int k = 0; k < 8; k++) free(dirty[k]);
      unsigned char *z = calloc(1, n);
      ck_assert_ptr_nonnull(z);
      size_t nz = wl_test_zero(z, n);
      ck_assert_msg(nz == n, "calloc(%zu): byte %zu is %d", n, nz, nz < n ? z[nz] : 0);
      free(z);
    }
  }
}
END_TEST

START_TEST(realloc_follows_glibc) {
  void *p = realloc(NULL, 40); /* realloc(NULL) is malloc */
  ck_assert_ptr_nonnull(p);
  ck_assert(walloc_owns(p));
  errno = 0;
  ck_assert_ptr_null(realloc(p, 0)); /* realloc(p, 0) frees and returns NULL */
  ck_assert_int_eq(errno, 0);
  p = malloc(100);
  wl_test_fill(p, 100, 7);
  errno = 0;
  ck_assert_ptr_null(realloc(p, wl_opaque(SIZE_MAX))); /* fails with ENOMEM, p untouched */
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_uint_eq(wl_test_check(p, 100, 7), 100);
  errno = 0;
  ck_assert_ptr_null(realloc(p, wl_opaque((size_t)PTRDIFF_MAX)));
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_uint_eq(wl_test_check(p, 100, 7), 100);
  free(p);
}
END_TEST

/* Grow through every kind of block and shrink back; contents survive. */
START_TEST(realloc_chains_keep_contents) {
  unsigned char *p = NULL;
  size_t have = 0;
  for (size_t i = 1; i < NSIZES; i++) {
    size_t n = boundary_sizes[i];
    p = realloc(p, n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(wl_test_check(p, have, 5), have);
    wl_test_fill(p, n, 5);
    have = n;
  }
  for (size_t i = NSIZES - 1; i > 0; i--) {
    size_t n = boundary_sizes[i];
    p = realloc(p, n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(wl_test_check(p, n, 5), n);
  }
  free(p);
}
END_TEST

START_TEST(realloc_in_place) {
  /* small: shrinking a little or growing within the block keeps the pointer */
  char *s = malloc(100);
  size_t usable = malloc_usable_size(s);
  ck_assert_ptr_eq(realloc(s, usable), s);
  ck_assert_ptr_eq(realloc(s, 90), s);
  free(s);
  /* large: the span right after a fresh large block is free, so it grows there */
  char *l = malloc(200 * KiB);
  wl_test_fill(l, 200 * KiB, 3);
  char *l2 = realloc(l, 600 * KiB);
  ck_assert_ptr_eq(l2, l);
  ck_assert_uint_eq(wl_test_check(l2, 200 * KiB, 3), 200 * KiB);
  char *l3 = realloc(l2, 300 * KiB); /* and shrinks in place */
  ck_assert_ptr_eq(l3, l2);
  ck_assert_uint_ge(malloc_usable_size(l3), 300 * KiB);
  ck_assert_uint_lt(malloc_usable_size(l3), 600 * KiB);
  free(l3);
  /* huge: grows without copying into a remapped range; contents survive */
  char *h = malloc(8 * MiB);
  wl_test_fill(h, 8 * MiB, 9);
  char *h2 = realloc(h, 64 * MiB);
  ck_assert_ptr_nonnull(h2);
  ck_assert_uint_eq(wl_test_check(h2, 8 * MiB, 9), 8 * MiB);
  memset(h2 + 8 * MiB, 1, 56 * MiB);
  char *h3 = realloc(h2, 60 * MiB);
  ck_assert_ptr_eq(h3, h2); /* shrinking a little keeps it */
  char *h4 = realloc(h3, 10 * MiB);
  ck_assert_ptr_nonnull(h4);
  ck_assert_uint_eq(wl_test_check(h4, 8 * MiB, 9), 8 * MiB);
  free(h4);
}
END_TEST

START_TEST(free_memory_goes_back_to_the_os) {
  WL_WASM_SKIP("wasm memory never shrinks: walloc neither purges nor releases there");
  enum { N = 2048 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(48 * KiB); /* 96 MiB of medium blocks */
    memset(blocks[i], 1, 48 * KiB);
  }
  walloc_heap_stats peak = wl_test_stats();
  for (int i = 0; i < N; i++) free(blocks[i]);
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL); /* longer than the default 10 ms purge delay */
  walloc_collect(false); /* only what is due */
  walloc_heap_stats after = wl_test_stats();
  ck_assert_uint_ge(after.purged_bytes + after.released_bytes,
                    peak.purged_bytes + peak.released_bytes + 64 * MiB);
  ck_assert_msg(after.rss_bytes + 64 * MiB < peak.rss_bytes, "RSS %zu after, %zu at the peak", after.rss_bytes,
                peak.rss_bytes);
  ck_assert_uint_le(after.live_bytes, peak.live_bytes - 90 * MiB);
}
END_TEST

START_TEST(repeated_large_blocks_reuse_memory) {
  WL_WASM_SKIP("no large-block cache on wasm: released ranges go back to the memory layer's free list");
  walloc_heap_stats before = wl_test_stats();
  for (int i = 0; i < 200; i++) {
    void *p = malloc(24 * MiB);
    ck_assert_ptr_nonnull(p);
    ((char *)p)[i * 4096] = 1;
    free(p);
  }
  walloc_heap_stats after = wl_test_stats();
  /* almost every one came from the cache rather than the kernel */
  ck_assert_uint_ge(after.huge_cache_hits - before.huge_cache_hits, 150);
  ck_assert_uint_le(after.peak_mapped_bytes, before.mapped_bytes + 64 * MiB);
}
END_TEST

/* A block up to 32 KiB comes from a page of its size class (at most 1/8
   over the request), not a span of whole 64 KiB slices: a reused span is
   resident in full, so a program holding many 17 KiB blocks kept a 64 KiB
   slice for each. And the slices such a page holds are shared by its
   blocks: 64 blocks of 17 KiB take 18 slices, not 64. */
START_TEST(blocks_to_32_kib_are_class_sized) {
  for (size_t n = 8 * KiB + 1; n <= 32 * KiB; n += 1009) {
    void *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(malloc_usable_size(p) <= n + n / 8, "%zu bytes asked, %zu usable", n, malloc_usable_size(p));
    free(p);
  }
  walloc_collect(true);
  walloc_heap_stats before = wl_test_stats();
  void *p[64];
  for (int i = 0; i < 64; i++) {
    p[i] = malloc(17 * KiB);
    memset(p[i], i, 17 * KiB);
  }
  walloc_heap_stats after = wl_test_stats();
  ck_assert_uint_le(after.live_bytes - before.live_bytes, 64 * 18 * KiB);
  ck_assert_uint_eq(after.large_allocations, before.large_allocations);
  for (int i = 0; i < 64; i++) free(p[i]);
}
END_TEST

START_TEST(introspection_calls_answer) {
  void *p = malloc(1000);
#if defined(__GLIBC__) /* mallinfo2 and M_ARENA_MAX are glibc's */
  struct mallinfo2 mi = mallinfo2();
  ck_assert_uint_ge(mi.uordblks, 1000);
  ck_assert_uint_ge(mi.arena, mi.uordblks);
  ck_assert_int_eq(mallopt(M_ARENA_MAX, 1), 1);
#endif
  struct mallinfo m1 = mallinfo();
  ck_assert_int_ge(m1.uordblks, 1000);
  free(p);
  ck_assert_int_ge(malloc_trim(0), 0);
  walloc_heap_stats s = wl_test_stats();
  ck_assert_uint_eq(s.version, WALLOC_HEAP_STATS_VERSION);
  ck_assert_uint_ge(s.allocations, s.frees);
  ck_assert_uint_ge(s.peak_bytes, s.live_bytes);
  ck_assert_str_eq(walloc_version(), WALLOC_VERSION_STRING);
  /* an older, shorter stats struct is filled only as far as it goes */
  struct { size_t size; uint32_t version; uint64_t allocations; uint64_t guard; } small;
  small.size = offsetof(walloc_heap_stats, frees);
  small.guard = 0x1234;
  walloc_heap_stats_get((walloc_heap_stats *)&small);
  ck_assert_uint_eq(small.guard, 0x1234);
  ck_assert_uint_gt(small.allocations, 0);
}
END_TEST

START_TEST(stats_print_writes_a_table) {
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  void *p = malloc(77);
  walloc_stats_print(fileno(f));
  free(p);
  rewind(f);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  ck_assert_ptr_nonnull(strstr(buf, "walloc " WALLOC_VERSION_STRING " statistics"));
  ck_assert_ptr_nonnull(strstr(buf, "allocations"));
  ck_assert_ptr_nonnull(strstr(buf, "peak RSS"));
  ck_assert_ptr_nonnull(strstr(buf, "size class"));
}
END_TEST

/* The size-class table: a class's peak is never below its live blocks,
   and never 0 once it served allocations, even when every block was freed
   before the page's statistics were next synced. */
START_TEST(stats_peak_is_never_below_live) {
  for (int i = 0; i < 5000; i++) { /* one block at a time: the page is empty at every sync */
    void *p = malloc(12000);
    ck_assert_ptr_nonnull(p);
    free(p);
  }
  enum { HELD = 300 };
  void *held[HELD];
  for (int i = 0; i < HELD; i++) held[i] = malloc(700);
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  walloc_stats_print(fileno(f));
  for (int i = 0; i < HELD; i++) free(held[i]);
  rewind(f);
  static char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  char *line = strstr(buf, "size class");
  ck_assert_ptr_nonnull(line);
  int rows = 0;
  while ((line = strchr(line, '\n')) != NULL && strncmp(++line, "  large", 7) != 0) {
    double size;
    char unit[8];
    unsigned long long allocs, live, peak;
    if (sscanf(line, "%lf %7s %llu %llu %llu", &size, unit, &allocs, &live, &peak) != 5) break;
    rows++;
    ck_assert_msg(peak >= live, "class %.1f %s: peak %llu below live %llu", size, unit, peak, live);
    ck_assert_msg(allocs == 0 || peak > 0, "class %.1f %s: %llu allocations, peak 0", size, unit, allocs);
  }
  ck_assert_int_ge(rows, 2);
}
END_TEST

/* Random sizes in random order: contents never bleed between blocks. */
START_TEST(random_workout) {
  enum { SLOTS = 4096, STEPS = 200000 };
  static unsigned char *slot[SLOTS];
  static size_t len[SLOTS];
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  for (int step = 0; step < STEPS; step++) {
    size_t i = wl_test_rand(&rng) % SLOTS;
    if (slot[i] != NULL) {
      ck_assert_uint_eq(wl_test_check(slot[i], len[i], (uint32_t)i), len[i]);
      if (step % 3 == 0) {
        size_t n = wl_test_rand(&rng) % 3000;
        unsigned char *q = realloc(slot[i], n);
        if (n == 0) {
          slot[i] = NULL;
          continue;
        }
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(wl_test_check(q, n < len[i] ? n : len[i], (uint32_t)i), n < len[i] ? n : len[i]);
        slot[i] = q;
        len[i] = n;
        wl_test_fill(q, n, (uint32_t)i);
        continue;
      }
      free(slot[i]);
      slot[i] = NULL;
    } else {
      uint64_t r = wl_test_rand(&rng);
      size_t n = (r & 15) == 0 ? (size_t)(r >> 8) % (300 * KiB) : (size_t)(r >> 8) % 600;
      slot[i] = malloc(n);
      ck_assert_ptr_nonnull(slot[i]);
      len[i] = n;
      wl_test_fill(slot[i], n, (uint32_t)i);
    }
  }
  for (int i = 0; i < SLOTS; i++) {
    if (slot[i] != NULL) ck_assert_uint_eq(wl_test_check(slot[i], len[i], (uint32_t)i), len[i]);
    free(slot[i]);
  }
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("malloc");
  WL_TCASE(s, "basics", 30, malloc_is_served_by_walloc, every_size_is_usable_and_aligned,
           malloc_zero_gives_distinct_blocks, aligned_entry_points_align, aligned_zero_bytes_get_a_block_of_their_own,
           introspection_calls_answer, stats_print_writes_a_table,
           stats_peak_is_never_below_live);
  WL_TCASE(s, "errors", 30, bad_alignments_are_einval, impossible_sizes_are_enomem, calloc_checks_overflow,
           realloc_follows_glibc);
  WL_TCASE(s, "contents", 60, calloc_zeroes_recycled_memory, realloc_chains_keep_contents, realloc_in_place,
           random_workout);
  WL_TCASE(s, "memory", 60, free_memory_goes_back_to_the_os, repeated_large_blocks_reuse_memory,
           blocks_to_32_kib_are_class_sized);
  return s;
}
