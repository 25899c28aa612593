/* bench-larson: a server whose worker threads come and go (after Larson and
 * Krishnan's benchmark, from its published description).
 *
 * One shared array of SLOTS blocks, split into THREADS shares. The main
 * thread fills every slot first. Then each share is worked by a chain of
 * ROUNDS threads: a thread does its part of the operations on random slots
 * of its share (check and free the block there, malloc a new one of 16 B -
 * 1 KiB, one in 16 up to 8 KiB), then starts its successor and exits. The
 * successor frees the blocks its predecessor allocated, so most frees cross
 * threads, and thread-local caches are left behind all the time.
 *
 * OPS is the total over all threads and rounds (constant across thread
 * counts). Prints ops/s.
 *
 * usage: bench-larson [THREADS=2] [OPS=3000000] [SLOTS=8000] [ROUNDS=20] */
#include "bench_common.h"

typedef struct {
  long id, rounds, round, ops_per_round;
  void **slot; /* this share of the array */
  long nslot;
  uint64_t key;
  pthread_t prev; /* the predecessor, joined by its successor */
  int have_prev;
} share_t;

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static long shares_left;

static size_t larson_size(rng_t *r)
{
  return rng_below(r, 16) == 0 ? (size_t)rng_range(r, 16, 8192) : (size_t)rng_range(r, 16, 1024);
}

static void *worker(void *arg)
{
  share_t *s = (share_t *)arg;
  if (s->have_prev)
    pthread_join(s->prev, NULL);
  rng_t r;
  rng_seed(&r, 7100 + (uint64_t)s->id * 1000003 + (uint64_t)s->round);
  for (long i = 0; i < s->ops_per_round; i++) {
    long k = (long)rng_below(&r, (uint64_t)s->nslot);
    blk_drop_self("larson", s->slot[k]);
    s->slot[k] = blk_new_self(larson_size(&r), s->key++);
  }
  if (++s->round < s->rounds) {
    /* hand the share to a new thread and exit */
    s->prev = pthread_self();
    s->have_prev = 1;
    pthread_t t;
    int e = pthread_create(&t, NULL, worker, s);
    if (e != 0)
      bench_fail("pthread_create: %s", strerror(e));
    return NULL;
  }
  pthread_mutex_lock(&done_mu);
  s->prev = pthread_self(); /* the main thread joins the last one */
  shares_left--;
  pthread_cond_signal(&done_cv);
  pthread_mutex_unlock(&done_mu);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=2] [OPS=3000000] [SLOTS=8000] [ROUNDS=20]  (OPS in total)");
  long nt = arg_long(argc, argv, 1, 2, "THREADS");
  long ops = arg_long(argc, argv, 2, 3000000, "OPS");
  long nslots = arg_long(argc, argv, 3, 8000, "SLOTS");
  long rounds = arg_long(argc, argv, 4, 20, "ROUNDS");
  if (nslots < nt)
    nslots = nt;

  void **slots = (void **)bench_malloc((size_t)nslots * sizeof *slots);
  rng_t r;
  rng_seed(&r, 7000);
  for (long i = 0; i < nslots; i++)
    slots[i] = blk_new_self(larson_size(&r), (uint64_t)i);

  share_t *sh = (share_t *)bench_malloc((size_t)nt * sizeof *sh);
  long first = 0;
  for (long i = 0; i < nt; i++) {
    long n = share_of(nslots, nt, i);
    long my_ops = share_of(ops, nt, i);
    sh[i] = (share_t){i, rounds, 0, my_ops / rounds + 1, slots + first, n, ((uint64_t)i + 1) << 40,
                      pthread_self(), 0};
    first += n;
  }
  shares_left = nt;
  double t0 = now_s();
  for (long i = 0; i < nt; i++) {
    pthread_t t;
    int e = pthread_create(&t, NULL, worker, &sh[i]);
    if (e != 0)
      bench_fail("pthread_create: %s", strerror(e));
    (void)t; /* joined by its successor, or by this thread when it is the last */
  }
  pthread_mutex_lock(&done_mu);
  while (shares_left > 0)
    pthread_cond_wait(&done_cv, &done_mu);
  pthread_mutex_unlock(&done_mu);
  for (long i = 0; i < nt; i++)
    pthread_join(sh[i].prev, NULL);
  double t = now_s() - t0;

  long done_ops = 0;
  for (long i = 0; i < nt; i++)
    done_ops += sh[i].ops_per_round * rounds;
  for (long i = 0; i < nslots; i++)
    blk_drop_self("larson final", slots[i]);
  free(sh);
  free(slots);
  printf("bench-larson: threads=%ld ops=%ld slots=%ld rounds=%ld time=%.3fs ops/s=%.0f ok\n", nt,
         done_ops, nslots, rounds, t, (double)done_ops / t);
  return 0;
}
