/* bench-lifetimes: per-object cost of frame arenas and pools against
 * malloc + free of the same objects.
 *
 *   frame         each frame every thread allocates N objects of 16 to 256
 *                 bytes (a fixed pseudo-random sequence) with
 *                 walloc_frame_alloc, then walloc_frame_end
 *   malloc-frame  the same objects with malloc, then free of each
 *   pool          each round every thread allocates N objects of SIZE bytes
 *                 from one pool shared by all threads, then frees them all
 *   malloc-pool   the same with malloc(SIZE) and free
 *   pool-private  the pool mode with a pool per thread: the same work with
 *                 nothing shared, what two threads on one pool should cost
 *   scope         each round every thread enters a scope in the entity tier,
 *                 allocates the frame mode's objects with walloc_scope_allocate
 *                 (each touched through walloc_handle_to_ptr) and leaves it;
 *                 compare with malloc-frame
 *   scope-enter   N times per round: enter a scope, allocate one 64-byte
 *                 block, leave (ns per enter + allocate + leave)
 *   ring          each round every thread begins a frame in its own ring
 *                 (entity tier, 8 MiB), allocates the frame mode's objects
 *                 with walloc_ring_allocate (each touched through its
 *                 handle) and retires the previous frame: the ring's locked
 *                 allocation path; the ring holds 4 x N x 256 bytes, at
 *                 least 8 MiB, so that two frames of N objects fit
 *   context       each round every thread allocates the frame mode's objects
 *                 from its own context (entity tier, each touched through its
 *                 handle), then resets it: a context only its creating thread
 *                 allocates from, which bumps without the lock
 *   context-shared  the same, with each context allocated from once by
 *                 another thread first: the shared context's locked path
 *   tier          the same objects with walloc_allocate in the entity tier,
 *                 each touched through walloc_handle_to_ptr, then one
 *                 walloc_reset_tier per round (by one thread, between
 *                 barriers): the path the scope, ring and context modes are
 *                 measured against
 *
 * The malloc modes are run under LD_PRELOAD of the allocator to compare
 * (benchmarks/run_lifetimes.py). Linked with libwalloc.a, which does not
 * replace malloc. Every object's first and last byte are written and checked
 * in the timed loop (a frame's objects must be usable and distinct).
 * Prints ns per object (allocation plus its share of the release) of the
 * slowest thread, over ROUNDS rounds after one untimed warm-up round.
 *
 * usage: bench-lifetimes frame|malloc-frame|pool|malloc-pool|scope|scope-enter|ring|context|tier|pool-private|context-shared
 *                        [N=10000] [ROUNDS=300] [THREADS=1] [SIZE=64]
 */
#include "bench_common.h"
#include "walloc.h"

enum { MODE_FRAME, MODE_MALLOC_FRAME, MODE_POOL, MODE_MALLOC_POOL, MODE_SCOPE, MODE_SCOPE_ENTER, MODE_RING,
       MODE_CONTEXT, MODE_TIER, MODE_POOL_PRIVATE, MODE_CONTEXT_SHARED, MODES };
static const char *const mode_names[] = {"frame", "malloc-frame", "pool", "malloc-pool",
                                   "scope", "scope-enter",  "ring", "context", "tier", "pool-private", "context-shared"};

typedef struct {
  long id, n, rounds, size;
  int mode;
  double seconds;
} life_arg_t;

static pthread_barrier_t start_barrier;
static walloc_pool *pool;

/* The pool modes: every object SIZE bytes. */
static bool sizes_fixed(int mode) { return mode == MODE_POOL || mode == MODE_MALLOC_POOL || mode == MODE_POOL_PRIVATE; }

static void touch(unsigned char *p, size_t size, long i) {
  p[0] = (unsigned char)i;
  p[size - 1] = (unsigned char)(i >> 3);
}
static void check(const unsigned char *p, size_t size, long i, long round) {
  if (p[0] != (unsigned char)i || p[size - 1] != (unsigned char)(i >> 3)) {
    bench_fail("round %ld: object %ld overwritten", round, i);
  }
}

static void *allocate_once(void *ctx) {
  if (walloc_context_allocate((walloc_context *)ctx, 16) == WALLOC_NULL_HANDLE) bench_fail("context allocation failed");
  return NULL;
}

static void *life_worker(void *arg) {
  life_arg_t *a = (life_arg_t *)arg;
  size_t *sizes = (size_t *)bench_malloc((size_t)a->n * sizeof *sizes);
  unsigned char **ptrs = (unsigned char **)bench_malloc((size_t)a->n * sizeof *ptrs);
  rng_t r;
  rng_seed(&r, 9000 + (uint64_t)a->id);
  for (long i = 0; i < a->n; i++) {
    sizes[i] = sizes_fixed(a->mode) ? (size_t)a->size : (size_t)rng_range(&r, 16, 256);
  }
  size_t ring_bytes = (size_t)a->n * 256 * 4 > ((size_t)8 << 20) ? (size_t)a->n * 256 * 4 : (size_t)8 << 20;
  walloc_ring *ring = a->mode == MODE_RING ? walloc_ring_create(WALLOC_TIER_ENTITY, ring_bytes) : NULL;
  bool with_ctx = a->mode == MODE_CONTEXT || a->mode == MODE_CONTEXT_SHARED;
  walloc_context *ctx = with_ctx ? walloc_context_create(WALLOC_TIER_ENTITY, NULL) : NULL;
  if (a->mode == MODE_CONTEXT_SHARED && ctx != NULL) { /* another thread allocates once: the context is shared */
    pthread_t t;
    if (pthread_create(&t, NULL, allocate_once, ctx) != 0 || pthread_join(t, NULL) != 0) bench_fail("pthread");
  }
  walloc_pool *own = a->mode == MODE_POOL_PRIVATE ? walloc_pool_create((size_t)a->size, 16) : pool;
  if (a->mode == MODE_POOL_PRIVATE && own == NULL) bench_fail("pool_create failed");
  if ((a->mode == MODE_RING && ring == NULL) || (with_ctx && ctx == NULL)) {
    bench_fail("ring or context creation failed");
  }
  double t0 = 0;
  for (long f = 0; f <= a->rounds; f++) {
    if (f == 1) { /* frame 0 is not timed: the tiers' and heaps' first use (about 15 ms) is no per-object cost */
      pthread_barrier_wait(&start_barrier);
      t0 = now_s();
    }
    switch (a->mode) {
    case MODE_FRAME:
      walloc_frame_begin();
      for (long i = 0; i < a->n; i++) {
        ptrs[i] = (unsigned char *)walloc_frame_alloc(sizes[i], 16);
        if (ptrs[i] == NULL) bench_fail("frame %ld: allocation %ld failed", f, i);
        touch(ptrs[i], sizes[i], i);
      }
      for (long i = 0; i < a->n; i++) check(ptrs[i], sizes[i], i, f);
      walloc_frame_end();
      break;
    case MODE_SCOPE: {
      walloc_scope *scope = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
      if (scope == NULL) bench_fail("round %ld: scope_enter failed", f);
      for (long i = 0; i < a->n; i++) {
        walloc_handle h = walloc_scope_allocate(scope, sizes[i]);
        ptrs[i] = (unsigned char *)walloc_handle_to_ptr(h);
        if (ptrs[i] == NULL) bench_fail("round %ld: scope allocation %ld failed", f, i);
        touch(ptrs[i], sizes[i], i);
      }
      for (long i = 0; i < a->n; i++) check(ptrs[i], sizes[i], i, f);
      walloc_scope_leave(scope);
      break;
    }
    case MODE_TIER:
      for (long i = 0; i < a->n; i++) {
        ptrs[i] = (unsigned char *)walloc_handle_to_ptr(walloc_allocate(sizes[i], WALLOC_TIER_ENTITY));
        if (ptrs[i] == NULL) bench_fail("round %ld: tier allocation %ld failed", f, i);
        touch(ptrs[i], sizes[i], i);
      }
      for (long i = 0; i < a->n; i++) check(ptrs[i], sizes[i], i, f);
      pthread_barrier_wait(&start_barrier); /* every thread is done with its objects */
      if (a->id == 0 && walloc_reset_tier(WALLOC_TIER_ENTITY) != WALLOC_OK) bench_fail("reset failed");
      pthread_barrier_wait(&start_barrier);
      break;
    case MODE_RING:
    case MODE_CONTEXT:
    case MODE_CONTEXT_SHARED:
      if (ring != NULL && walloc_ring_begin_frame(ring, (uint64_t)f + 1) != WALLOC_OK) bench_fail("begin_frame");
      for (long i = 0; i < a->n; i++) {
        walloc_handle h = ring != NULL ? walloc_ring_allocate(ring, sizes[i]) : walloc_context_allocate(ctx, sizes[i]);
        ptrs[i] = (unsigned char *)walloc_handle_to_ptr(h);
        if (ptrs[i] == NULL) bench_fail("round %ld: allocation %ld failed", f, i);
        touch(ptrs[i], sizes[i], i);
      }
      for (long i = 0; i < a->n; i++) check(ptrs[i], sizes[i], i, f);
      if (ring != NULL) walloc_ring_retire(ring, (uint64_t)f); /* the previous frame */
      else walloc_context_reset(ctx);
      break;
    case MODE_SCOPE_ENTER:
      for (long i = 0; i < a->n; i++) {
        walloc_scope *scope = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
        if (scope == NULL || walloc_scope_allocate(scope, 64) == WALLOC_NULL_HANDLE) {
          bench_fail("round %ld: scope %ld failed", f, i);
        }
        walloc_scope_leave(scope);
      }
      break;
    case MODE_POOL:
    case MODE_POOL_PRIVATE:
      for (long i = 0; i < a->n; i++) {
        ptrs[i] = (unsigned char *)walloc_pool_alloc(own);
        if (ptrs[i] == NULL) bench_fail("round %ld: pool allocation %ld failed", f, i);
        touch(ptrs[i], sizes[i], i);
      }
      for (long i = 0; i < a->n; i++) {
        check(ptrs[i], sizes[i], i, f);
        walloc_pool_free(own, ptrs[i]);
      }
      break;
    default: /* malloc-frame, malloc-pool */
      for (long i = 0; i < a->n; i++) {
        ptrs[i] = (unsigned char *)malloc(sizes[i]);
        if (ptrs[i] == NULL) bench_fail("round %ld: malloc %ld failed", f, i);
        touch(ptrs[i], sizes[i], i);
      }
      for (long i = 0; i < a->n; i++) {
        check(ptrs[i], sizes[i], i, f);
        free(ptrs[i]);
      }
      break;
    }
  }
  a->seconds = now_s() - t0;
  if (ring != NULL) walloc_ring_destroy(ring);
  if (ctx != NULL) walloc_context_release(ctx);
  if (own != pool) walloc_pool_destroy(own);
  free(sizes);
  free(ptrs);
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage =
      "frame|malloc-frame|pool|malloc-pool|scope|scope-enter|ring|context|tier|pool-private|context-shared [N=10000] [ROUNDS=300] [THREADS=1] [SIZE=64]";
  int mode = mode_arg(argc, argv, mode_names, MODES, usage);
  long n = arg_long(argc, argv, 2, 10000, "N");
  long rounds = arg_long(argc, argv, 3, 300, "ROUNDS");
  long threads = arg_long(argc, argv, 4, 1, "THREADS");
  long size = arg_long(argc, argv, 5, 64, "SIZE");
  if (mode == MODE_POOL && (pool = walloc_pool_create((size_t)size, 16)) == NULL) bench_fail("pool_create failed");
  pthread_barrier_init(&start_barrier, NULL, (unsigned)threads);
  life_arg_t *args = (life_arg_t *)calloc((size_t)threads, sizeof *args);
  for (long i = 0; i < threads; i++) args[i] = (life_arg_t){i, n, rounds, size, mode, 0};
  double t0 = now_s();
  run_threads(threads, life_worker, args, sizeof *args);
  double wall = now_s() - t0;
  double worst = 0;
  for (long i = 0; i < threads; i++) worst = args[i].seconds > worst ? args[i].seconds : worst;
  double objects = (double)n * (double)rounds * (double)threads;
  printf("bench-lifetimes: mode=%s n=%ld rounds=%ld threads=%ld size=%ld time=%.3fs ns_per_object=%.2f "
         "objects_per_second=%.0f ok\n",
         argv[1], n, rounds, threads, sizes_fixed(mode) ? size : 0, wall,
         worst * 1e9 / ((double)n * (double)rounds), objects / worst);
  if (pool != NULL) walloc_pool_destroy(pool);
  free(args);
  return 0;
}
