/* bench-large: large blocks.
 *
 * Each thread loops: malloc a block of 64 KiB - 32 MiB (log-uniform, not page
 * aligned), write one byte per 4 KiB page (and its ends), then either check
 * and free it at once or, one time in four, put it into a small per-thread
 * ring of RING blocks and free the block it evicts. This is what the OS
 * interface of an allocator (mmap/munmap, caching, page reuse) costs.
 *
 * usage: bench-large [THREADS=2] [ITERS=700] [RING=8]  (ITERS per thread) */
#include "bench_common.h"

typedef struct {
  unsigned char *p;
  size_t n;
  uint64_t key;
} big_t;

static void touch(big_t *b)
{
  unsigned char v = pat_byte(b->key);
  for (size_t o = 0; o < b->n; o += BLK_PAGE)
    b->p[o] = (unsigned char)(v + (o >> 12));
  memcpy(b->p, &b->key, sizeof b->key);
  b->p[b->n - 1] = v;
}

static void check(const char *where, const big_t *b)
{
  unsigned char v = pat_byte(b->key);
  uint64_t k;
  memcpy(&k, b->p, sizeof k);
  if (k != b->key)
    bench_fail("%s: block %p size %zu: key %#llx, expected %#llx", where, (void *)b->p, b->n,
               (unsigned long long)k, (unsigned long long)b->key);
  for (size_t o = BLK_PAGE; o < b->n; o += BLK_PAGE)
    if (b->p[o] != (unsigned char)(v + (o >> 12)) && o != b->n - 1)
      bench_fail("%s: block %p size %zu: byte %zu is %#x, expected %#x", where, (void *)b->p,
                 b->n, o, b->p[o], (unsigned char)(v + (o >> 12)));
  if (b->p[b->n - 1] != v)
    bench_fail("%s: block %p size %zu: last byte is %#x, expected %#x", where, (void *)b->p, b->n,
               b->p[b->n - 1], v);
}

typedef struct {
  long id, iters, ring;
  uint64_t bytes;
} targ_t;

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 5000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;
  big_t *ring = (big_t *)calloc((size_t)a->ring, sizeof *ring);
  if (ring == NULL)
    bench_fail("calloc failed");
  long rpos = 0;
  for (long i = 0; i < a->iters; i++) {
    big_t b;
    b.n = rng_logsize(&r, (size_t)64 << 10, (size_t)32 << 20) + (size_t)rng_below(&r, 4096);
    b.p = (unsigned char *)bench_malloc(b.n);
    b.key = key++;
    touch(&b);
    a->bytes += b.n;
    if (rng_below(&r, 4) == 0) {
      big_t old = ring[rpos];
      ring[rpos] = b;
      rpos = (rpos + 1) % a->ring;
      if (old.p == NULL)
        continue;
      b = old;
    }
    check("large", &b);
    free(b.p);
  }
  for (long i = 0; i < a->ring; i++) {
    if (ring[i].p != NULL) {
      check("large ring", &ring[i]);
      free(ring[i].p);
    }
  }
  free(ring);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=2] [ITERS=700] [RING=8]  (ITERS per thread)");
  long threads = arg_long(argc, argv, 1, 2, "THREADS");
  long iters = arg_long(argc, argv, 2, 700, "ITERS");
  long ring = arg_long(argc, argv, 3, 8, "RING");

  targ_t *a = (targ_t *)bench_malloc((size_t)threads * sizeof *a);
  for (long i = 0; i < threads; i++)
    a[i] = (targ_t){i, iters, ring, 0};
  double t0 = now_s();
  run_threads(threads, worker, a, sizeof *a);
  double t = now_s() - t0;
  uint64_t bytes = 0;
  for (long i = 0; i < threads; i++)
    bytes += a[i].bytes;
  free(a);
  printf("bench-large: threads=%ld iters=%ld ring=%ld allocated=%.1fGiB time=%.3fs us/block=%.1f ok\n",
         threads, iters, ring, (double)bytes / 1073741824.0, t,
         t * 1e6 / ((double)iters * (double)threads));
  return 0;
}
