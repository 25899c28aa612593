/* test_purge.c: the purge delay adapts (lib/heap/purge_delay.c), white-box
 * (linked with the core archive, so it can drive the policy's inputs).
 *
 * A purge is lost when the process needs fresh memory less than one delay
 * after it purged: the delay doubles, up to 8x WALLOC_PURGE_DELAY, and
 * halves after each calm second. The first test feeds the policy a timeline;
 * the second runs it through the heap: memory purged and then needed again
 * doubles the delay, and the next free memory then stays resident longer.
 */
#include "test_common.h"

#include <time.h>

#include "heap/heap.h"

#define KiB ((size_t)1 << 10)

static void sleep_ms(long ms) {
  if (ms <= 0) return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
  while (nanosleep(&ts, &ts) != 0) {}
}

START_TEST(test_delay_follows_lost_bets) {
  WL_WASM_SKIP("wasm memory never shrinks: walloc never purges there");
  long base = wl_option(WL_OPT_PURGE_DELAY);
  ck_assert_int_eq(base, 10); /* the default (the suite sets no WALLOC_PURGE_DELAY) */
  ck_assert_int_eq(wl_purge_delay(), base);
  int64_t t = wl_os_clock_ms();
  wl_purge_delay_refill(t); /* fresh memory with no purge before it: nothing lost */
  ck_assert_int_eq(wl_purge_delay(), base);

  /* purged, then fresh memory needed within the delay: lost, doubled; once */
  wl_purge_delay_purged(t);
  wl_purge_delay_refill(t + base - 1);
  ck_assert_int_eq(wl_purge_delay(), 2 * base);
  wl_purge_delay_refill(t + base);
  ck_assert_int_eq(wl_purge_delay(), 2 * base);

  /* needed again only a whole delay after the purge: the bet was won */
  t += 2 * base;
  wl_purge_delay_purged(t);
  wl_purge_delay_refill(t + 2 * base);
  ck_assert_int_eq(wl_purge_delay(), 2 * base);

  /* lost again and again: 40, 80, and no further */
  for (int k = 2; k <= 5; k++) {
    t += 100; /* less than a calm second since the last change: no halving */
    long delay = wl_purge_delay();
    wl_purge_delay_purged(t);
    wl_purge_delay_refill(t + delay - 1);
    ck_assert_int_eq(wl_purge_delay(), base << (k < 3 ? k : 3));
    t += delay - 1;
  }
  ck_assert_int_eq(wl_purge_delay(), 8 * base);

  /* calm: a purge a second after the last change halves it, one step per second */
  wl_purge_delay_purged(t + 999);
  ck_assert_int_eq(wl_purge_delay(), 8 * base);
  wl_purge_delay_purged(t + 1000);
  ck_assert_int_eq(wl_purge_delay(), 4 * base);
  wl_purge_delay_purged(t + 1500);
  ck_assert_int_eq(wl_purge_delay(), 4 * base);
  for (int k = 2; k <= 5; k++) wl_purge_delay_purged(t + 1000 * k);
  ck_assert_int_eq(wl_purge_delay(), base); /* never below the option */
}
END_TEST

enum { BLOCKS = 16 };
static void *blocks[BLOCKS];

static void fill(void) {
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = wl_malloc(256 * KiB); /* 4 MiB of large blocks */
    ck_assert_ptr_nonnull(blocks[i]);
    memset(blocks[i], 7, 256 * KiB);
  }
}

static void drain(void) {
  for (int i = 0; i < BLOCKS; i++) wl_free(blocks[i]);
}

/* Two purge rounds of `delay` pass (the first ages what is dirty, the second
   purges it), each ended by a collect of what is due. */
static void two_rounds(long delay) {
  for (int k = 0; k < 2; k++) {
    sleep_ms(2 * delay + 1);
    walloc_collect(false);
  }
}

START_TEST(test_heap_keeps_memory_longer_after_lost_bet) {
  WL_WASM_SKIP("wasm memory never shrinks: walloc never purges there");
  /* 100 ms, so that the frees (junk-filled in debug builds, slower still
     under valgrind) take well under half a delay */
  const long base = 100;
  ck_assert_int_eq(walloc_option_set("purge_delay", base), WALLOC_OK);
  ck_assert_int_eq(wl_test_stats().purge_delay_ms, base);
  fill();
  drain();
  two_rounds(base);
  walloc_heap_stats purged = wl_test_stats();
  ck_assert_uint_ge(purged.purged_bytes, BLOCKS / 2 * 256 * KiB);
  ck_assert_int_eq(purged.purge_delay_ms, base); /* a purge alone changes nothing */

  fill(); /* the memory just given back is needed again: the purge was lost */
  walloc_heap_stats refilled = wl_test_stats();
  ck_assert_int_eq(refilled.purge_delay_ms, 2 * base);

  /* so what is freed now waits the longer delay: still resident after more
     than the option's delay, given back after the new one */
  int64_t freed = wl_os_clock_ms();
  drain();
  sleep_ms(freed + base + base / 2 - wl_os_clock_ms());
  walloc_collect(false);
  ck_assert_uint_eq(wl_test_stats().purged_bytes, refilled.purged_bytes);
  two_rounds(2 * base);
  ck_assert_uint_ge(wl_test_stats().purged_bytes, refilled.purged_bytes + BLOCKS / 2 * 256 * KiB);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("purge");
  TCase *tc = tcase_create("purge");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_delay_follows_lost_bets);
  tcase_add_test(tc, test_heap_keeps_memory_longer_after_lost_bet);
  suite_add_tcase(s, tc);
  return s;
}
