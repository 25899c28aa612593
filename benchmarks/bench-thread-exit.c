/* bench-thread-exit: threads that exit with their blocks live.
 *
 * ROUNDS rounds of THREADS new threads. In round r, thread i first checks
 * and frees the set that thread i+1 (mod THREADS) of round r-1 allocated and
 * left behind when it exited, then allocates its own set (SET blocks per
 * round in all, split among the threads; 16 B - 1 KiB, one in 8 of 1 - 32
 * KiB) and exits with it live. Every free is of a block whose thread is
 * gone. The main thread frees the last round's sets.
 *
 * ROUNDS x SET is the total work (constant across thread counts).
 *
 * usage: bench-thread-exit [THREADS=2] [ROUNDS=200] [SET=10000] */
#include "bench_common.h"

typedef struct {
  long id, nt, round;
  void ***sets; /* [2][nt] sets: this round's and the previous round's */
  long *count;  /* blocks in each share */
} targ_t;

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  long prev = (a->round + 1) % 2, cur = a->round % 2;
  void **old = a->sets[prev * a->nt + (a->id + 1) % a->nt];
  for (long k = 0; k < a->count[(a->id + 1) % a->nt] && a->round > 0; k++)
    blk_drop_self("thread-exit predecessor's", old[k]);
  rng_t r;
  rng_seed(&r, 15000 + (uint64_t)a->round * 1000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->round << 20 | (uint64_t)a->id) << 24;
  void **mine = a->sets[cur * a->nt + a->id];
  for (long k = 0; k < a->count[a->id]; k++) {
    size_t n = rng_below(&r, 8) == 0 ? rng_logsize(&r, 1024, 32768) : rng_logsize(&r, 16, 1024);
    mine[k] = blk_new_self(n, key++);
  }
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=2] [ROUNDS=200] [SET=10000]  (SET per round, in all)");
  long nt = arg_long(argc, argv, 1, 2, "THREADS");
  long rounds = arg_long(argc, argv, 2, 200, "ROUNDS");
  long set = arg_long(argc, argv, 3, 10000, "SET");
  void ***sets = (void ***)bench_malloc(2 * (size_t)nt * sizeof *sets);
  long *count = (long *)bench_malloc((size_t)nt * sizeof *count);
  for (long i = 0; i < nt; i++) {
    count[i] = share_of(set, nt, i);
    sets[i] = (void **)bench_malloc(((size_t)count[i] + 1) * sizeof(void *));
    sets[nt + i] = (void **)bench_malloc(((size_t)count[i] + 1) * sizeof(void *));
  }
  targ_t *a = (targ_t *)bench_malloc((size_t)nt * sizeof *a);
  double t0 = now_s();
  for (long round = 0; round < rounds; round++) {
    for (long i = 0; i < nt; i++)
      a[i] = (targ_t){i, nt, round, sets, count};
    run_threads(nt, worker, a, sizeof *a);
  }
  long last = (rounds - 1) % 2;
  for (long i = 0; i < nt; i++)
    for (long k = 0; k < count[i]; k++)
      blk_drop_self("thread-exit final", sets[last * nt + i][k]);
  double t = now_s() - t0;
  for (long i = 0; i < 2 * nt; i++)
    free(sets[i]);
  free(sets);
  free(count);
  free(a);
  printf("bench-thread-exit: threads=%ld rounds=%ld set=%ld time=%.3fs ok\n", nt, rounds, set, t);
  return 0;
}
