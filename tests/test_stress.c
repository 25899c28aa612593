/* test_stress.c: many threads, random sizes from 1 byte to 4 MiB, every
 * block filled with a pattern that is checked before it is freed, realloc
 * chains, and blocks handed to other threads to free. Bounded in time
 * (WL_STRESS_SECONDS, default 3) rather than in operations, so the same test
 * runs under ASan, TSan and valgrind. Threads: WL_STRESS_THREADS (default 8).
 * Uses the walloc_ names only.
 */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define SLOTS 512
#define MAILBOX 64
#define MAX_THREADS 64

typedef struct parcel { /* a block on its way to another thread */
  uint8_t *block;
  size_t size;
  uint32_t seed;
} parcel;

typedef struct slot {
  uint8_t *block;
  size_t size;
  uint32_t seed;
} slot;

static _Atomic(parcel *) mailbox[MAX_THREADS][MAILBOX];
static int nthreads;
static double seconds;
static _Atomic(uint64_t) total_ops, total_handoffs, total_reallocs;

static int env_int(const char *name, int def) {
  const char *s = getenv(name);
  return s != NULL && *s ? atoi(s) : def;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t random_size(uint64_t *rng) {
  uint64_t r = wl_test_rand(rng);
  unsigned pick = (unsigned)(r % 100);
  r >>= 8;
  if (pick < 60) return 1 + (size_t)(r % 256);
  if (pick < 85) return 257 + (size_t)(r % (8 * KiB));
  if (pick < 97) return 8 * KiB + (size_t)(r % (248 * KiB));
  return 256 * KiB + (size_t)(r % (4 * MiB - 256 * KiB));
}

/* Full check for small blocks; for big ones the ends and a sample of pages. */
static bool intact(const uint8_t *p, size_t n, uint32_t seed) {
  if (n <= 64 * KiB) return wl_test_check(p, n, seed) == n;
  for (size_t off = 0; off < n; off += (off < 4 * KiB || off + 8 * KiB > n) ? 1 : 4093) {
    if (p[off] != wl_test_byte(off, seed)) return false;
  }
  return true;
}

static void fill(uint8_t *p, size_t from, size_t n, uint32_t seed) {
  for (size_t i = from; i < n; i++) p[i] = wl_test_byte(i, seed);
}

typedef struct worker {
  int id;
  uint64_t rng;
  slot slots[SLOTS];
  const char *error;
} worker;

#define FAIL(w, msg) do { (w)->error = (msg); return; } while (0)

static void drain_mailbox(worker *w) {
  for (int k = 0; k < MAILBOX; k++) {
    parcel *pc = atomic_exchange(&mailbox[w->id][k], NULL);
    if (pc == NULL) continue;
    if (!intact(pc->block, pc->size, pc->seed)) FAIL(w, "a handed-over block was corrupted");
    walloc_free(pc->block);
    walloc_free(pc);
  }
}

static void step(worker *w) {
  uint64_t r = wl_test_rand(&w->rng);
  slot *s = &w->slots[(r >> 8) % SLOTS];
  unsigned op = (unsigned)(r % 100);
  if (s->block != NULL && !intact(s->block, s->size, s->seed)) FAIL(w, "a block was corrupted");
  if (op < 45) { /* (re)allocate */
    walloc_free(s->block);
    s->size = random_size(&w->rng);
    s->seed = (uint32_t)(r >> 32);
    s->block = walloc_malloc(s->size);
    if (s->block == NULL) FAIL(w, "malloc failed");
    fill(s->block, 0, s->size, s->seed);
  } else if (op < 70) { /* free */
    walloc_free(s->block);
    s->block = NULL;
  } else if (op < 85) { /* realloc: grow or shrink, the prefix survives */
    size_t n = (r & (1u << 20)) ? s->size / 2 + 1 : s->size + random_size(&w->rng) / 4 + 1;
    if (n > 6 * MiB) n = 1 + n % (64 * KiB);
    uint8_t *q = walloc_realloc(s->block, n);
    if (q == NULL) FAIL(w, "realloc failed");
    size_t keep = s->block == NULL ? 0 : (n < s->size ? n : s->size);
    if (s->block == NULL) s->seed = (uint32_t)(r >> 32);
    if (!intact(q, keep, s->seed)) FAIL(w, "realloc lost contents");
    fill(q, keep, n, s->seed);
    s->block = q;
    s->size = n;
    atomic_fetch_add_explicit(&total_reallocs, 1, memory_order_relaxed);
  } else if (op < 95) { /* hand the block to another thread */
    if (s->block == NULL || nthreads < 2) return;
    int to = (int)((r >> 40) % (uint64_t)nthreads);
    if (to == w->id) to = (to + 1) % nthreads;
    parcel *pc = walloc_malloc(sizeof *pc);
    if (pc == NULL) FAIL(w, "malloc failed");
    *pc = (parcel){s->block, s->size, s->seed};
    parcel *expected = NULL;
    if (atomic_compare_exchange_strong(&mailbox[to][(r >> 48) % MAILBOX], &expected, pc)) {
      s->block = NULL;
      atomic_fetch_add_explicit(&total_handoffs, 1, memory_order_relaxed);
    } else {
      walloc_free(pc);
    }
  } else {
    drain_mailbox(w);
  }
}

static void *run_worker(void *arg) {
  worker *w = arg;
  double end = now_seconds() + seconds;
  uint64_t ops = 0;
  while (w->error == NULL) {
    step(w);
    if ((++ops & 255) == 0 && now_seconds() > end) break;
  }
  atomic_fetch_add(&total_ops, ops);
  return NULL;
}

START_TEST(stress_threads) {
  nthreads = env_int("WL_STRESS_THREADS", 8);
  if (nthreads < 1) nthreads = 1;
  if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
  seconds = env_int("WL_STRESS_SECONDS", 3);
  walloc_collect(true);
  walloc_heap_stats before;
  before.size = sizeof before;
  walloc_heap_stats_get(&before);

  worker *w = walloc_calloc((size_t)nthreads, sizeof *w);
  pthread_t t[MAX_THREADS];
  for (int i = 0; i < nthreads; i++) {
    w[i].id = i;
    w[i].rng = 0x853c49e6748fea9bull * (uint64_t)(i + 1);
    ck_assert_int_eq(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
  }
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < nthreads; i++) ck_assert_msg(w[i].error == NULL, "thread %d: %s", i, w[i].error);

  /* clean up from this thread: every leftover is another thread's block */
  for (int i = 0; i < nthreads; i++) {
    drain_mailbox(&w[i]);
    ck_assert_msg(w[i].error == NULL, "%s", w[i].error);
    for (int k = 0; k < SLOTS; k++) {
      slot *s = &w[i].slots[k];
      if (s->block == NULL) continue;
      ck_assert_msg(intact(s->block, s->size, s->seed), "leftover block corrupted");
      walloc_free(s->block);
    }
  }
  walloc_free(w);
  walloc_collect(true);
  walloc_heap_stats after;
  after.size = sizeof after;
  walloc_heap_stats_get(&after);
  fprintf(stderr, "stress: %d threads, %.0f s: %llu operations, %llu hand-overs, %llu reallocs\n", nthreads,
          seconds, (unsigned long long)total_ops, (unsigned long long)total_handoffs,
          (unsigned long long)total_reallocs);
  ck_assert_uint_gt(total_ops, 1000);
  if (nthreads > 1) ck_assert_uint_gt(total_handoffs, 10);
  ck_assert_uint_le(after.live_blocks, before.live_blocks + 8); /* nothing leaked */
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("stress");
  int seconds_env = env_int("WL_STRESS_SECONDS", 3);
  WL_TCASE(s, "stress", seconds_env * 4 + 120, stress_threads);
  return s;
}
