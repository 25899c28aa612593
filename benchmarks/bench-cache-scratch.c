/* bench-cache-scratch: passive false sharing (after the published
 * description of Hoard's cache-scratch). The main thread mallocs one small
 * object (8-64 B) per worker, one after the other (so they likely share
 * cache lines), and hands one to each worker. A worker checks and frees it
 * first, then loops: malloc a small object, write each byte REPEAT times,
 * check, free. An allocator that gives the freed object back to the worker
 * that freed it makes the workers write into one cache line.
 *
 * ITERS is the total over all threads (constant across thread counts).
 *
 * usage: bench-cache-scratch [THREADS=2] [ITERS=100000] [REPEAT=400] */
#include "bench_cache.h"

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=2] [ITERS=100000] [REPEAT=400]  (ITERS in total)");
  long nt = arg_long(argc, argv, 1, 2, "THREADS");
  long iters = arg_long(argc, argv, 2, 100000, "ITERS");
  long repeat = arg_long(argc, argv, 3, 400, "REPEAT");
  blk_t *given = (blk_t *)bench_malloc((size_t)nt * sizeof *given);
  rng_t r;
  rng_seed(&r, 12000);
  for (long i = 0; i < nt; i++)
    blk_new(&given[i], (size_t)rng_range(&r, 8, 64), (uint64_t)i + 1);
  double t = cache_run(nt, iters, repeat, given);
  free(given);
  printf("bench-cache-scratch: threads=%ld iters=%ld repeat=%ld time=%.3fs ok\n", nt, iters, repeat, t);
  return 0;
}
