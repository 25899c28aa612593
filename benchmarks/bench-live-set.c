/* bench-live-set: many small objects with a large live set.
 *
 * Each thread owns an array of SLOTS objects (random sizes 8-512 B). Every
 * step checks and frees a random slot and allocates a new object into it, so
 * the heap stays full and fragmented while objects of all ages mix.
 *
 * usage: bench-live-set [THREADS=2] [SLOTS=100000] [STEPS=2000000]
 *        (SLOTS and STEPS are per thread) */
#include "bench_common.h"

typedef struct {
  void *p;
  uint32_t n;
  uint64_t key;
} slot_t;

typedef struct {
  long id, slots, steps;
} targ_t;

#define MIN_SIZE 8
#define MAX_SIZE 512

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 1000 + (uint64_t)a->id);
  uint64_t next_key = ((uint64_t)a->id + 1) << 40;
  slot_t *s = (slot_t *)bench_malloc((size_t)a->slots * sizeof *s);

  for (long i = 0; i < a->slots; i++) {
    size_t n = (size_t)rng_range(&r, MIN_SIZE, MAX_SIZE);
    s[i].p = bench_malloc(n);
    s[i].n = (uint32_t)n;
    s[i].key = next_key++;
    blk_fill(s[i].p, n, s[i].key);
  }
  for (long k = 0; k < a->steps; k++) {
    slot_t *x = &s[rng_below(&r, (uint64_t)a->slots)];
    blk_check("live-set step", x->p, x->n, x->key);
    free(x->p);
    size_t n = (size_t)rng_range(&r, MIN_SIZE, MAX_SIZE);
    x->p = bench_malloc(n);
    x->n = (uint32_t)n;
    x->key = next_key++;
    blk_fill(x->p, n, x->key);
  }
  for (long i = 0; i < a->slots; i++) {
    blk_check("live-set final", s[i].p, s[i].n, s[i].key);
    free(s[i].p);
  }
  free(s);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=2] [SLOTS=100000] [STEPS=2000000]  (per thread)");
  long threads = arg_long(argc, argv, 1, 2, "THREADS");
  long slots = arg_long(argc, argv, 2, 100000, "SLOTS");
  long steps = arg_long(argc, argv, 3, 2000000, "STEPS");

  targ_t *a = (targ_t *)bench_malloc((size_t)threads * sizeof *a);
  for (long i = 0; i < threads; i++)
    a[i] = (targ_t){i, slots, steps};
  double t0 = now_s();
  run_threads(threads, worker, a, sizeof *a);
  double t = now_s() - t0;
  free(a);
  printf("bench-live-set: threads=%ld slots=%ld steps=%ld time=%.3fs ns/step=%.1f ok\n", threads,
         slots, steps, t, t * 1e9 / ((double)steps * (double)threads));
  return 0;
}
