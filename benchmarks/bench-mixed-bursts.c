/* bench-mixed-bursts: a long-lived set beside short bursts.
 *
 * Sizes 8 B - 64 KiB: 7 in 10 under 128 B (uniform 8-127 B), the rest
 * log-uniform from 128 B to 64 KiB. Every thread keeps a long-lived set
 * (LONG slots in all, split among the threads), filled first and replaced
 * slowly: one random slot per burst. A burst allocates BURST blocks and
 * frees them all (checked, in reverse order) at its end.
 *
 * BURSTS is the total over all threads (constant across thread counts).
 *
 * usage: bench-mixed-bursts [THREADS=4] [BURSTS=60000] [BURST=64] [LONG=20000] */
#include "bench_common.h"

typedef struct {
  long id, bursts, burst, nlong;
} targ_t;

static size_t mixed_size(rng_t *r)
{
  return rng_below(r, 10) < 7 ? (size_t)rng_range(r, 8, 127) : rng_logsize(r, 128, 65536);
}

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 14000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;
  blk_t *longs = (blk_t *)bench_malloc((size_t)a->nlong * sizeof *longs);
  blk_t *burst = (blk_t *)bench_malloc((size_t)a->burst * sizeof *burst);
  for (long k = 0; k < a->nlong; k++)
    blk_new(&longs[k], mixed_size(&r), key++);
  for (long i = 0; i < a->bursts; i++) {
    for (long j = 0; j < a->burst; j++)
      blk_new(&burst[j], mixed_size(&r), key++);
    blk_t *l = &longs[rng_below(&r, (uint64_t)a->nlong)];
    blk_drop("mixed-bursts long-lived", l);
    blk_new(l, mixed_size(&r), key++);
    for (long j = a->burst - 1; j >= 0; j--)
      blk_drop("mixed-bursts burst", &burst[j]);
  }
  for (long k = 0; k < a->nlong; k++)
    blk_drop("mixed-bursts final", &longs[k]);
  free(burst);
  free(longs);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=4] [BURSTS=60000] [BURST=64] [LONG=20000]  (BURSTS and LONG in total)");
  long nt = arg_long(argc, argv, 1, 4, "THREADS");
  long bursts = arg_long(argc, argv, 2, 60000, "BURSTS");
  long burst = arg_long(argc, argv, 3, 64, "BURST");
  long nlong = arg_long(argc, argv, 4, 20000, "LONG");
  if (nlong < nt)
    nlong = nt;
  targ_t *a = (targ_t *)bench_malloc((size_t)nt * sizeof *a);
  for (long i = 0; i < nt; i++)
    a[i] = (targ_t){i, share_of(bursts, nt, i), burst, share_of(nlong, nt, i)};
  double t = run_threads_timed(nt, worker, a, sizeof *a);
  free(a);
  printf("bench-mixed-bursts: threads=%ld bursts=%ld burst=%ld long=%ld time=%.3fs ok\n", nt, bursts, burst,
         nlong, t);
  return 0;
}
