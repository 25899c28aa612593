/* bench-large-touch: a live set of large blocks, every page touched.
 *
 * LIVE slots (split among the threads); per iteration a random slot's block
 * is checked and freed and a new one of 64 KiB - 16 MiB (log-uniform) is
 * allocated there and written page by page (one byte per 4 KiB, as
 * blk_fill does), so the live set grows towards LIVE blocks (3 MiB each
 * on average: 600 iterations leave about 350 live, about 1 GiB) while
 * being replaced at random. At the end all are freed.
 * One thread by default; with THREADS > 1 the iterations and slots are
 * split among them.
 *
 * ITERS is the total over all threads (constant across thread counts).
 *
 * usage: bench-large-touch [THREADS=1] [ITERS=600] [LIVE=500] */
#include "bench_common.h"

typedef struct {
  long id, iters, nlive;
  uint64_t bytes;
} targ_t;

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 13000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;
  void **live = (void **)calloc((size_t)a->nlive, sizeof *live);
  if (live == NULL)
    bench_fail("calloc failed");
  for (long i = 0; i < a->iters; i++) {
    long k = (long)rng_below(&r, (uint64_t)a->nlive);
    blk_drop_self("large-touch replace", live[k]);
    size_t n = rng_logsize(&r, 65536, 16u << 20);
    live[k] = blk_new_self(n, key++);
    a->bytes += n;
  }
  for (long k = 0; k < a->nlive; k++)
    blk_drop_self("large-touch final", live[k]);
  free(live);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=1] [ITERS=600] [LIVE=500]  (ITERS and LIVE in total)");
  long nt = arg_long(argc, argv, 1, 1, "THREADS");
  long iters = arg_long(argc, argv, 2, 600, "ITERS");
  long nlive = arg_long(argc, argv, 3, 500, "LIVE");
  if (nlive < nt)
    nlive = nt;
  targ_t *a = (targ_t *)bench_malloc((size_t)nt * sizeof *a);
  for (long i = 0; i < nt; i++)
    a[i] = (targ_t){i, share_of(iters, nt, i), share_of(nlive, nt, i), 0};
  double t;
  if (nt == 1) { /* on the main thread: single-threaded for real */
    t = now_s();
    worker(a);
    t = now_s() - t;
  } else {
    t = run_threads_timed(nt, worker, a, sizeof *a);
  }
  uint64_t bytes = 0;
  for (long i = 0; i < nt; i++)
    bytes += a[i].bytes;
  free(a);
  printf("bench-large-touch: threads=%ld iters=%ld live=%ld allocated=%.0fMiB time=%.3fs ok\n", nt, iters,
         nlive, (double)bytes / 1048576.0, t);
  return 0;
}
