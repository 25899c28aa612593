/* test_pool.c: fixed-size object pools: bad arguments, every size and
 * alignment, reuse, foreign and double frees refused without corruption,
 * objects freed by another thread (producer and consumer), many threads on
 * one pool, objects and magazines passed round a ring of threads, two
 * threads on their own objects sharing nothing once settled (the pool's
 * statistics), destroy releasing everything (also with other threads' caches
 * holding the destroyed pool's objects), and thread exit flushing caches.
 *
 * Each case runs in a fresh forked process (Check). Uses the walloc_ names only.
 */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* Whether the n pointers are distinct and at least `size` apart. */
static bool disjoint(void **ptrs, size_t n, size_t size) {
  void **sorted = malloc(n * sizeof *sorted);
  memcpy(sorted, ptrs, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_ptr);
  bool ok = true;
  for (size_t i = 1; i < n && ok; i++) ok = (uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1] >= size;
  free(sorted);
  return ok;
}

/* ------------------------------------------------------------------------
   Basics
   ------------------------------------------------------------------------ */
START_TEST(bad_arguments) {
  ck_assert_ptr_null(walloc_pool_create(0, 16));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  static const size_t bad_align[] = {3, 12, 48, 1000, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad_align / sizeof *bad_align; i++) {
    ck_assert_ptr_null(walloc_pool_create(64, wl_opaque(bad_align[i])));
    ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  }
  ck_assert_ptr_null(walloc_pool_create(wl_opaque(SIZE_MAX), 16));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
  ck_assert_ptr_null(walloc_pool_create(wl_opaque(SIZE_MAX / 2), 8));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
#if SIZE_MAX > UINT32_MAX /* (on wasm32 a 2^30 alignment can be met: the memory grows to 4 GiB) */
  ck_assert_ptr_null(walloc_pool_create(64, wl_opaque((size_t)1 << 62)));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_NOMEM);
#endif
  ck_assert_ptr_null(walloc_pool_alloc(NULL));
  ck_assert_int_eq(walloc_last_status(), WALLOC_ERR_INVALID);
  walloc_pool *p = walloc_pool_create(24, 0);
  ck_assert_ptr_nonnull(p);
  walloc_pool_free(p, NULL);      /* nothing */
  int x;
  walloc_pool_free(NULL, &x);     /* reported, ignored */
  walloc_pool_destroy(NULL);      /* nothing */
  void *o = walloc_pool_alloc(p);
  ck_assert_ptr_nonnull(o);
  ck_assert_uint_eq((uintptr_t)o % 16, 0); /* align 0 means 16 */
  walloc_pool_free(p, o);
  walloc_pool_stats st;
  ck_assert_int_eq(walloc_pool_stats_get(NULL, &st), WALLOC_ERR_INVALID);
  ck_assert_int_eq(walloc_pool_stats_get(p, NULL), WALLOC_ERR_INVALID);
  ck_assert_int_eq(walloc_pool_stats_get(p, &st), WALLOC_OK);
  ck_assert_uint_eq(st.object_size, 32); /* 24 rounded up to the alignment, 16 */
  ck_assert_uint_eq(st.objects, 256);    /* one magazine: 16 KiB of objects (at most 256) */
  ck_assert_uint_eq(st.slab_bytes, 64 * KiB);
  ck_assert_uint_eq(st.magazines_taken, 0);
  walloc_pool_destroy(p);
}
END_TEST

START_TEST(every_size_and_alignment) {
  static const size_t aligns[] = {1, 2, 8, 16, 32, 64, 128, 256, 1024, 4096, 65536, (size_t)1 << 17};
  enum { N = 40 };
  void *ptrs[N];
  for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++) {
    for (size_t size = 1; size <= 70000; size = size < 600 ? size + 37 : size * 3) {
      size_t a = aligns[ai];
      walloc_pool *pool = walloc_pool_create(size, a);
      ck_assert_msg(pool != NULL, "size %zu align %zu", size, a);
      for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
          ptrs[i] = walloc_pool_alloc(pool);
          ck_assert_ptr_nonnull(ptrs[i]);
          ck_assert_msg((uintptr_t)ptrs[i] % a == 0, "size %zu align %zu: %p", size, a, ptrs[i]);
          ck_assert_uint_eq((uintptr_t)ptrs[i] % 16 == 0 || a < 16, 1);
          wl_test_fill_sparse(ptrs[i], size, (uint32_t)(i + round * N));
        }
        for (int i = 0; i < N; i++) ck_assert(wl_test_check_sparse(ptrs[i], size, (uint32_t)(i + round * N)));
        ck_assert(disjoint(ptrs, N, size));
        for (int i = 0; i < N; i++) walloc_pool_free(pool, ptrs[i]);
      }
      walloc_pool_destroy(pool);
    }
  }
  /* objects of several MiB: one per slab */
  walloc_pool *big = walloc_pool_create(3 * MiB + 1, 64);
  ck_assert_ptr_nonnull(big);
  void *b1 = walloc_pool_alloc(big), *b2 = walloc_pool_alloc(big);
  ck_assert_ptr_nonnull(b1);
  ck_assert_ptr_nonnull(b2);
  wl_test_fill_sparse(b1, 3 * MiB + 1, 1);
  wl_test_fill_sparse(b2, 3 * MiB + 1, 2);
  ck_assert(wl_test_check_sparse(b1, 3 * MiB + 1, 1));
  walloc_pool_free(big, b2);
  ck_assert_ptr_eq(walloc_pool_alloc(big), b2);
  walloc_pool_destroy(big);
}
END_TEST

START_TEST(freed_objects_are_reused) {
  walloc_pool *pool = walloc_pool_create(200, 8);
  enum { N = 5000 };
  static void *ptrs[N];
  for (int i = 0; i < N; i++) ck_assert_ptr_nonnull(ptrs[i] = walloc_pool_alloc(pool));
  uint64_t m = wl_test_mapped_bytes();
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < N; i++) walloc_pool_free(pool, ptrs[i]);
    for (int i = 0; i < N; i++) {
      ptrs[i] = walloc_pool_alloc(pool);
      ck_assert_ptr_nonnull(ptrs[i]);
      memset(ptrs[i], round, 200);
    }
    ck_assert_uint_le(wl_test_mapped_bytes(), m);
  }
  ck_assert(disjoint(ptrs, N, 200));
  walloc_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------------------------------
   Misuse: foreign and double frees are refused and change nothing
   ------------------------------------------------------------------------ */
#if WL_DEBUG > 0
#define stderr_has wl_test_stderr_has_arg
#endif

typedef struct {
  walloc_pool *pool;
  void *ptr;
} free_call_t;
static void do_free(void *arg) {
  free_call_t *c = arg;
  walloc_pool_free(c->pool, c->ptr);
}
/* Frees, and in debug builds checks what was said. */
static void misuse(walloc_pool *pool, void *ptr, const char *want) {
  free_call_t c = {pool, ptr};
#if WL_DEBUG > 0
  ck_assert_msg(stderr_has(do_free, &c, want), "no \"%s\" report", want);
#else
  (void)want;
  do_free(&c);
#endif
}

START_TEST(foreign_and_double_frees_are_refused) {
  walloc_pool *a = walloc_pool_create(16, 16), *b = walloc_pool_create(16, 16);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  enum { N = 2000 };
  static void *ptrs[N];
  uint8_t *pa = walloc_pool_alloc(a);
  memset(pa, 0x77, 16);
  void *heap = malloc(64);
  int local;
  misuse(b, pa, "not an object of this pool");
  misuse(a, heap, "not an object of this pool");
  misuse(a, &local, "not an object of this pool");
  misuse(a, (void *)(uintptr_t)0x10, "not an object of this pool");
  misuse(a, (void *)UINTPTR_MAX, "not an object of this pool");
  misuse(a, pa + 1, "not the start of an allocated object");
  misuse(a, pa + 8, "not the start of an allocated object");
  misuse(a, pa + 16 * 3000, "not the start of an allocated object"); /* in the slab, never handed out */
  misuse(a, (void *)((uintptr_t)pa & ~(uintptr_t)0xFFFF), "not the start of an allocated object"); /* header */
  /* carved into this thread's magazine with pa, never handed out: tagged free */
  misuse(a, pa + 16, "double free");
  for (int i = 0; i < 16; i++) ck_assert_int_eq(pa[i], 0x77); /* untouched */
  walloc_pool_free(a, pa);
  misuse(a, pa, "double free");
  /* the double free left one copy in the pool: pa comes back at most once */
  int seen = 0;
  for (int i = 0; i < N; i++) {
    ptrs[i] = walloc_pool_alloc(a);
    ck_assert_ptr_nonnull(ptrs[i]);
    wl_test_fill(ptrs[i], 16, (uint32_t)i);
    seen += ptrs[i] == pa;
  }
  ck_assert_int_eq(seen, 1);
  ck_assert(disjoint(ptrs, N, 16));
  for (int i = 0; i < N; i++) ck_assert_uint_eq(wl_test_check(ptrs[i], 16, (uint32_t)i), 16);
  /* freed twice after a round trip through another thread's cache and the shared list */
  for (int i = 0; i < N; i++) walloc_pool_free(a, ptrs[i]);
  for (int i = 0; i < N; i += 7) misuse(a, ptrs[i], "double free");
  for (int i = 0; i < N; i++) ck_assert_ptr_nonnull(ptrs[i] = walloc_pool_alloc(a));
  ck_assert(disjoint(ptrs, N, 16));
  /* b never received a's object */
  for (int i = 0; i < 100; i++) ck_assert_ptr_ne(walloc_pool_alloc(b), pa);
  /* another pool's objects are foreign to a new pool */
  walloc_pool_destroy(b);
  walloc_pool *c = walloc_pool_create(16, 16);
  misuse(c, ptrs[0], "not an object of this pool");
  free(heap);
  walloc_pool_destroy(a);
  walloc_pool_destroy(c);
}
END_TEST

/* ------------------------------------------------------------------------
   Threads
   ------------------------------------------------------------------------ */
enum { RING = 1024, PRODUCED = 300000, OBJ = 48 };
static _Atomic(void *) ring[RING];
static walloc_pool *shared_pool;
static uint32_t produced = PRODUCED;

static void *producer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < produced; i++) {
    uint32_t *o = walloc_pool_alloc(shared_pool);
    if (o == NULL) return (void *)1;
    for (int w = 0; w < OBJ / 4; w++) o[w] = i * 31 + (uint32_t)w;
    _Atomic(void *) *slot = &ring[i % RING];
    while (atomic_load_explicit(slot, memory_order_acquire) != NULL) sched_yield();
    atomic_store_explicit(slot, o, memory_order_release);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < produced; i++) {
    _Atomic(void *) *slot = &ring[i % RING];
    uint32_t *o;
    while ((o = atomic_load_explicit(slot, memory_order_acquire)) == NULL) sched_yield();
    atomic_store_explicit(slot, NULL, memory_order_relaxed);
    for (int w = 0; w < OBJ / 4; w++) {
      if (o[w] != i * 31 + (uint32_t)w) return (void *)2;
    }
    walloc_pool_free(shared_pool, o); /* freed by a thread that never allocates */
  }
  return NULL;
}

START_TEST(objects_freed_by_another_thread) {
  WL_WASM_SKIP_THREADS();
  shared_pool = walloc_pool_create(OBJ, 16);
  ck_assert_ptr_nonnull(shared_pool);
  uint64_t m0 = 0;
  size_t slabs0 = 0;
  for (int run = 0; run < 2; run++) { /* a short run first: the threads' heaps map their segments */
    produced = run == 0 ? 2000 : PRODUCED;
    if (run == 1) {
      m0 = wl_test_mapped_bytes();
      walloc_pool_stats ps;
      ck_assert_int_eq(walloc_pool_stats_get(shared_pool, &ps), WALLOC_OK);
      slabs0 = ps.slab_bytes;
    }
    pthread_t p, c;
    pthread_create(&c, NULL, consumer, NULL);
    pthread_create(&p, NULL, producer, NULL);
    void *rp, *rc;
    pthread_join(p, &rp);
    pthread_join(c, &rc);
    ck_assert_ptr_null(rp);
    ck_assert_ptr_null(rc);
  }
  /* objects came back to the producer: 300000 objects did not need 14 MiB of slabs */
  walloc_pool_stats ps;
  ck_assert_int_eq(walloc_pool_stats_get(shared_pool, &ps), WALLOC_OK);
  ck_assert_uint_le(ps.slab_bytes, slabs0 + 4 * MiB);
  /* and the process as a whole: the second run's two new threads may map a
     segment each for their heaps (wasm pthreads needed 128 KiB over 4 MiB
     now and then since the heap's 16-32 KiB pages; cause not traced) */
  ck_assert_uint_le(wl_test_mapped_bytes(), m0 + 8 * MiB);
  walloc_pool_destroy(shared_pool);
}
END_TEST

enum { MANY = 12, MANY_OPS = 200000, MANY_LIVE = 512 };
static _Atomic(void *) exchange[64];

static void *many_worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint64_t rng = 77 + id;
  void *live[MANY_LIVE] = {0};
  walloc_pool *own = walloc_pool_create(40 + id * 8, 8);
  if (own == NULL) return (void *)1;
  for (int op = 0; op < MANY_OPS; op++) {
    unsigned k = (unsigned)(wl_test_rand(&rng) % MANY_LIVE);
    uint64_t *o = live[k];
    if (o != NULL) { /* check and free (possibly another thread's object) */
      if (o[0] != (uintptr_t)o || o[7] != ~(uintptr_t)o) return (void *)2;
      o[7] = 0;
      walloc_pool_free(shared_pool, o);
      live[k] = NULL;
    } else {
      o = walloc_pool_alloc(shared_pool);
      if (o == NULL) return (void *)3;
      o[0] = (uintptr_t)o;
      o[7] = ~(uintptr_t)o;
      if ((op & 15) == 0) { /* swap with another thread */
        uint64_t *other = atomic_exchange(&exchange[wl_test_rand(&rng) % 64], o);
        o = other;
      }
      live[k] = o;
    }
    if ((op & 255) == 0) { /* the thread's own pool too */
      uint8_t *x = walloc_pool_alloc(own);
      if (x == NULL) return (void *)4;
      memset(x, (int)id, 40);
      walloc_pool_free(own, x);
    }
  }
  for (int k = 0; k < MANY_LIVE; k++) {
    uint64_t *o = live[k];
    if (o == NULL) continue;
    if (o[0] != (uintptr_t)o || o[7] != ~(uintptr_t)o) return (void *)5;
    walloc_pool_free(shared_pool, o);
  }
  walloc_pool_destroy(own);
  return NULL;
}

START_TEST(one_pool_in_twelve_threads) {
  WL_WASM_SKIP_THREADS();
  shared_pool = walloc_pool_create(64, 64);
  ck_assert_ptr_nonnull(shared_pool);
  wl_test_run_workers(MANY, many_worker, "thread");
  for (int i = 0; i < 64; i++) {
    uint64_t *o = atomic_load(&exchange[i]);
    if (o == NULL) continue;
    ck_assert_uint_eq(o[0], (uintptr_t)o);
    walloc_pool_free(shared_pool, o);
  }
  /* everything is back: as many objects as were ever live come out distinct */
  enum { N = MANY * MANY_LIVE };
  static void *ptrs[N];
  for (int i = 0; i < N; i++) ck_assert_ptr_nonnull(ptrs[i] = walloc_pool_alloc(shared_pool));
  ck_assert(disjoint(ptrs, N, 64));
  walloc_pool_destroy(shared_pool);
}
END_TEST

/* Magazines crossing threads many times: RING_THREADS threads in a ring;
   each round every thread allocates a batch, fills it, hands it to the next
   thread and frees the batch it got from the previous one (after checking
   it). Objects and magazines travel all the time; memory must stay bounded
   and no object may be handed out twice. */
enum { RING_THREADS = 4, RING_BATCH = 700, RING_ROUNDS = 400, RING_OBJ = 72 };
static pthread_barrier_t ring_step;
static int ring_rounds;
static uint32_t *ring_batches[RING_THREADS][RING_BATCH];

static void *ring_worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint32_t *mine[RING_BATCH];
  for (int round = 0; round < ring_rounds; round++) {
    for (int i = 0; i < RING_BATCH; i++) {
      uint32_t *o = walloc_pool_alloc(shared_pool);
      if (o == NULL) return (void *)1;
      for (int w = 0; w < RING_OBJ / 4; w++) o[w] = (uint32_t)(round * 7919 + (int)id * 131 + i) ^ (uint32_t)w;
      mine[i] = o;
    }
    memcpy(ring_batches[id], mine, sizeof mine);
    pthread_barrier_wait(&ring_step); /* every batch is out */
    uintptr_t from = (id + RING_THREADS - 1) % RING_THREADS;
    for (int i = 0; i < RING_BATCH; i++) {
      uint32_t *o = ring_batches[from][i];
      for (int w = 0; w < RING_OBJ / 4; w++) {
        if (o[w] != ((uint32_t)(round * 7919 + (int)from * 131 + i) ^ (uint32_t)w)) return (void *)2;
      }
      walloc_pool_free(shared_pool, o);
    }
    pthread_barrier_wait(&ring_step); /* every batch is back before the next round */
  }
  return NULL;
}

START_TEST(magazines_cross_threads) {
  WL_WASM_SKIP_THREADS();
  shared_pool = walloc_pool_create(RING_OBJ, 8);
  ck_assert_ptr_nonnull(shared_pool);
  pthread_barrier_init(&ring_step, NULL, RING_THREADS);
  uint64_t m0 = 0;
  for (int run = 0; run < 2; run++) { /* a short run first: the threads' heaps map their segments */
    ring_rounds = run == 0 ? 3 : RING_ROUNDS;
    if (run == 1) m0 = wl_test_mapped_bytes();
    wl_test_run_workers(RING_THREADS, ring_worker, "thread");
  }
  /* 400 rounds of 2800 live objects (200 KiB) did not keep mapping slabs */
  ck_assert_msg(wl_test_mapped_bytes() <= m0 + 2 * MiB, "mapped %llu, %llu before", (unsigned long long)wl_test_mapped_bytes(),
                (unsigned long long)m0);
  /* everything came back (the exits flushed the magazines): distinct objects */
  enum { N = RING_THREADS * RING_BATCH };
  static void *ptrs[N];
  for (int i = 0; i < N; i++) ck_assert_ptr_nonnull(ptrs[i] = walloc_pool_alloc(shared_pool));
  ck_assert(disjoint(ptrs, N, RING_OBJ));
  for (int i = 0; i < N; i++) walloc_pool_free(shared_pool, ptrs[i]);
  pthread_barrier_destroy(&ring_step);
  walloc_pool_destroy(shared_pool);
}
END_TEST

/* Two threads on one pool, each allocating and then freeing its own objects
   every round, at the same time (as bench-lifetimes pool does). Once they
   have settled, neither may touch the other's share of the pool: no
   magazine (full or empty) goes from one to the other (magazines_taken
   stays put) and no object changes hands (each object carries, past the
   pool's two words, the id of the last thread that had it and the round it
   had it in). An object the other thread had before they settled is not a
   change of hands after it: a magazine taken in the last round before,
   still in the taker's cache, is used after (under wasm pthreads, whose
   threads run in coarse turns, 254 objects of one such magazine were
   counted 2 times in about 12 runs when the round was not looked at).
   Between the first thread's first use of pools and the second's, 7 other
   threads use a pool and exit: the second thread must still get a share of
   its own. */
enum { OWN_OBJECTS = 4096, OWN_WARM = 6, OWN_ROUNDS = 40, OWN_SIZE = 64, OWN_TRANSIENT = 7 };
static pthread_barrier_t own_step, own_started;
static uint64_t own_taken_settled;
static _Atomic(long) own_crossed;

static void *transient_user(void *arg) {
  (void)arg;
  void *o = walloc_pool_alloc(shared_pool);
  walloc_pool_free(shared_pool, o);
  return o == NULL ? (void *)1 : NULL;
}

static void *own_worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint64_t **objs = malloc(OWN_OBJECTS * sizeof *objs);
  if (objs == NULL) return (void *)1;
  walloc_pool_free(shared_pool, walloc_pool_alloc(shared_pool)); /* its first use of pools */
  pthread_barrier_wait(&own_started); /* the test goes on */
  pthread_barrier_wait(&own_step);    /* both workers here */
  for (int round = 0; round < OWN_WARM + OWN_ROUNDS; round++) {
    if (round == OWN_WARM) { /* settled: the count before, read while both wait */
      pthread_barrier_wait(&own_step);
      walloc_pool_stats st;
      if (id == 1 && walloc_pool_stats_get(shared_pool, &st) != WALLOC_OK) return (void *)2;
      if (id == 1) own_taken_settled = st.magazines_taken;
      pthread_barrier_wait(&own_step);
    }
    for (int i = 0; i < OWN_OBJECTS; i++) {
      uint64_t *o = walloc_pool_alloc(shared_pool);
      if (o == NULL) return (void *)3;
      if (round >= OWN_WARM && o[3] >= OWN_WARM && o[2] != 0 && o[2] != id) atomic_fetch_add(&own_crossed, 1);
      o[2] = id;
      o[3] = (uint64_t)round;
      o[7] = (uintptr_t)o;
      objs[i] = o;
    }
    for (int i = 0; i < OWN_OBJECTS; i++) {
      if (objs[i][7] != (uintptr_t)objs[i]) return (void *)4;
      walloc_pool_free(shared_pool, objs[i]);
    }
  }
  free(objs);
  return NULL;
}

START_TEST(threads_on_their_own_objects_share_nothing) {
  WL_WASM_SKIP_THREADS();
  shared_pool = walloc_pool_create(OWN_SIZE, 16);
  ck_assert_ptr_nonnull(shared_pool);
  pthread_barrier_init(&own_step, NULL, 2);    /* the two workers */
  pthread_barrier_init(&own_started, NULL, 2); /* the test and the worker just started */
  pthread_t w[2], t;
  void *ret;
  for (uintptr_t id = 1; id <= 2; id++) {
    ck_assert_int_eq(pthread_create(&w[id - 1], NULL, own_worker, (void *)id), 0);
    pthread_barrier_wait(&own_started); /* it has used a pool */
    for (int k = 0; id == 1 && k < OWN_TRANSIENT; k++) {
      ck_assert_int_eq(pthread_create(&t, NULL, transient_user, NULL), 0);
      pthread_join(t, &ret);
      ck_assert_ptr_null(ret);
    }
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(w[i], &ret);
    ck_assert_msg(ret == NULL, "thread %d failed with %ld", i + 1, (long)(intptr_t)ret);
  }
  walloc_pool_stats st;
  ck_assert_int_eq(walloc_pool_stats_get(shared_pool, &st), WALLOC_OK);
  ck_assert_msg(atomic_load(&own_crossed) == 0, "%ld objects came from the other thread after settling",
                (long)atomic_load(&own_crossed));
  ck_assert_msg(st.magazines_taken == own_taken_settled,
                "%llu magazines went between the threads in %d rounds after they settled (%llu before)",
                (unsigned long long)(st.magazines_taken - own_taken_settled), OWN_ROUNDS,
                (unsigned long long)own_taken_settled);
  ck_assert_uint_eq(st.object_size, OWN_SIZE);
  ck_assert_uint_ge(st.objects, OWN_OBJECTS); /* (twice that unless the threads never ran at once) */
  ck_assert_uint_ge(st.slab_bytes, st.objects * OWN_SIZE);
  pthread_barrier_destroy(&own_step);
  pthread_barrier_destroy(&own_started);
  walloc_pool_destroy(shared_pool);
}
END_TEST

/* ------------------------------------------------------------------------
   Destroy and thread exit
   ------------------------------------------------------------------------ */
START_TEST(destroy_releases_everything) {
  for (int warm = 0; warm < 2; warm++) { /* the registry and the slab map set themselves up */
    walloc_pool *p = walloc_pool_create(100, 16);
    for (int i = 0; i < 100; i++) walloc_pool_free(p, walloc_pool_alloc(p));
    walloc_pool_destroy(p);
  }
  uint64_t m0 = wl_test_mapped_bytes();
  uint64_t rng = 5;
  for (int round = 0; round < 3000; round++) {
    size_t size = 1 + (size_t)(wl_test_rand(&rng) % 3000);
    walloc_pool *p = walloc_pool_create(size, (size_t)1 << (wl_test_rand(&rng) % 8));
    ck_assert_ptr_nonnull(p);
    int n = 1 + (int)(wl_test_rand(&rng) % 300);
    void *keep = NULL;
    for (int i = 0; i < n; i++) {
      void *o = walloc_pool_alloc(p);
      ck_assert_ptr_nonnull(o);
      memset(o, 1, size);
      if (i & 1) walloc_pool_free(p, o);
      else keep = o;
    }
    (void)keep; /* live objects go with the pool */
    walloc_pool_destroy(p);
    ck_assert_msg(wl_test_mapped_bytes() <= m0 + MiB, "round %d: mapped %llu, %llu before", round,
                  (unsigned long long)wl_test_mapped_bytes(), (unsigned long long)m0);
  }
}
END_TEST

/* Another thread's cache holds objects of a pool that is destroyed; the
   pool's index is reused; that thread must not get the old objects. */
static pthread_barrier_t step;
static walloc_pool *first_pool, *second_pool;
static void *first_objects[64];
static void *cache_holder(void *arg) {
  (void)arg;
  void **objs = first_objects;
  for (int i = 0; i < 64; i++) objs[i] = walloc_pool_alloc(first_pool);
  for (int i = 0; i < 64; i++) walloc_pool_free(first_pool, objs[i]); /* now in this thread's cache */
  pthread_barrier_wait(&step); /* main destroys first_pool and creates second_pool */
  pthread_barrier_wait(&step);
  for (int i = 0; i < 64; i++) {
    uint8_t *o = walloc_pool_alloc(second_pool);
    if (o == NULL) return (void *)1;
    for (int j = 0; j < 64; j++) {
      if (o == objs[j]) return (void *)2; /* an object of the destroyed pool */
    }
    memset(o, 9, 32);
    objs[i] = o;
  }
  for (int i = 0; i < 64; i++) walloc_pool_free(second_pool, objs[i]);
  return NULL; /* the exit flush gives them to second_pool */
}

START_TEST(destroy_with_objects_in_other_threads_caches) {
  WL_WASM_SKIP("threads and mmap(MAP_FIXED_NOREPLACE): the wasm build is single-threaded and has no mmap");
  pthread_barrier_init(&step, NULL, 2);
  first_pool = walloc_pool_create(32, 16);
  pthread_t t;
  pthread_create(&t, NULL, cache_holder, NULL);
  pthread_barrier_wait(&step);
  walloc_pool_destroy(first_pool); /* unmaps the slab the cached objects live in */
  /* keep the hole unusable: reading a stale cached object faults, and the
     next slab cannot land at the same address */
  uintptr_t slab = (uintptr_t)first_objects[0] & ~(uintptr_t)0xFFFF;
  void *hole = mmap((void *)slab, 64 * KiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ck_assert_ptr_eq(hole, (void *)slab);
  second_pool = walloc_pool_create(32, 16);
  pthread_barrier_wait(&step);
  void *ret;
  pthread_join(t, &ret);
  ck_assert_ptr_null(ret);
  void *ptrs[200];
  for (int i = 0; i < 200; i++) {
    ptrs[i] = walloc_pool_alloc(second_pool);
    ck_assert_ptr_nonnull(ptrs[i]);
    memset(ptrs[i], 3, 32);
  }
  ck_assert(disjoint(ptrs, 200, 32));
  walloc_pool_destroy(second_pool);
}
END_TEST

/* A thread exiting with objects in its cache while the pool is destroyed. */
static void *free_and_exit(void *arg) {
  walloc_pool *p = arg;
  void *o[40];
  for (int i = 0; i < 40; i++) o[i] = walloc_pool_alloc(p);
  for (int i = 0; i < 40; i++) walloc_pool_free(p, o[i]);
  return NULL;
}

START_TEST(destroy_racing_thread_exits) {
  WL_WASM_SKIP_THREADS();
  for (int round = 0; round < 200; round++) {
    walloc_pool *p = walloc_pool_create(64, 16);
    ck_assert_ptr_nonnull(p);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, free_and_exit, p);
    /* wait until the workers are done with the pool (not until they exit) */
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    walloc_pool_destroy(p);
  }
  /* and destroy while exits are in flight: threads whose caches are stale */
  for (int round = 0; round < 200; round++) {
    walloc_pool *p = walloc_pool_create(64, 16);
    free_and_exit(p);
    pthread_t t;
    pthread_create(&t, NULL, free_and_exit, p);
    pthread_join(t, NULL);
    walloc_pool *q = walloc_pool_create(64, 16); /* may take p's index after destroy */
    walloc_pool_destroy(p);
    pthread_create(&t, NULL, free_and_exit, q);
    pthread_join(t, NULL);
    walloc_pool_destroy(q);
  }
}
END_TEST

static walloc_pool *exit_pool;
static void *use_and_exit(void *arg) {
  (void)arg;
  void *o[64];
  for (int i = 0; i < 64; i++) {
    o[i] = walloc_pool_alloc(exit_pool);
    if (o[i] == NULL) return (void *)1;
    memset(o[i], 5, 1024);
  }
  for (int i = 0; i < 64; i++) walloc_pool_free(exit_pool, o[i]);
  return NULL;
}

START_TEST(thread_exit_flushes_caches) {
  WL_WASM_SKIP_THREADS();
  exit_pool = walloc_pool_create(1024, 16);
  pthread_t t;
  pthread_create(&t, NULL, use_and_exit, NULL);
  pthread_join(t, NULL);
  uint64_t m0 = wl_test_mapped_bytes();
  /* 400 threads each leave objects in their cache: without the flush at
     exit that is 400 x 32+ KiB lost, and new slabs every few threads */
  for (int i = 0; i < 400; i++) {
    void *ret;
    pthread_create(&t, NULL, use_and_exit, NULL);
    pthread_join(t, &ret);
    ck_assert_ptr_null(ret);
  }
  ck_assert_msg(wl_test_mapped_bytes() <= m0 + 4 * MiB, "mapped %llu, %llu before", (unsigned long long)wl_test_mapped_bytes(),
                (unsigned long long)m0);
  walloc_pool_destroy(exit_pool);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("pool");
  WL_TCASE(s, "basics", 60, bad_arguments, every_size_and_alignment, freed_objects_are_reused);
  WL_TCASE(s, "misuse", 60, foreign_and_double_frees_are_refused);
  WL_TCASE(s, "threads", 120, objects_freed_by_another_thread, one_pool_in_twelve_threads, magazines_cross_threads,
           threads_on_their_own_objects_share_nothing);
  WL_TCASE(s, "destroy", 120, destroy_releases_everything, destroy_with_objects_in_other_threads_caches,
           destroy_racing_thread_exits, thread_exit_flushes_caches);
  return s;
}
