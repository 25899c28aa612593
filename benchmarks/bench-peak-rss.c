/* bench-peak-rss: does the allocator give memory back after a peak?
 *
 * Phase 1: allocate MIB MiB in total, half in small objects (16-512 B) and
 *          half in medium ones (1-64 KiB), interleaved at random, every page
 *          written.
 * Phase 2: check and free all of them, in random order. With THREADS > 1
 *          each thread frees the objects of the next thread (cross-thread).
 * Phase 3: light work (batches of small malloc/free) for MS milliseconds,
 *          the threads still alive.
 * Then print the resident set size (from /proc/self/statm).
 *
 * The table of pointers is mmap'ed directly so that it does not count as
 * allocator-held memory.
 *
 * Output (besides the summary line):
 *   rss_peak_kib=<n>         after phase 1
 *   rss_after_free_kib=<n>   after phase 3
 *
 * usage: bench-peak-rss [MIB=512] [THREADS=1] [MS=200] */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "bench_common.h"

#include <sys/mman.h>

typedef struct {
  long id, threads, ms;
  size_t budget;   /* bytes to allocate */
  void **ptr;      /* mmap'ed table */
  size_t nptr, cap;
  uint64_t light_ops;
} targ_t;

static targ_t *targs;
static pthread_barrier_t barrier;
static long rss_peak, rss_after;

static void *table_alloc(size_t bytes)
{
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    bench_fail("mmap of %zu bytes failed", bytes);
  return p;
}

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 6000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;

  /* phase 1 */
  size_t small_left = a->budget / 2, med_left = a->budget - a->budget / 2;
  while (small_left > 0 || med_left > 0) {
    int small = med_left == 0 || (small_left > 0 && rng_below(&r, 88) != 0);
    size_t n = small ? (size_t)rng_range(&r, 16, 512) : rng_logsize(&r, 1024, 65536);
    size_t *left = small ? &small_left : &med_left;
    if (n > *left)
      n = *left < 16 ? 16 : *left;
    *left -= n < *left ? n : *left;
    if (a->nptr == a->cap)
      bench_fail("peak-rss: pointer table full");
    void *p = bench_malloc(n);
    blk_fill(p, n, key++);
    a->ptr[a->nptr++] = p;
  }
  pthread_barrier_wait(&barrier);
  if (a->id == 0)
    rss_peak = rss_kib();
  pthread_barrier_wait(&barrier);

  /* phase 2: free the next thread's objects in random order */
  targ_t *victim = &targs[(a->id + 1) % a->threads];
  void **v = victim->ptr;
  for (size_t i = victim->nptr; i > 1; i--) {
    size_t j = (size_t)rng_below(&r, i);
    void *t = v[i - 1];
    v[i - 1] = v[j];
    v[j] = t;
  }
  for (size_t i = 0; i < victim->nptr; i++) {
    blk_check_self("peak-rss free", v[i]);
    free(v[i]);
  }
  pthread_barrier_wait(&barrier);
  munmap(victim->ptr, victim->cap * sizeof(void *));

  /* phase 3: light allocation work */
  double end = now_s() + (double)a->ms / 1000.0;
  void *batch[100];
  do {
    for (int i = 0; i < 100; i++) {
      size_t n = (size_t)rng_range(&r, 16, 256);
      batch[i] = bench_malloc(n);
      blk_fill(batch[i], n, key + (uint64_t)i);
    }
    for (int i = 0; i < 100; i++) {
      blk_check_self("peak-rss light", batch[i]);
      free(batch[i]);
    }
    key += 100;
    a->light_ops += 100;
  } while (now_s() < end);

  pthread_barrier_wait(&barrier);
  if (a->id == 0)
    rss_after = rss_kib();
  pthread_barrier_wait(&barrier);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[MIB=512] [THREADS=1] [MS=200]");
  long mib = arg_long(argc, argv, 1, 512, "MIB");
  long threads = arg_long(argc, argv, 2, 1, "THREADS");
  long ms = arg_long(argc, argv, 3, 200, "MS");

  long rss_start = rss_kib();
  targs = (targ_t *)bench_malloc((size_t)threads * sizeof *targs);
  size_t budget = ((size_t)mib << 20) / (size_t)threads;
  for (long i = 0; i < threads; i++) {
    /* half the bytes in objects of >= 16 B: at most budget/32 small objects */
    size_t cap = budget / 32 + budget / 1024 + 16;
    targs[i] = (targ_t){i, threads, ms, budget, (void **)table_alloc(cap * sizeof(void *)), 0, cap, 0};
  }
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  double t0 = now_s();
  run_threads(threads, worker, targs, sizeof *targs);
  double t = now_s() - t0;
  size_t objects = 0;
  uint64_t light = 0;
  for (long i = 0; i < threads; i++) {
    objects += targs[i].nptr;
    light += targs[i].light_ops;
  }
  free(targs);
  pthread_barrier_destroy(&barrier);
  printf("bench-peak-rss: mib=%ld threads=%ld objects=%zu light_ops=%" PRIu64
         " rss_start=%ldKiB rss_peak=%ldKiB rss_after_free=%ldKiB time=%.3fs ok\n",
         mib, threads, objects, light, rss_start, rss_peak, rss_after, t);
  printf("rss_peak_kib=%ld\n", rss_peak);
  printf("rss_after_free_kib=%ld\n", rss_after);
  return 0;
}
