/* test_misuse.c: misuse of free and realloc is caught, in every build.
 *
 * Two test cases, run as two tests by tests/meson.build:
 *  - "abort" (misuse): each misuse runs in a forked child with stderr
 *    captured; the child must die of SIGABRT within a few seconds, after
 *    printing one report that names the misuse. A child that hangs (the
 *    old cross-thread double free spun forever) is killed and fails.
 *  - "report" (misuse-report, WALLOC_MISUSE_ABORT=0): each misuse is
 *    reported once and ignored; afterwards every live block keeps its bytes,
 *    new blocks never overlap live ones, and the counters of
 *    walloc_heap_stats count it.
 * Also walloc_owns and walloc_usable_size: true (non-zero) only at the start
 * of a live block.
 */
#include "test_common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static char static_buffer[64];

/* ------------------------------------------------------------------------
   The abort case: run fn in a child, expect SIGABRT and `want` on stderr
   ------------------------------------------------------------------------ */
static void expect_abort(void (*fn)(void), const char *want) {
  const char *opt = getenv("WALLOC_MISUSE_ABORT");
  ck_assert_msg(opt == NULL || strcmp(opt, "0") != 0, "the abort case runs without WALLOC_MISUSE_ABORT=0");
  char path[] = "/tmp/walloc-misuse-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fd, 2);
    fn();
    _exit(0); /* reached only if nothing aborted */
  }
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 2000 && done == 0; i++) { /* 20 s */
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ck_abort_msg("the child hung (killed after 20 s) instead of aborting on: %s", want);
  }
  char buf[4096];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                "expected SIGABRT for '%s', got status %#x; stderr: %s", want, status, buf);
  ck_assert_msg(strstr(buf, want) != NULL, "stderr lacks '%s': %s", want, buf);
  ck_assert_msg(strstr(buf, "aborting") != NULL, "stderr lacks 'aborting': %s", buf);
}

static void double_free_small(void) {
  void *p = walloc_malloc(64);
  walloc_free(p);
  walloc_free(p);
}
static void double_free_sizes(void) { /* every class, the first block and a later one */
  for (size_t size = 16; size <= 16 * KiB; size += size < 1024 ? 16 : 512) {
    void *a = walloc_malloc(size), *b = walloc_malloc(size);
    walloc_free(a);
    walloc_free(b);
  }
  void *p = walloc_malloc(5000);
  walloc_free(p);
  walloc_free(p);
}
static void double_free_large(void) {
  void *keep = walloc_malloc(300 * KiB);
  void *p = walloc_malloc(300 * KiB);
  walloc_free(p);
  walloc_free(p);
  walloc_free(keep);
}
static void double_free_huge(void) {
  void *p = walloc_malloc(8 * MiB);
  walloc_free(p);
  walloc_free(p);
}
static void double_free_huge_unmapped(void) { /* too big for the huge cache: unmapped at once */
  void *p = walloc_malloc(80 * MiB);
  walloc_free(p);
  walloc_free(p);
}
static void realloc_freed(void) {
  void *p = walloc_malloc(64);
  walloc_free(p);
  void *q = walloc_realloc(p, 100);
  (void)q;
}
static void realloc_freed_large(void) {
  void *keep = walloc_malloc(300 * KiB);
  void *p = walloc_malloc(300 * KiB);
  walloc_free(p);
  void *q = walloc_realloc(p, 400 * KiB);
  (void)q;
  walloc_free(keep);
}
static void interior_small(void) {
  char *p = walloc_malloc(256);
  walloc_free(p + 16);
}
static void interior_unaligned(void) {
  char *p = walloc_malloc(48);
  walloc_free(p + 5);
}
static void interior_large(void) {
  char *p = walloc_malloc(300 * KiB);
  walloc_free(p + 64 * KiB);
}
static void interior_huge(void) {
  char *p = walloc_malloc(8 * MiB);
  walloc_free(p + 4096);
}
/* A block-aligned pointer past the blocks a page has handed out so far (a
   class of 7 KiB: one block per step, nine to a page; fresh in this process). */
static void never_handed_out(void) {
  char *p = walloc_malloc(7000);
  walloc_free(p + walloc_usable_size(p) * 4);
}
static void into_metadata(void) { /* the segment's header slice */
  char *p = walloc_malloc(64);
  walloc_free((void *)((uintptr_t)p & ~(uintptr_t)(4 * MiB - 1)));
}
static void foreign_static(void) { walloc_free(static_buffer); }
static void foreign_kernel_half(void) { walloc_free((void *)(uintptr_t)0xffff800000001000ull); }

static void *free_it(void *p) {
  walloc_free(p);
  return NULL;
}
/* Another thread frees the block twice; the owner then allocates, which
   used to spin forever on the cycle in the page's cross-thread list. */
static void double_free_cross_thread(void) {
  void *p = walloc_malloc(64);
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
  for (int i = 0; i < 100000; i++) walloc_free(walloc_malloc(64));
}
/* The owner frees, then another thread frees again. */
static void double_free_owner_then_other(void) {
  void *p = walloc_malloc(64);
  walloc_free(p);
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
}
/* Another thread frees, then the owner frees again. */
static void double_free_other_then_owner(void) {
  void *p = walloc_malloc(64);
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
  walloc_free(p);
}

#define ABORTS(name, fn, want) \
  START_TEST(name) { expect_abort(fn, want); } END_TEST

ABORTS(abort_double_free_small, double_free_small, "free(): double free of ")
ABORTS(abort_double_free_every_class, double_free_sizes, "free(): double free of ")
ABORTS(abort_double_free_large, double_free_large, "free(): double free of ")
ABORTS(abort_double_free_huge, double_free_huge, "free(): double free of ")
ABORTS(abort_double_free_huge_unmapped, double_free_huge_unmapped, "free(): pointer that is not walloc's memory")
ABORTS(abort_realloc_freed, realloc_freed, "realloc(): double free of ")
ABORTS(abort_realloc_freed_large, realloc_freed_large, "realloc(): double free of ")
ABORTS(abort_interior_small, interior_small, "free(): pointer into the middle of a block")
ABORTS(abort_interior_unaligned, interior_unaligned, "free(): pointer into the middle of a block")
ABORTS(abort_interior_large, interior_large, "free(): pointer into the middle of a block")
ABORTS(abort_interior_huge, interior_huge, "free(): pointer into the middle of a block")
ABORTS(abort_never_handed_out, never_handed_out, "free(): pointer walloc never handed out")
ABORTS(abort_into_metadata, into_metadata, "free(): pointer walloc never handed out")
ABORTS(abort_foreign_static, foreign_static, "free(): pointer that is not walloc's memory")
ABORTS(abort_foreign_kernel_half, foreign_kernel_half, "free(): pointer that is not walloc's memory")
ABORTS(abort_double_free_cross_thread, double_free_cross_thread, "free(): double free of ")
ABORTS(abort_double_free_owner_then_other, double_free_owner_then_other, "free(): double free of ")
ABORTS(abort_double_free_other_then_owner, double_free_other_then_owner, "free(): double free of ")

/* ------------------------------------------------------------------------
   The report case (WALLOC_MISUSE_ABORT=0)
   ------------------------------------------------------------------------ */
static void require_report_mode(void) {
  const char *opt = getenv("WALLOC_MISUSE_ABORT");
  ck_assert_msg(opt != NULL && strcmp(opt, "0") == 0,
                "the report case runs with WALLOC_MISUSE_ABORT=0 (meson test misuse-report)");
}

/* Runs fn with stderr captured; returns how many lines it printed holding `want`. */
static char captured[1 << 20];
static int report_lines(void (*fn)(void), const char *want) {
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  int saved = dup(2);
  dup2(fileno(f), 2);
  fn();
  dup2(saved, 2);
  close(saved);
  rewind(f);
  size_t n = fread(captured, 1, sizeof captured - 1, f);
  captured[n] = 0;
  fclose(f);
  int lines = 0;
  for (char *s = captured; (s = strstr(s, want)) != NULL; s++) lines++;
  return lines;
}

#define LIVE 64
static char *live[LIVE];
static size_t live_size[LIVE];

static void live_fill(void) {
  for (int i = 0; i < LIVE; i++) {
    live_size[i] = i < 48 ? 16 + (size_t)(i % 12) * 16 : i < 60 ? 5000 + (size_t)i : 300 * KiB;
    live[i] = walloc_malloc(live_size[i]);
    ck_assert_ptr_nonnull(live[i]);
    wl_test_fill(live[i], live_size[i], (uint32_t)i);
  }
}
/* Every live block still holds its bytes, and a few hundred new blocks of
   their sizes never overlap them (nor each other). */
static void live_check_and_free(void) {
  for (int i = 0; i < LIVE; i++) {
    ck_assert_msg(wl_test_check(live[i], live_size[i], (uint32_t)i) == live_size[i], "live block %d changed", i);
  }
  enum { NEW = 512 };
  static char *fresh[NEW];
  static size_t fresh_size[NEW];
  for (int k = 0; k < NEW; k++) {
    fresh_size[k] = live_size[k % LIVE];
    fresh[k] = walloc_malloc(fresh_size[k]);
    ck_assert_ptr_nonnull(fresh[k]);
    for (int i = 0; i < LIVE; i++) {
      ck_assert_msg(fresh[k] + fresh_size[k] <= live[i] || live[i] + live_size[i] <= fresh[k],
                    "a new block overlaps live block %d", i);
    }
    for (int j = 0; j < k; j++) {
      ck_assert_msg(fresh[k] + fresh_size[k] <= fresh[j] || fresh[j] + fresh_size[j] <= fresh[k],
                    "two new blocks overlap");
    }
  }
  for (int i = 0; i < LIVE; i++) {
    ck_assert_msg(wl_test_check(live[i], live_size[i], (uint32_t)i) == live_size[i], "live block %d changed", i);
    walloc_free(live[i]);
  }
  for (int k = 0; k < NEW; k++) walloc_free(fresh[k]);
}

/* The attack: free twice, malloc, write an address into the block,
   malloc again: no malloc may return the written address, nor one block
   twice. */
static char *again;
static void free_again(void) { walloc_free(again); }
START_TEST(report_double_free_does_not_poison) {
  require_report_mode();
  live_fill();
  walloc_heap_stats before = wl_test_stats();
  again = walloc_malloc(64);
  walloc_free(again);
  ck_assert_int_eq(report_lines(free_again, "free(): double free of "), 1);
  ck_assert(strstr(captured, "; ignored") != NULL);
  char *q1 = walloc_malloc(64);
  *(char **)q1 = static_buffer; /* the program's own (live) block */
  char *q2 = walloc_malloc(64);
  char *q3 = walloc_malloc(64);
  ck_assert_ptr_ne(q2, static_buffer);
  ck_assert_ptr_ne(q3, static_buffer);
  ck_assert_ptr_ne(q1, q2);
  ck_assert_ptr_ne(q2, q3);
  ck_assert_ptr_ne(q1, q3);
  ck_assert(walloc_owns(q2) && walloc_owns(q3));
  walloc_free(q1);
  walloc_free(q2);
  walloc_free(q3);
  ck_assert_uint_eq(wl_test_stats().double_frees - before.double_frees, 1);
  live_check_and_free();
}
END_TEST

static void realloc_of_freed(void) {
  void *p = walloc_malloc(64);
  walloc_free(p);
  errno = 0;
  ck_assert_ptr_null(walloc_realloc(p, 200));
  ck_assert_int_eq(errno, EINVAL);
}
static void interior_frees(void) {
  char *s = walloc_malloc(256), *l = walloc_malloc(300 * KiB), *h = walloc_malloc(8 * MiB);
  memset(s, 1, 256);
  memset(l, 2, 300 * KiB);
  memset(h, 3, 4096 * 2);
  walloc_free(s + 16);
  walloc_free(s + 5);
  walloc_free(l + 64 * KiB);
  walloc_free(h + 4096);
  char *f = walloc_malloc(7000); /* as never_handed_out */
  walloc_free(f + walloc_usable_size(f) * 4);
  walloc_free(f);
  for (size_t i = 0; i < 256; i++) ck_assert_int_eq(s[i], 1);
  for (size_t i = 0; i < 300 * KiB; i += 4096) ck_assert_int_eq(l[i], 2);
  ck_assert_int_eq(h[4096], 3);
  walloc_free(s);
  walloc_free(l);
  walloc_free(h);
}
static void foreign_frees(void) {
  char stack_buffer[64];
  walloc_free(static_buffer);
  walloc_free(stack_buffer);
  walloc_free(static_buffer + 3);
  walloc_free((void *)(uintptr_t)0x10);
  walloc_free((void *)(uintptr_t)0xffff800000001000ull);
  errno = 0;
  ck_assert_ptr_null(walloc_realloc(static_buffer, 10));
  ck_assert_int_eq(errno, EINVAL);
}

START_TEST(report_realloc_of_freed_block) {
  require_report_mode();
  live_fill();
  ck_assert_int_eq(report_lines(realloc_of_freed, "realloc(): double free of "), 1);
  live_check_and_free();
}
END_TEST

START_TEST(report_interior_and_never_handed_out) {
  require_report_mode();
  live_fill();
  walloc_heap_stats before = wl_test_stats();
  ck_assert_int_eq(report_lines(interior_frees, "free(): pointer into the middle of a block"), 4);
  ck_assert(strstr(captured, "free(): pointer walloc never handed out") != NULL);
  walloc_heap_stats after = wl_test_stats();
  ck_assert_uint_eq(after.invalid_frees - before.invalid_frees, 5);
  ck_assert_uint_eq(after.double_frees, before.double_frees);
  live_check_and_free();
}
END_TEST

START_TEST(report_foreign_pointers) {
  require_report_mode();
  live_fill();
  walloc_heap_stats before = wl_test_stats();
  ck_assert_int_eq(report_lines(foreign_frees, "pointer that is not walloc's memory"), 6);
  walloc_heap_stats after = wl_test_stats();
  ck_assert_uint_eq(after.foreign_frees - before.foreign_frees, 5); /* frees; the realloc is not one */
  ck_assert_uint_eq(after.invalid_frees - before.invalid_frees, 6);
  walloc_free(NULL); /* not misuse: nothing at all */
  ck_assert_uint_eq(wl_test_stats().invalid_frees, after.invalid_frees);
  live_check_and_free();
}
END_TEST

static void *free_twice(void *p) {
  walloc_free(p);
  walloc_free(p);
  return NULL;
}
START_TEST(report_cross_thread_double_free) {
  require_report_mode();
  live_fill();
  walloc_heap_stats before = wl_test_stats();
  for (int round = 0; round < 50; round++) {
    void *p = walloc_malloc(64);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, free_twice, p), 0);
    pthread_join(t, NULL);
    void *q = walloc_malloc(64); /* the owner collects: no cycle, no hang */
    walloc_free(q);
  }
  walloc_heap_stats after = wl_test_stats();
  ck_assert_uint_eq(after.double_frees - before.double_frees, 50);
  live_check_and_free();
}
END_TEST

/* Two threads free one block at the same instant: exactly one of them
   frees it, the other is told (the tag is exchanged atomically). */
static pthread_barrier_t race_barrier;
static void *volatile race_block;
static void *race_free(void *arg) {
  (void)arg;
  for (int round = 0; round < 2000; round++) {
    pthread_barrier_wait(&race_barrier); /* main has put a block in race_block */
    pthread_barrier_wait(&race_barrier); /* go */
    walloc_free(race_block);
    pthread_barrier_wait(&race_barrier); /* done */
  }
  return NULL;
}
static void racing_frees(void) {
  pthread_t t[2];
  pthread_barrier_init(&race_barrier, NULL, 3);
  for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, race_free, NULL), 0);
  for (int round = 0; round < 2000; round++) {
    race_block = walloc_malloc(64);
    pthread_barrier_wait(&race_barrier);
    pthread_barrier_wait(&race_barrier);
    pthread_barrier_wait(&race_barrier);
    walloc_free(walloc_malloc(64)); /* the owner collects the block back */
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&race_barrier);
}
START_TEST(report_racing_double_free) {
  require_report_mode();
  live_fill();
  walloc_heap_stats before = wl_test_stats();
  ck_assert_int_eq(report_lines(racing_frees, "free(): double free of "), 2000);
  ck_assert_uint_eq(wl_test_stats().double_frees - before.double_frees, 2000);
  live_check_and_free();
}
END_TEST

/* ------------------------------------------------------------------------
   walloc_owns and walloc_usable_size: live block starts only (any mode)
   ------------------------------------------------------------------------ */
START_TEST(owns_only_live_block_starts) {
  char *s = walloc_malloc(48), *l = walloc_malloc(300 * KiB), *h = walloc_malloc(8 * MiB);
  char *keep = walloc_malloc(300 * KiB);
  ck_assert(walloc_owns(s) && walloc_owns(l) && walloc_owns(h));
  ck_assert_uint_ge(walloc_usable_size(s), 48);
  ck_assert_uint_ge(walloc_usable_size(l), 300 * KiB);
  ck_assert_uint_ge(walloc_usable_size(h), 8 * MiB);
  ck_assert(!walloc_owns(s + 16) && !walloc_owns(s + 1) && !walloc_owns(l + 4096) && !walloc_owns(h + 4096));
  ck_assert_uint_eq(walloc_usable_size(s + 16), 0);
  ck_assert_uint_eq(walloc_usable_size(l + 4096), 0);
  ck_assert_uint_eq(walloc_usable_size(h + 4096), 0);
  ck_assert(!walloc_owns(h + 8 * MiB + 64 * KiB)); /* past the huge block, inside its 4 MiB granule */
  char *f = walloc_malloc(7000);
  ck_assert(walloc_owns(f) && !walloc_owns(f + walloc_usable_size(f) * 4)); /* past the blocks handed out */
  walloc_free(f);
  ck_assert(!walloc_owns(static_buffer) && !walloc_owns(NULL));
  walloc_free(s);
  walloc_free(l);
  walloc_free(h);
  ck_assert(!walloc_owns(s) && !walloc_owns(l));
  ck_assert_uint_eq(walloc_usable_size(s), 0);
  ck_assert_uint_eq(walloc_usable_size(l), 0);
  walloc_free(keep);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("misuse");
  WL_TCASE(s, "abort", 120, abort_double_free_small, abort_double_free_every_class, abort_double_free_large,
           abort_double_free_huge, abort_double_free_huge_unmapped, abort_realloc_freed, abort_realloc_freed_large,
           abort_interior_small, abort_interior_unaligned, abort_interior_large, abort_interior_huge,
           abort_never_handed_out, abort_into_metadata, abort_foreign_static, abort_foreign_kernel_half,
           abort_double_free_cross_thread, abort_double_free_owner_then_other, abort_double_free_other_then_owner,
           owns_only_live_block_starts);
  WL_TCASE(s, "report", 60, report_double_free_does_not_poison, report_realloc_of_freed_block,
           report_interior_and_never_handed_out, report_foreign_pointers, report_cross_thread_double_free,
           report_racing_double_free, owns_only_live_block_starts);
  return s;
}
