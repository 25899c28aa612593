/* The loop bench-cache-thrash and bench-cache-scratch share (after the
 * published description of Hoard's two false-sharing benchmarks): malloc a
 * small object, write each of its bytes many times, check it, free it.
 * When the allocator hands objects in one cache line to different threads,
 * those writes bounce the line between the cores and the loop slows down. */
#ifndef BENCH_CACHE_H
#define BENCH_CACHE_H

#include "bench_common.h"

typedef struct {
  long id, iters, repeat;
  blk_t given; /* cache-scratch: the object the main thread handed over */
} cache_arg_t;

/* Write every byte of p[0..n) repeat times (through a volatile pointer, so
 * that each store happens), then the block's pattern. */
static void cache_hammer(void *p, size_t n, uint64_t key, long repeat)
{
  volatile unsigned char *c = (volatile unsigned char *)p;
  for (long r = 0; r < repeat; r++)
    for (size_t i = 0; i < n; i++)
      c[i] = (unsigned char)(c[i] + 1);
  blk_fill(p, n, key);
}

static void *cache_worker(void *arg)
{
  cache_arg_t *a = (cache_arg_t *)arg;
  blk_drop("cache handed over", &a->given);
  rng_t r;
  rng_seed(&r, 11000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;
  for (long i = 0; i < a->iters; i++) {
    blk_t b;
    blk_new(&b, (size_t)rng_range(&r, 8, 64), key++);
    cache_hammer(b.p, b.n, b.key, a->repeat);
    blk_drop("cache object", &b);
  }
  return NULL;
}

/* Runs the threads (given: objects to hand over, or NULL), returns seconds. */
static double cache_run(long nt, long iters, long repeat, const blk_t *given)
{
  cache_arg_t *a = (cache_arg_t *)bench_malloc((size_t)nt * sizeof *a);
  for (long i = 0; i < nt; i++)
    a[i] = (cache_arg_t){i, share_of(iters, nt, i), repeat, given ? given[i] : (blk_t){NULL, 0, 0}};
  double t = run_threads_timed(nt, cache_worker, a, sizeof *a);
  free(a);
  return t;
}

#endif
