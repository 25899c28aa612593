/* bench-cache-thrash: active false sharing (after the published description
 * of Hoard's cache-thrash). Every thread repeatedly mallocs a small object
 * (8-64 B), writes each of its bytes REPEAT times, checks and frees it. An
 * allocator that gives objects sharing a cache line to different threads
 * makes those writes bounce the line between cores.
 *
 * ITERS is the total over all threads (constant across thread counts).
 *
 * usage: bench-cache-thrash [THREADS=2] [ITERS=100000] [REPEAT=400] */
#include "bench_cache.h"

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=2] [ITERS=100000] [REPEAT=400]  (ITERS in total)");
  long nt = arg_long(argc, argv, 1, 2, "THREADS");
  long iters = arg_long(argc, argv, 2, 100000, "ITERS");
  long repeat = arg_long(argc, argv, 3, 400, "REPEAT");
  double t = cache_run(nt, iters, repeat, NULL);
  printf("bench-cache-thrash: threads=%ld iters=%ld repeat=%ld time=%.3fs ok\n", nt, iters, repeat, t);
  return 0;
}
