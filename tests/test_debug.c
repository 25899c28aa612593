/* test_debug.c: what debug checks catch (built with -Ddebug_checks=true).
 *
 * A double free aborts with a message; each such case runs in its own forked
 * process and passes only if that process dies of SIGABRT. Interior and
 * foreign pointers are reported and ignored, never corrupting the heap.
 */
#include "test_common.h"

#include <signal.h>
#include <string.h>

START_TEST(double_free_small_aborts) {
  void *p = walloc_malloc(32);
  walloc_free(p);
  walloc_free(p);
}
END_TEST

START_TEST(double_free_large_aborts) {
  void *p = walloc_malloc(300 << 10);
  void *keep = walloc_malloc(300 << 10); /* keeps the segment alive */
  walloc_free(p);
  walloc_free(p);
  walloc_free(keep);
}
END_TEST

START_TEST(double_free_huge_aborts) {
  void *p = walloc_malloc(8 << 20);
  walloc_free(p);
  walloc_free(p);
}
END_TEST

START_TEST(interior_pointer_is_ignored) {
  char *p = walloc_malloc(256);
  memset(p, 7, 256);
  walloc_free(p + 16); /* reported, ignored */
  char *big = walloc_malloc(8 << 20);
  walloc_free(big + 4096);
  for (int i = 0; i < 256; i++) ck_assert_int_eq(p[i], 7);
  walloc_free(p);
  walloc_free(big);
  void *q = walloc_malloc(256);
  ck_assert_ptr_nonnull(q);
  walloc_free(q);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("debug");
  TCase *tc = tcase_create("death");
  tcase_add_test_raise_signal(tc, double_free_small_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, double_free_large_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, double_free_huge_aborts, SIGABRT);
  suite_add_tcase(s, tc);
  WL_TCASE(s, "reported", 30, interior_pointer_is_ignored);
  return s;
}
