/* bench-server: a server-like mix of sizes and lifetimes over several threads.
 *
 * Per request a thread allocates 4-8 small buffers (16 B - 2 KiB), 1-2 medium
 * ones (4-64 KiB) and, one request in 32, a large one (256 KiB - 1 MiB), fills
 * them and checks them. Most die with the request; one small buffer per
 * request and a quarter of the medium ones go into a per-thread ring of
 * RETAIN slots (so they live ~RETAIN requests); one request in 8 hands a small
 * buffer to a shared pool, from which whichever thread pushes past the pool's
 * high-water mark frees the oldest entry (usually another thread's).
 *
 * usage: bench-server [THREADS=8] [REQUESTS=150000] [RETAIN=100]
 *        (REQUESTS per thread) */
#include "bench_common.h"

#define POOL_CAP 4096
#define POOL_HIGH 512

static struct {
  pthread_mutex_t mu;
  void *ring[POOL_CAP];
  long head, count;
  uint64_t pushed, freed;
} pool = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, 0, 0};

/* Push p; returns the oldest entry to free when the pool is over its mark. */
static void *pool_push(void *p)
{
  void *old = NULL;
  pthread_mutex_lock(&pool.mu);
  if (pool.count >= POOL_HIGH) {
    old = pool.ring[pool.head];
    pool.head = (pool.head + 1) % POOL_CAP;
    pool.count--;
    pool.freed++;
  }
  pool.ring[(pool.head + pool.count) % POOL_CAP] = p;
  pool.count++;
  pool.pushed++;
  pthread_mutex_unlock(&pool.mu);
  return old;
}

typedef struct {
  long id, requests, retain;
  uint64_t bytes;
} targ_t;

#define MAX_REQ_BLOCKS 16

static void *alloc_fill(rng_t *r, size_t lo, size_t hi, uint64_t key, uint64_t *bytes)
{
  size_t n = rng_logsize(r, lo, hi);
  void *p = bench_malloc(n);
  blk_fill(p, n, key);
  *bytes += n;
  return p;
}

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 3000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;
  void **ring = (void **)calloc((size_t)a->retain, sizeof(void *));
  if (ring == NULL)
    bench_fail("calloc failed");
  long rpos = 0;

  for (long q = 0; q < a->requests; q++) {
    void *blk[MAX_REQ_BLOCKS];
    int nb = 0;
    int nsmall = (int)rng_range(&r, 4, 8);
    for (int i = 0; i < nsmall; i++)
      blk[nb++] = alloc_fill(&r, 16, 2048, key++, &a->bytes);
    int nmed = (int)rng_range(&r, 1, 2);
    for (int i = 0; i < nmed; i++)
      blk[nb++] = alloc_fill(&r, 4096, 65536, key++, &a->bytes);
    if (rng_below(&r, 32) == 0)
      blk[nb++] = alloc_fill(&r, 262144, 1048576, key++, &a->bytes);

    /* the "work": read everything back */
    for (int i = 0; i < nb; i++)
      blk_check_self("server request", blk[i]);

    /* keep some for ~RETAIN requests: the first small one, sometimes a medium one */
    int keep_med = rng_below(&r, 4) == 0;
    for (int i = 0; i < nb; i++) {
      void *p = blk[i];
      if (i == 0 || (keep_med && i == nsmall)) {
        void *old = ring[rpos];
        ring[rpos] = p;
        rpos = (rpos + 1) % a->retain;
        if (old == NULL)
          continue;
        p = old;
      } else if (i == 1 && rng_below(&r, 8) == 0) {
        p = pool_push(p);
        if (p == NULL)
          continue;
      }
      blk_check_self("server free", p);
      free(p);
    }
  }
  for (long i = 0; i < a->retain; i++) {
    if (ring[i] != NULL) {
      blk_check_self("server retained", ring[i]);
      free(ring[i]);
    }
  }
  free(ring);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=8] [REQUESTS=150000] [RETAIN=100]  (REQUESTS per thread)");
  long threads = arg_long(argc, argv, 1, 8, "THREADS");
  long requests = arg_long(argc, argv, 2, 150000, "REQUESTS");
  long retain = arg_long(argc, argv, 3, 100, "RETAIN");

  targ_t *a = (targ_t *)bench_malloc((size_t)threads * sizeof *a);
  for (long i = 0; i < threads; i++)
    a[i] = (targ_t){i, requests, retain, 0};
  double t0 = now_s();
  run_threads(threads, worker, a, sizeof *a);
  /* drain the shared pool */
  while (pool.count > 0) {
    void *p = pool.ring[pool.head];
    pool.head = (pool.head + 1) % POOL_CAP;
    pool.count--;
    pool.freed++;
    blk_check_self("server pool drain", p);
    free(p);
  }
  double t = now_s() - t0;
  uint64_t bytes = 0;
  for (long i = 0; i < threads; i++)
    bytes += a[i].bytes;
  free(a);
  if (pool.freed != pool.pushed)
    bench_fail("server: pool pushed %" PRIu64 " freed %" PRIu64, pool.pushed, pool.freed);
  printf("bench-server: threads=%ld requests=%ld retain=%ld allocated=%.1fMiB pooled=%" PRIu64
         " time=%.3fs us/request=%.2f ok\n",
         threads, requests, retain, (double)bytes / 1048576.0, pool.pushed, t,
         t * 1e6 / ((double)requests * (double)threads));
  return 0;
}
