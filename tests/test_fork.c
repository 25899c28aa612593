/* test_fork.c: fork while other threads use walloc, layer by layer and all
 * layers at once.
 *
 * Threads hammer one layer (or every layer) while the main thread forks 200
 * times. Each child uses those layers itself (the objects the threads share,
 * and new ones), checks what it gets, and exits; the parent waits for each
 * child with a deadline, its threads paused meanwhile (they run again before
 * the next fork, so each fork still finds them mid-operation). A child still
 * running at its deadline is stuck on a lock a vanished thread held: it is
 * killed and the test fails naming the step the child had reached (the child
 * writes it to a page it shares with the parent), as it fails on any exit but
 * 0 (the child's check that failed, from the same page).
 *
 * The layers: the heap (malloc, realloc and free with cross-thread frees,
 * threads that start and exit), the tiers (allocation in every tier, reset,
 * compaction, statistics, budgets), scopes and frames, contexts, pools,
 * rings, the asset registry (register, get, evict, zero-copy placement) and
 * asset loads from a file:// URL (with libcurl; skipped loudly without; the
 * children's loads fail at once, see child_loads).
 * One more case parks a page of the heap by hand in the state a foreign free
 * fork interrupted would leave it in (white box, through heap.h's inline
 * helpers), and checks the child can still free into it.
 * Uses the walloc_ names only, so the sanitizer builds (which do not replace
 * malloc) test walloc's heap too.
 */
#include "test_common.h"
#include "heap/heap.h" /* inline helpers only (the library's own names are hidden): the page of a block */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define WL_TEST_HAVE_SINGLE_THREADED 1
#endif
#endif
#ifndef WL_TEST_HAVE_SINGLE_THREADED
#define WL_TEST_HAVE_SINGLE_THREADED 0
#endif

#ifndef WL_HAVE_CURL
#define WL_HAVE_CURL 0
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum {
  L_HEAP = 1 << 0,
  L_TIERS = 1 << 1,
  L_SCOPES = 1 << 2, /* scopes and frames */
  L_CONTEXTS = 1 << 3,
  L_POOLS = 1 << 4,
  L_RINGS = 1 << 5,
  L_REGISTRY = 1 << 6,
  L_LOADS = 1 << 7,
  L_ALL = (1 << 8) - 1,
};

enum { FORKS = 200, SLOTS = 256, KEYS = 64 };

/* How long a child may take: it runs for milliseconds; sanitizers and a
   loaded machine make that seconds at worst. */
#define CHILD_DEADLINE_S 60

/* ------------------------------------------------------------------------
   What the threads share (set up before they start)
   ------------------------------------------------------------------------ */
static _Atomic(int) stop;
static _Atomic(long) laps;                  /* loop iterations of all threads, to know they run */
static _Atomic(void *) slots[SLOTS];        /* heap blocks passed from one thread to another */
static walloc_context *shared_ctx, *shared_kid;
static walloc_pool *shared_pool;
static walloc_ring *shared_ring;
static char file_url[96], file_path[64];
static bool loads_work;
enum { FILE_BYTES = 150000 };

/* A page shared with the children: where each is, and what failed. */
typedef struct child_report_s {
  _Atomic(const char *) step; /* a string literal: the same address in parent and child */
  char failure[256];
} child_report_t;
static child_report_t *report;

static void step(const char *what) { atomic_store(&report->step, what); }

__attribute__((format(printf, 1, 2), noreturn)) static void child_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(report->failure, sizeof report->failure, fmt, ap);
  va_end(ap);
  _exit(1);
}
#define CHILD_CHECK(cond, ...) \
  do {                         \
    if (!(cond)) child_fail(__VA_ARGS__); \
  } while (0)

/* The end of each thread's loop: counted, and the place where the threads
   wait while a child runs (`paused`). A child's correctness depends only on
   where the threads were at the fork; the parent's threads running on while
   the child works only took the CPU from it (32 threads on 2 cores made each
   fork cost 60 ms, the suite 3-6 minutes per build). */
static _Atomic(int) paused;
static void lap(void) {
  atomic_fetch_add_explicit(&laps, 1, memory_order_relaxed);
  while (atomic_load_explicit(&paused, memory_order_relaxed) && !atomic_load(&stop)) usleep(100);
}

/* A tier block filled with seed's pattern and checked back through its handle. */
static bool handle_roundtrip(walloc_handle h, size_t n, uint32_t seed) {
  uint8_t *p = walloc_handle_to_ptr(h);
  if (p == NULL) return false;
  wl_test_fill(p, n, seed);
  return wl_test_check(walloc_handle_to_ptr(h), n, seed) == n;
}

/* ------------------------------------------------------------------------
   The threads, one function per kind; each loops until `stop`.
   ------------------------------------------------------------------------ */
static size_t heap_size(uint64_t *rng) {
  uint64_t r = wl_test_rand(rng);
  switch (r % 16) {
    case 0: return 64 * KiB + r % (512 * KiB);  /* large */
    case 1: return (r % 64 == 1) ? 3 * MiB : 4096; /* now and then huge */
    default: return 8 + r % 2048;
  }
}

/* Allocates, writes and hands blocks to the other heap thread through
   `slots`; frees what it finds there (cross-thread frees both ways). */
static void *heap_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 7919 + 1;
  void *mine[32] = {0};
  while (!atomic_load(&stop)) {
    size_t n = heap_size(&rng);
    void *p = walloc_malloc(n);
    if (p != NULL) memset(p, 0x5a, n < 256 ? n : 256);
    void *old = atomic_exchange(&slots[wl_test_rand(&rng) % SLOTS], p);
    walloc_free(old);
    size_t k = wl_test_rand(&rng) % 32;
    mine[k] = walloc_realloc(mine[k], heap_size(&rng) % 8192 + 1);
    lap();
  }
  for (int k = 0; k < 32; k++) walloc_free(mine[k]);
  return NULL;
}

static void *short_lived(void *arg) {
  (void)arg;
  void *p = walloc_malloc(100);
  walloc_handle h = walloc_allocate(100, WALLOC_TIER_SCENE); /* registers a tier context, folded at exit */
  walloc_deallocate(h);
  walloc_free(p);
  return NULL;
}

/* Threads that start and exit: heap creation and abandonment. */
static void *churn_thread(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_join(t, NULL);
    lap();
  }
  return NULL;
}

static void budget_note(walloc_tier tier, size_t used, size_t limit, void *arg) {
  (void)tier; (void)used; (void)limit;
  atomic_fetch_add((_Atomic(long) *)arg, 1);
}
static _Atomic(long) budget_calls;

/* Allocation and deallocation in every tier, compaction, resets,
   statistics and budgets. One thread has the entity tier to itself and
   resets it; the others stay out of it: a reset racing with allocations or
   deallocations in the same tier from other threads runs into two faults
   of the tiers themselves, not fork's (a block pushed on a free list twice,
   after which the tier hands it out twice and spins; slot entries written
   by an allocation of the generation before, a data race ThreadSanitizer
   reports). */
static _Atomic(int) tiers_seq;
static void *tiers_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 31 + 5;
  bool resetter = atomic_fetch_add(&tiers_seq, 1) == 0;
  walloc_handle keep[64] = {0};
  while (!atomic_load(&stop)) {
    size_t i = wl_test_rand(&rng) % 64;
    walloc_deallocate(keep[i]); /* stale after a reset: refused, harmless */
    walloc_tier tier = (walloc_tier)(wl_test_rand(&rng) % WALLOC_TIER_COUNT);
    if (tier == WALLOC_TIER_ENTITY && !resetter) tier = WALLOC_TIER_FALLBACK;
    keep[i] = walloc_allocate(16 + wl_test_rand(&rng) % (40 * KiB), tier);
    uint64_t r = wl_test_rand(&rng) % 512;
    walloc_tier_stats s;
    if (r == 2) walloc_tier_stats_get(WALLOC_TIER_SCENE, &s);
    if (!resetter) r = 511;
    if (r == 0) walloc_reset_tier(WALLOC_TIER_ENTITY);
    else if (r == 1) walloc_fast_compact_tier(WALLOC_TIER_ENTITY, 64 * KiB);
    else if (r == 3) walloc_set_budget(WALLOC_TIER_ENTITY, 1 * MiB, 0, budget_note, &budget_calls);
    else if (r == 4) walloc_set_budget(WALLOC_TIER_ENTITY, 0, 0, NULL, &budget_calls); /* the same arg: a
      charge may pair the old callback with the new argument (walloc_set_budget swaps them one by one) */
    lap();
  }
  for (int i = 0; i < 64; i++) walloc_deallocate(keep[i]);
  return NULL;
}

/* Scopes in the tiers nobody resets (scopes give chunks back, which races
   with a reset as a deallocation does). */
static void *scopes_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 131 + 7;
  while (!atomic_load(&stop)) {
    walloc_scope *outer = walloc_scope_enter(WALLOC_TIER_RENDER, 0);
    for (int i = 0; i < 20; i++) walloc_scope_allocate(outer, 16 + wl_test_rand(&rng) % (20 * KiB));
    walloc_scope *inner = walloc_scope_enter(WALLOC_TIER_SCENE, 0);
    walloc_scope_allocate(inner, 64);
    walloc_scope_leave(inner);
    walloc_scope_leave(outer);
    walloc_frame_begin();
    for (int i = 0; i < 50; i++) walloc_frame_alloc(16 + wl_test_rand(&rng) % 4096, 16);
    walloc_frame_end();
    lap();
  }
  return NULL;
}

static void *contexts_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 17 + 3;
  while (!atomic_load(&stop)) {
    for (int i = 0; i < 16; i++) walloc_context_allocate(shared_ctx, 16 + wl_test_rand(&rng) % 2048);
    walloc_context_allocate(shared_kid, 256);
    uint64_t r = wl_test_rand(&rng) % 64;
    if (r == 0) {
      walloc_context_reset(shared_ctx); /* the tree lock, then each context's */
    } else if (r < 8) {
      walloc_context *c = walloc_context_create(WALLOC_TIER_SCENE, shared_kid);
      walloc_context_allocate(c, 100);
      walloc_context_reset(c);
      walloc_context_release(c);
    } else if (r < 10) {
      walloc_context *root = walloc_context_create(WALLOC_TIER_RENDER, NULL);
      walloc_context_release(root);
    }
    lap();
  }
  return NULL;
}

/* Two roles, so that magazines move through the depot all the time (its
   shards' locks) and carving runs often (the pool's lock): the first pool
   thread allocates into `pool_slots`, the others free what they find there;
   each also makes and destroys small pools now and then (the registry).
   The shared pool holds four objects to a magazine and the child takes
   3000: with two threads and 300 objects, 200 forks did not catch pool
   locks left out of the registry; with these, every run did. */
static _Atomic(int) pools_seq;
static _Atomic(void *) pool_slots[SLOTS];
static void *pools_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 57 + 11;
  bool producer = atomic_fetch_add(&pools_seq, 1) == 0;
  while (!atomic_load(&stop)) {
    for (int i = 0; i < 64; i++) {
      _Atomic(void *) *slot = &pool_slots[wl_test_rand(&rng) % SLOTS];
      if (producer) {
        void *o = walloc_pool_alloc(shared_pool);
        void *expect = NULL;
        if (!atomic_compare_exchange_strong(slot, &expect, o)) walloc_pool_free(shared_pool, o);
      } else {
        void *o = atomic_exchange(slot, NULL);
        if (o != NULL) walloc_pool_free(shared_pool, o);
      }
    }
    if (wl_test_rand(&rng) % 64 == 0) {
      walloc_pool *p = walloc_pool_create(48 + wl_test_rand(&rng) % 200, 16);
      void *o = walloc_pool_alloc(p);
      walloc_pool_free(p, o);
      walloc_pool_destroy(p);
    }
    lap();
  }
  return NULL;
}

/* The shared ring's only producer: frames go forward, two stay in flight. */
static _Atomic(uint64_t) ring_frame;
static void *rings_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 3 + 1;
  while (!atomic_load(&stop)) {
    uint64_t f = atomic_fetch_add(&ring_frame, 1) + 1;
    walloc_ring_begin_frame(shared_ring, f);
    for (int i = 0; i < 32; i++) walloc_ring_allocate(shared_ring, 16 + wl_test_rand(&rng) % 1024);
    if (f > 2) walloc_ring_retire(shared_ring, f - 2);
    lap();
  }
  return NULL;
}

/* Rings that come and go. */
static void *rings_churn_thread(void *arg) {
  uint64_t rng = (uintptr_t)arg * 5 + 2;
  while (!atomic_load(&stop)) {
    walloc_ring *r = walloc_ring_create(WALLOC_TIER_RENDER, 64 * KiB);
    for (uint64_t f = 1; f <= 4; f++) {
      walloc_ring_begin_frame(r, f);
      walloc_ring_allocate(r, 16 + wl_test_rand(&rng) % 4096);
      walloc_ring_retire(r, f);
    }
    walloc_ring_destroy(r);
    lap();
  }
  return NULL;
}

static const char *key_name(char *buf, size_t n, const char *prefix, uint64_t i) {
  snprintf(buf, n, "fork/%s/%llu", prefix, (unsigned long long)i);
  return buf;
}

static void *registry_writer(void *arg) {
  uint64_t rng = (uintptr_t)arg * 9 + 4;
  static const uint8_t bytes[64] = {1, 2, 3};
  char key[48];
  while (!atomic_load(&stop)) {
    key_name(key, sizeof key, "k", wl_test_rand(&rng) % KEYS);
    walloc_asset_metadata md = {0};
    md.handle = walloc_load_asset_zero_copy(bytes, sizeof bytes, WALLOC_TIER_SCENE);
    md.size = sizeof bytes;
    md.tier = WALLOC_TIER_SCENE;
    if (!walloc_register_asset(key, &md)) walloc_deallocate(md.handle);
    key_name(key, sizeof key, "k", wl_test_rand(&rng) % KEYS);
    walloc_evict_asset(key);
    lap();
  }
  return NULL;
}

static void *registry_reader(void *arg) {
  uint64_t rng = (uintptr_t)arg * 13 + 6;
  char key[48];
  while (!atomic_load(&stop)) {
    walloc_asset_metadata md;
    for (int i = 0; i < 16; i++) walloc_get_asset(key_name(key, sizeof key, "k", wl_test_rand(&rng) % KEYS), &md);
    lap();
  }
  return NULL;
}

/* Loads the file (a transfer each time: evicted after), and changes the
   settings now and then. */
static void *loads_thread(void *arg) {
  (void)arg;
  unsigned n = 0;
  while (!atomic_load(&stop)) {
    walloc_handle h;
    if (walloc_load_asset(file_url, WALLOC_ASSET_BINARY, &h) == WALLOC_OK) walloc_evict_asset(file_url);
    if (++n % 8 == 0) {
      walloc_asset_options o = {0};
      o.timeout_ms = 10000 + (long)(n % 7);
      walloc_set_asset_options(&o);
    }
    lap();
  }
  return NULL;
}

typedef struct hammer_s {
  unsigned layer;
  void *(*fn)(void *);
  int count, count_all; /* threads when testing its layer, and when testing every layer (two cores) */
} hammer_t;

static const hammer_t hammers[] = {
  {L_HEAP, heap_thread, 2, 1},         {L_HEAP, churn_thread, 1, 1},     {L_TIERS, tiers_thread, 2, 2},
  {L_SCOPES, scopes_thread, 1, 1},     {L_CONTEXTS, contexts_thread, 2, 1}, {L_POOLS, pools_thread, 3, 2},
  {L_RINGS, rings_thread, 1, 1},       {L_RINGS, rings_churn_thread, 1, 1}, {L_REGISTRY, registry_writer, 1, 1},
  {L_REGISTRY, registry_reader, 2, 1}, {L_LOADS, loads_thread, 1, 1},
};

/* ------------------------------------------------------------------------
   The child: every layer asked for, checked, then _exit (never returns)
   ------------------------------------------------------------------------ */
static void child_heap(void) {
  step("heap: malloc, realloc and free");
  uint64_t rng = 99;
  void *p[64];
  size_t n[64];
  for (int i = 0; i < 64; i++) {
    n[i] = i == 0 ? 5 * MiB : i == 1 ? 300 * KiB : 1 + wl_test_rand(&rng) % 4096;
    p[i] = walloc_malloc(n[i]);
    CHILD_CHECK(p[i] != NULL, "walloc_malloc(%zu) failed", n[i]);
    wl_test_fill(p[i], n[i] < 8192 ? n[i] : 8192, (uint32_t)i);
  }
  for (int i = 0; i < 64; i += 4) {
    p[i] = walloc_realloc(p[i], n[i] + 1000);
    CHILD_CHECK(p[i] != NULL, "walloc_realloc failed");
  }
  for (int i = 0; i < 64; i++) {
    size_t m = n[i] < 8192 ? n[i] : 8192;
    CHILD_CHECK(wl_test_check(p[i], m, (uint32_t)i) == m, "block %d changed", i);
    walloc_free(p[i]);
  }
  step("heap: free of blocks other threads allocated");
  for (int i = 0; i < SLOTS; i++) walloc_free(atomic_exchange(&slots[i], NULL));
  step("heap: walloc_collect(true)");
  walloc_collect(true);
  walloc_heap_stats s;
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
}

static void child_tiers(void) {
  step("tiers: walloc_allocate and walloc_deallocate");
  for (int t = 0; t < WALLOC_TIER_COUNT; t++) {
    walloc_handle h = walloc_allocate(1000 + (size_t)t, (walloc_tier)t);
    CHILD_CHECK(handle_roundtrip(h, 1000 + (size_t)t, (uint32_t)t), "tier %d: allocation unusable", t);
    CHILD_CHECK(walloc_deallocate(h) == WALLOC_OK, "tier %d: deallocation refused", t);
  }
  step("tiers: statistics and budgets");
  walloc_tier_stats s;
  CHILD_CHECK(walloc_tier_stats_get(WALLOC_TIER_SCENE, &s) == WALLOC_OK, "tier statistics refused");
  CHILD_CHECK(walloc_set_budget(WALLOC_TIER_ENTITY, 0, 0, NULL, NULL) == WALLOC_OK, "walloc_set_budget refused");
  step("tiers: reset");
  CHILD_CHECK(walloc_reset_tier(WALLOC_TIER_ENTITY) == WALLOC_OK, "reset refused");
}

static void child_scopes(void) {
  step("scopes: enter, allocate, leave");
  walloc_scope *s = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  CHILD_CHECK(s != NULL, "walloc_scope_enter failed");
  walloc_handle h = walloc_scope_allocate(s, 3000);
  CHILD_CHECK(handle_roundtrip(h, 3000, 3), "scope allocation unusable");
  walloc_scope_leave(s);
  step("frames: begin, allocate, end");
  walloc_frame_begin();
  void *f = walloc_frame_alloc(5000, 16);
  CHILD_CHECK(f != NULL, "walloc_frame_alloc failed");
  memset(f, 1, 5000);
  walloc_frame_end();
}

static void child_contexts(void) {
  step("contexts: walloc_context_allocate on the shared context");
  for (int i = 0; i < 20; i++) {
    walloc_handle h = walloc_context_allocate(shared_ctx, 100 + (size_t)i);
    CHILD_CHECK(handle_roundtrip(h, 100 + (size_t)i, (uint32_t)i), "context allocation unusable");
  }
  step("contexts: create, allocate, reset and release a child");
  walloc_context *c = walloc_context_create(WALLOC_TIER_SCENE, shared_kid);
  CHILD_CHECK(c != NULL, "walloc_context_create failed");
  CHILD_CHECK(handle_roundtrip(walloc_context_allocate(c, 500), 500, 5), "child context allocation unusable");
  walloc_context_reset(c);
  walloc_context_release(c);
  step("contexts: reset of the shared context");
  walloc_context_reset(shared_ctx);
}

static void child_pools(void) {
  step("pools: alloc and free in the shared pool");
  static void *o[3000];
  for (int i = 0; i < 3000; i++) {
    o[i] = walloc_pool_alloc(shared_pool);
    CHILD_CHECK(o[i] != NULL, "walloc_pool_alloc failed");
    memset(o[i], i, 40);
  }
  for (int i = 0; i < 3000; i++) walloc_pool_free(shared_pool, o[i]);
  step("pools: create and destroy");
  walloc_pool *p = walloc_pool_create(100, 16);
  CHILD_CHECK(p != NULL, "walloc_pool_create failed");
  void *x = walloc_pool_alloc(p);
  CHILD_CHECK(x != NULL, "walloc_pool_alloc in a new pool failed");
  walloc_pool_free(p, x);
  walloc_pool_destroy(p);
}

static void child_rings(void) {
  step("rings: walloc_ring_retire, begin_frame and allocate on the shared ring");
  uint64_t f = ((uint64_t)1 << 40); /* after every frame the producer reached */
  walloc_ring_retire(shared_ring, f - 1);
  CHILD_CHECK(walloc_ring_begin_frame(shared_ring, f) == WALLOC_OK, "walloc_ring_begin_frame refused");
  for (int i = 0; i < 16; i++) {
    walloc_handle h = walloc_ring_allocate(shared_ring, 200);
    CHILD_CHECK(handle_roundtrip(h, 200, (uint32_t)i), "ring allocation unusable");
  }
  walloc_ring_retire(shared_ring, f);
  step("rings: create and destroy");
  walloc_ring *r = walloc_ring_create(WALLOC_TIER_RENDER, 64 * KiB);
  CHILD_CHECK(r != NULL, "walloc_ring_create failed");
  walloc_ring_destroy(r);
}

static void child_registry(void) {
  step("registry: walloc_get_asset");
  walloc_asset_metadata md;
  CHILD_CHECK(walloc_get_asset("fork/permanent", &md) && md.size == 42, "the permanent asset is missing");
  char key[48];
  for (int i = 0; i < KEYS; i++) walloc_get_asset(key_name(key, sizeof key, "k", (uint64_t)i), &md);
  step("registry: register and evict");
  static const uint8_t bytes[64] = {7};
  walloc_asset_metadata mine = {0};
  mine.handle = walloc_load_asset_zero_copy(bytes, sizeof bytes, WALLOC_TIER_SCENE);
  mine.size = 64;
  CHILD_CHECK(walloc_register_asset("fork/child", &mine), "walloc_register_asset refused");
  CHILD_CHECK(walloc_get_asset("fork/child", &md) && md.handle == mine.handle, "registered asset not found");
  CHILD_CHECK(walloc_evict_asset("fork/child"), "walloc_evict_asset refused");
}

/* A load whose transfer fails at once (no such file): every step of
   walloc's load path (settings, URL, the multi handle pool, a new transfer
   through libcurl's global lock, the batch loop) but no successful
   transfer: libcurl's file:// transfer calls gmtime (it writes a
   Last-Modified header), and glibc does not release gmtime's lock in a fork
   child, so a child forked while the parent's loader thread was inside
   gmtime hangs there, in the C library (seen: __tz_convert waiting for
   tzset_lock). POSIX promises a child of a threaded process only the
   async-signal-safe functions until exec; walloc's own locks are what this
   checks. */
static void child_loads(void) {
  if (!loads_work) return;
  step("loads: walloc_set_asset_options");
  walloc_asset_options o = {0};
  CHILD_CHECK(walloc_set_asset_options(&o) == WALLOC_OK, "walloc_set_asset_options refused");
  /* libcurl allocates with malloc, which the sanitizer builds leave to the
     sanitizer; ASan's allocator (GCC 12's libasan, clang 14's) takes no
     lock around fork, so a child forked while the loader thread was inside
     it hangs in curl_easy_init (seen once in 1,800 forks in CI). walloc's
     locks on that path are tested in the other builds. */
  if (WL_TEST_SANITIZED) return; /* said by shared_setup */
  step("loads: walloc_load_asset of a missing file:// URL");
  char url[128];
  snprintf(url, sizeof url, "%s.missing", file_url);
  walloc_handle h;
  walloc_status st = walloc_load_asset(url, WALLOC_ASSET_BINARY, &h);
  CHILD_CHECK(st == WALLOC_ERR_NOT_FOUND, "missing file:// load: %s (%s)", walloc_status_str(st),
              walloc_asset_last_error());
  step("loads: walloc_get_asset of the parent's loads");
  walloc_asset_metadata md;
  walloc_get_asset(file_url, &md);
  walloc_asset_stats s;
  walloc_asset_stats_get(&s);
}

static void child_run(unsigned layers) {
  if (layers & L_HEAP) child_heap();
  if (layers & L_TIERS) child_tiers();
  if (layers & L_SCOPES) child_scopes();
  if (layers & L_CONTEXTS) child_contexts();
  if (layers & L_POOLS) child_pools();
  if (layers & L_RINGS) child_rings();
  if (layers & L_REGISTRY) child_registry();
  if (layers & L_LOADS) child_loads();
  step("exit");
  _exit(0);
}

/* ------------------------------------------------------------------------
   The parent
   ------------------------------------------------------------------------ */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Waits for pid until the deadline; returns its status, or -1 when it was
   still running (then it is killed and reaped). */
static int wait_with_deadline(pid_t pid, double seconds) {
  double end = now_s() + seconds;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -2;
    if (now_s() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    usleep(500);
  }
}

static void shared_setup(unsigned layers) {
  report = mmap(NULL, sizeof *report, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(report, MAP_FAILED);
  atomic_store(&stop, 0);
  atomic_store(&tiers_seq, 0);
  atomic_store(&pools_seq, 0);
  shared_ctx = walloc_context_create(WALLOC_TIER_SCENE, NULL);
  shared_kid = walloc_context_create(WALLOC_TIER_SCENE, shared_ctx);
  shared_pool = walloc_pool_create(4096, 16); /* four to a magazine: the depot is busy */
  shared_ring = walloc_ring_create(WALLOC_TIER_RENDER, 1 * MiB);
  ck_assert(shared_ctx != NULL && shared_kid != NULL && shared_pool != NULL && shared_ring != NULL);
  walloc_asset_metadata md = {0};
  md.handle = walloc_allocate(42, WALLOC_TIER_SCENE);
  md.size = 42;
  walloc_evict_asset("fork/permanent"); /* from an earlier case, when Check does not fork */
  ck_assert(walloc_register_asset("fork/permanent", &md));
  if (!(layers & L_LOADS)) return;
  if (!WL_HAVE_CURL) {
    printf("skipped: fork: file:// loads (walloc was built without libcurl)\n");
    return;
  }
  snprintf(file_path, sizeof file_path, "/tmp/walloc-fork-XXXXXX");
  int fd = mkstemp(file_path);
  ck_assert_int_ge(fd, 0);
  static uint8_t buf[FILE_BYTES];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i % 251);
  ck_assert_int_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
  close(fd);
  snprintf(file_url, sizeof file_url, "file://%s", file_path);
  /* the first load opens libcurl: done here, before any thread runs, so no
     child is forked while the C library's dlopen is under way */
  walloc_handle h;
  walloc_status st = walloc_load_asset(file_url, WALLOC_ASSET_BINARY, &h);
  if (st == WALLOC_ERR_UNSUPPORTED) {
    printf("skipped: fork: file:// loads (libcurl could not be opened: %s)\n", walloc_asset_last_error());
    return;
  }
  ck_assert_msg(st == WALLOC_OK, "file:// load: %s", walloc_asset_last_error());
  ck_assert(walloc_evict_asset(file_url));
  loads_work = true;
  if (WL_TEST_SANITIZED)
    printf("skipped: fork: the children's file:// loads (under a sanitizer libcurl's malloc is the sanitizer's, not fork-safe)\n");
}

/* Threads hammer `layers` while the main thread forks; with `hammer`
   false no thread is started: the process forks with one thread, which
   walloc's fork handlers recognise (lib/platform/linux.c) and then take no
   lock at all. */
static void fork_while_threads_run(unsigned layers, bool hammer) {
  shared_setup(layers);
  pthread_t t[32];
  int nt = 0;
  for (size_t k = 0; k < sizeof hammers / sizeof *hammers && hammer; k++) {
    if (!(hammers[k].layer & layers) || (hammers[k].layer == L_LOADS && !loads_work)) continue;
    int count = layers == L_ALL ? hammers[k].count_all : hammers[k].count;
    for (int i = 0; i < count; i++) {
      ck_assert_int_lt(nt, 32);
      ck_assert_int_eq(pthread_create(&t[nt], NULL, hammers[k].fn, (void *)(uintptr_t)(nt + 1)), 0);
      nt++;
    }
  }
  while (atomic_load(&laps) < 100 * nt) usleep(1000); /* every kind under way */
  for (int round = 0; round < FORKS; round++) {
    atomic_store(&report->step, "fork (the child handler)");
    report->failure[0] = 0;
    pid_t pid = fork();
    if (pid == 0) child_run(layers); /* first: Check's assertions allocate (a sanitizer's malloc is not fork-safe) */
    atomic_store(&paused, 1); /* the threads stop at the end of their lap while the child runs */
    ck_assert_int_ge(pid, 0);
    int status = wait_with_deadline(pid, CHILD_DEADLINE_S);
    atomic_store(&paused, 0);
    long resumed = atomic_load(&laps);
    const char *where = atomic_load(&report->step);
    ck_assert_msg(status != -1, "fork %d: the child hung in \"%s\" (killed after %d s)", round, where,
                  CHILD_DEADLINE_S);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %d: the child failed in \"%s\": %s (status %#x)",
                  round, where, report->failure, status);
    while (atomic_load(&laps) < resumed + nt) sched_yield(); /* the threads run again before the next fork */
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
  if (file_path[0] != 0) unlink(file_path);
}

/* The heap's one lock-free hand-over (heap.c, "fork"): a foreign free that
   finds a full page parks it in FREEING while it tells the owner. Fork can
   copy a page in that state, with the freeing thread gone; the child's
   next free into that page would wait for FREEING to end. White box: the
   page is parked by hand (the window is a few instructions wide). */
START_TEST(fork_child_finishes_a_parked_foreign_free) {
  enum { N = 8192 };
  static void *p[N];
  wl_page_t *full = NULL;
  void *victim = NULL;
  for (int i = 0; i < N; i++) {
    p[i] = walloc_malloc(48);
    ck_assert_ptr_nonnull(p[i]);
  }
  for (int i = 0; i < N && full == NULL; i++) { /* a page the owner parked in its full queue */
    wl_page_t *page = wl_page_of(wl_segment_of(p[i]), p[i]);
    if ((page->flags & WL_PAGE_IN_FULL) &&
        wl_delayed_state(atomic_load(&page->xthread_free)) == WL_DELAYED_USE) {
      full = page;
      victim = p[i];
    }
  }
  ck_assert_msg(full != NULL, "no full page among %d blocks", N);
  uintptr_t was = atomic_load(&full->xthread_free);
  atomic_store(&full->xthread_free, wl_delayed_make(wl_delayed_ptr(was), WL_DELAYED_FREEING));
  pid_t pid = fork();
  if (pid == 0) {
    walloc_free(victim); /* the owner's free into its full page */
    void *q = walloc_malloc(48);
    walloc_free(q);
    _exit(q != NULL ? 0 : 1);
  }
  ck_assert_int_ge(pid, 0);
  atomic_store(&full->xthread_free, was); /* the parent's page as it was */
  int status = wait_with_deadline(pid, CHILD_DEADLINE_S);
  ck_assert_msg(status != -1, "the child waited for a foreign free that fork interrupted (killed after %d s)",
                CHILD_DEADLINE_S);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  for (int i = 0; i < N; i++) walloc_free(p[i]);
}
END_TEST

/* One case per layer (Check's loop index _i), and all of them at once. */
static const unsigned one_layer[] = {L_HEAP, L_TIERS, L_SCOPES, L_CONTEXTS, L_POOLS, L_RINGS, L_REGISTRY, L_LOADS};

START_TEST(fork_while_one_layer_runs) { fork_while_threads_run(one_layer[_i], true); }
END_TEST

START_TEST(fork_while_every_layer_runs) { fork_while_threads_run(L_ALL, true); }
END_TEST

/* A process that never had a second thread forks without walloc taking its
   locks (what saves a shell's subshells their page faults on the pages that
   hold them): each child still uses every layer, including the objects the
   parent made and used. The case checks it runs with one thread, as the C
   library counts them, so it tests that path and not the other. */
START_TEST(fork_from_one_thread) {
  bool one = WL_TEST_HAVE_SINGLE_THREADED;
#if WL_TEST_HAVE_SINGLE_THREADED
  one = __libc_single_threaded != 0;
  /* a sanitizer's runtime may have started a thread of its own */
  if (!one) printf("skipped: fork: one thread (this process has had a second thread already: the forks take the locks)\n");
#else
  printf("skipped: fork: one thread (no <sys/single_threaded.h>: every fork takes the locks)\n");
#endif
  walloc_free(walloc_malloc(100)); /* the heap and its fork handlers in place */
  fork_while_threads_run(L_ALL, false);
#if WL_TEST_HAVE_SINGLE_THREADED
  ck_assert_msg(!one || __libc_single_threaded, "a thread was started: the case did not fork from one thread");
#endif
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("fork");
  /* each case in a process of its own (Check forks), so each starts clean */
  WL_TCASE(s, "heap", 120, fork_child_finishes_a_parked_foreign_free);
  TCase *tc = tcase_create("one layer");
  tcase_set_timeout(tc, 900);
  tcase_add_loop_test(tc, fork_while_one_layer_runs, 0, (int)(sizeof one_layer / sizeof *one_layer));
  suite_add_tcase(s, tc);
  WL_TCASE(s, "every layer", 900, fork_while_every_layer_runs);
  WL_TCASE(s, "one thread", 300, fork_from_one_thread);
  return s;
}
