/* bench-mstress: objects that migrate between short-lived threads (after
 * the published description of mimalloc-bench's mstress).
 *
 * ROUNDS rounds; each round starts THREADS threads and waits for them. A
 * thread allocates items of random size (mostly 16 B - 1 KiB, one in 200 of
 * 16 - 256 KiB) and puts each either
 *   - into the shared transfer array (TRANSFER slots) with an atomic
 *     exchange, checking and freeing what it displaces (most likely
 *     allocated by another thread, maybe of an earlier round), or
 *   - into its local set (LOCAL slots per share), freeing what was there.
 * One item in 8 is freed at once instead. At the end of a round a thread
 * frees half of its local set at random and exits with the rest live: the
 * next round's thread of that share, a new thread, frees them later.
 *
 * OPS is the total over all threads and rounds (constant across thread
 * counts).
 *
 * LARGE: one item in LARGE is of 16-256 KiB (0: none, to see what they cost).
 *
 * usage: bench-mstress [THREADS=2] [OPS=4000000] [ROUNDS=20] [TRANSFER=4000] [LOCAL=2000] [LARGE=200] */
#include "bench_common.h"

#include <stdatomic.h>

static _Atomic(void *) *transfer;
static long ntransfer;
static long large_one_in = 200;

typedef struct {
  long id, ops;  /* this round's */
  void **local;  /* the share's local set, kept across rounds */
  long nlocal;
  uint64_t key;
  rng_t r;
} share_t;

static size_t mstress_size(rng_t *r)
{
  if (large_one_in > 0 && rng_below(r, (uint64_t)large_one_in) == 0)
    return rng_logsize(r, 16384, 262144);
  return rng_skewsize(r, 16, 1024);
}

static void *worker(void *arg)
{
  share_t *s = (share_t *)arg;
  for (long i = 0; i < s->ops; i++) {
    void *p = blk_new_self(mstress_size(&s->r), s->key++);
    uint64_t what = rng_below(&s->r, 8);
    if (what == 0) {
      blk_drop_self("mstress at once", p);
    } else if (what <= 4) {
      void *old = atomic_exchange(&transfer[rng_below(&s->r, (uint64_t)ntransfer)], p);
      blk_drop_self("mstress transfer", old);
    } else {
      long k = (long)rng_below(&s->r, (uint64_t)s->nlocal);
      blk_drop_self("mstress local", s->local[k]);
      s->local[k] = p;
    }
  }
  for (long k = 0; k < s->nlocal; k++) {
    if (rng_below(&s->r, 2) == 0) {
      blk_drop_self("mstress round end", s->local[k]);
      s->local[k] = NULL;
    }
  }
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv,
                "[THREADS=2] [OPS=4000000] [ROUNDS=20] [TRANSFER=4000] [LOCAL=2000] [LARGE=200]  (OPS in total)");
  long nt = arg_long(argc, argv, 1, 2, "THREADS");
  long ops = arg_long(argc, argv, 2, 4000000, "OPS");
  long rounds = arg_long(argc, argv, 3, 20, "ROUNDS");
  ntransfer = arg_long(argc, argv, 4, 4000, "TRANSFER");
  long nlocal = arg_long(argc, argv, 5, 2000, "LOCAL");
  large_one_in = arg_long_min(argc, argv, 6, 200, "LARGE", 0);

  transfer = (_Atomic(void *) *)bench_malloc((size_t)ntransfer * sizeof *transfer);
  for (long i = 0; i < ntransfer; i++)
    atomic_init(&transfer[i], NULL);
  /* the local sets, split among the shares like the work */
  void **local = (void **)calloc((size_t)nlocal + (size_t)nt, sizeof *local);
  share_t *sh = (share_t *)bench_malloc((size_t)nt * sizeof *sh);
  if (local == NULL)
    bench_fail("calloc failed");
  long first = 0;
  for (long i = 0; i < nt; i++) {
    long n = share_of(nlocal, nt, i);
    sh[i] = (share_t){i, 0, local + first, n > 0 ? n : 1, ((uint64_t)i + 1) << 40, {0}};
    first += sh[i].nlocal;
    rng_seed(&sh[i].r, 8000 + (uint64_t)i);
  }

  long total = 0;
  double t0 = now_s();
  for (long round = 0; round < rounds; round++) {
    for (long i = 0; i < nt; i++) {
      sh[i].ops = share_of(share_of(ops, rounds, round), nt, i);
      total += sh[i].ops;
    }
    run_threads(nt, worker, sh, sizeof *sh);
  }
  for (long i = 0; i < ntransfer; i++)
    blk_drop_self("mstress final transfer", atomic_load(&transfer[i]));
  for (long i = 0; i < first; i++)
    blk_drop_self("mstress final local", local[i]);
  double t = now_s() - t0;
  free(sh);
  free(local);
  free((void *)transfer);
  printf("bench-mstress: threads=%ld ops=%ld rounds=%ld transfer=%ld local=%ld time=%.3fs ok\n", nt,
         total, rounds, ntransfer, nlocal, t);
  return 0;
}
