/* test_stats.c: walloc_stats_json's contract: the length asked with len 0
 * (buf NULL), the whole document in a buffer that fits, and a buffer too
 * small getting a NUL-terminated prefix with the same return value, as
 * snprintf does; the document's opening; the figures of the caller's
 * scopes and frames, and of pools and rings, after using each.
 * What the document holds as a whole, and the exit reports, are checked by
 * tests/programs/stats_check.py on the output of tests/programs/stats_prog.c.
 *
 * Each case runs in a fresh forked process (Check; one node process on wasm).
 */
#include "test_common.h"

#include <string.h>

static char doc[1 << 16];

/* The document's length twice in a row, until both agree: the RSS figures
   may change in between (a page touched), and with them a number's width. */
static size_t steady_length(void) {
  size_t n = walloc_stats_json(NULL, 0);
  for (int i = 0; i < 8; i++) {
    size_t again = walloc_stats_json(doc, sizeof doc);
    if (again == n) return n;
    n = again;
  }
  ck_abort_msg("the document's length never settled");
  return 0;
}

START_TEST(length_then_whole_document) {
  void *p = walloc_malloc(100); /* walloc's even where malloc is not (-Doverride=false) */
  size_t n = steady_length();
  ck_assert_uint_gt(n, 100);
  ck_assert_uint_lt(n, sizeof doc);
  ck_assert_uint_eq(strlen(doc), n);
  ck_assert_msg(strncmp(doc, "{\"version\":1,\"walloc\":\"" WALLOC_VERSION_STRING "\",\"pid\":", 36) == 0,
                "the document opens with %.60s", doc);
  ck_assert_int_eq(doc[n - 1], '}');
  ck_assert_ptr_nonnull(strstr(doc, "\"size_classes\":[{\"block_size\":"));
  walloc_free(p);
}
END_TEST

START_TEST(small_buffers_get_a_terminated_prefix) {
  static char whole[1 << 16], most[1 << 16];
  char small[24], one[4], none[4];
  /* every buffer touched first: a page faulted in between two calls would
     change the RSS figures, and with them the length; and no check until
     the calls are done (Check's bookkeeping allocates, which changes the
     figures too) */
  memset(whole, 'x', sizeof whole);
  memset(most, 'x', sizeof most);
  memset(small, 'x', sizeof small);
  memset(one, 'x', sizeof one);
  memset(none, 'x', sizeof none);
  size_t n = 0, r_small = 1, r_one = 1, r_most = 1, r_none = 1;
  for (int i = 0; i < 8 && !(r_small == n && r_one == n && r_most == n && r_none == n); i++) {
    n = walloc_stats_json(whole, sizeof whole);
    r_small = walloc_stats_json(small, 10);
    r_one = walloc_stats_json(one, 1);
    r_most = walloc_stats_json(most, n); /* one byte short: the last character goes */
    r_none = walloc_stats_json(none, 0); /* len 0 writes nothing, even with a buffer */
  }
  ck_assert_uint_eq(strlen(whole), n);
  ck_assert_uint_eq(r_small, n);
  ck_assert_int_eq(small[9], 0);
  ck_assert_int_eq(strncmp(small, whole, 9), 0);
  ck_assert_int_eq(small[10], 'x'); /* nothing past len */
  ck_assert_uint_eq(r_one, n);
  ck_assert_int_eq(one[0], 0);
  ck_assert_int_eq(one[1], 'x');
  ck_assert_uint_eq(r_most, n);
  ck_assert_uint_eq(strlen(most), n - 1);
  ck_assert_int_eq(strncmp(most, whole, 36), 0); /* the figures after the pid may have moved */
  ck_assert_int_eq(most[n], 'x');
  ck_assert_uint_eq(r_none, n);
  ck_assert_int_eq(none[0], 'x');
}
END_TEST

/* "key":value inside the object "section":{...} of doc. */
static unsigned long long field(const char *section, const char *key) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\":{", section);
  const char *s = strstr(doc, pat);
  ck_assert_msg(s != NULL, "no section %s in %s", section, doc);
  s += strlen(pat);
  const char *end = strchr(s, '}');
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *k = strstr(s, pat);
  ck_assert_msg(k != NULL && k < end, "no %s in section %s", key, section);
  return strtoull(k + strlen(pat), NULL, 10);
}

START_TEST(lifetimes_are_counted) {
  wl_test_wasm_tiers((size_t)64 << 20);
  walloc_scope *scope = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  ck_assert_ptr_nonnull(scope);
  ck_assert(walloc_scope_allocate(scope, 200) != WALLOC_NULL_HANDLE);
  walloc_frame_begin();
  ck_assert_ptr_nonnull(walloc_frame_alloc(300, 16));
  walloc_pool *pool = walloc_pool_create(48, 16);
  ck_assert_ptr_nonnull(pool);
  void *obj = walloc_pool_alloc(pool);
  ck_assert_ptr_nonnull(obj);
  walloc_ring *ring = walloc_ring_create(WALLOC_TIER_SCENE, 4096);
  ck_assert_ptr_nonnull(ring);
  steady_length();
  ck_assert_uint_eq(field("scopes", "entered"), 1);
  ck_assert_uint_eq(field("scopes", "open"), 1);
  ck_assert_uint_ge(field("scopes", "used_bytes"), 200);
  ck_assert_uint_eq(field("frames", "allocations"), 1);
  ck_assert_uint_ge(field("frames", "bytes"), 300);
  ck_assert_uint_eq(field("pools", "pools"), 1);
  ck_assert_uint_ge(field("pools", "objects"), 1);
  ck_assert_uint_eq(field("rings", "live"), 1);
  ck_assert_uint_ge(field("rings", "bytes"), 4096);
  ck_assert_uint_eq(field("tiers", "set_up"), 1);
  walloc_ring_destroy(ring);
  walloc_pool_free(pool, obj);
  walloc_pool_destroy(pool);
  walloc_frame_end();
  walloc_scope_leave(scope);
  steady_length();
  ck_assert_uint_eq(field("scopes", "open"), 0);
  ck_assert_uint_eq(field("pools", "pools"), 0);
  ck_assert_uint_eq(field("rings", "live"), 0);
  ck_assert_uint_eq(field("rings", "created"), 1);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("stats");
  WL_TCASE(s, "json", 60, length_then_whole_document, small_buffers_get_a_terminated_prefix, lifetimes_are_counted);
  return s;
}
