/* bench-rptest: many threads, skewed sizes, mixed lifetimes and a share of
 * cross-thread frees (after the published description of the
 * rpmalloc-benchmark).
 *
 * Sizes are 16 B - 8 KiB, the power-of-two band geometric (half of the
 * blocks 16-31 B, a quarter 32-63 B, ...). Per allocation, at random:
 *   - 4 in 10 are freed at once (checked, then freed),
 *   - 5 in 10 replace a random slot of the thread's live set (LIVE slots),
 *     so they live about LIVE allocations,
 *   - 1 in 10 is handed to the next thread: collected into batches of 32
 *     and pushed onto that thread's inbox, which its owner drains (checks
 *     and frees) every 64 allocations.
 * At the end every thread waits for the others, drains its inbox and frees
 * its live set.
 *
 * OPS is the total over all threads (constant across thread counts).
 *
 * usage: bench-rptest [THREADS=4] [OPS=5000000] [LIVE=2000] */
#include "bench_common.h"

#define BATCH 32

typedef struct batch {
  struct batch *next;
  long n;
  void *item[BATCH];
} batch_t;

typedef struct {
  pthread_mutex_t mu;
  batch_t *head;
} inbox_t;

typedef struct {
  long id, nt, ops, nlive;
  inbox_t *inboxes;
  uint64_t handed, received;
} targ_t;

static pthread_barrier_t barrier;

static void inbox_push(inbox_t *in, batch_t *b)
{
  pthread_mutex_lock(&in->mu);
  b->next = in->head;
  in->head = b;
  pthread_mutex_unlock(&in->mu);
}

/* Check and free everything in the inbox; returns how many blocks. */
static uint64_t inbox_drain(inbox_t *in)
{
  pthread_mutex_lock(&in->mu);
  batch_t *b = in->head;
  in->head = NULL;
  pthread_mutex_unlock(&in->mu);
  uint64_t n = 0;
  while (b != NULL) {
    batch_t *next = b->next;
    for (long i = 0; i < b->n; i++)
      blk_drop_self("rptest handed over", b->item[i]);
    n += (uint64_t)b->n;
    free(b);
    b = next;
  }
  return n;
}

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 9000 + (uint64_t)a->id);
  uint64_t key = ((uint64_t)a->id + 1) << 40;
  void **live = (void **)calloc((size_t)a->nlive, sizeof *live);
  if (live == NULL)
    bench_fail("calloc failed");
  inbox_t *mine = &a->inboxes[a->id], *next = &a->inboxes[(a->id + 1) % a->nt];
  batch_t *out = NULL;
  for (long i = 0; i < a->ops; i++) {
    void *p = blk_new_self(rng_skewsize(&r, 16, 8192), key++);
    uint64_t what = rng_below(&r, 10);
    if (what < 4) {
      blk_drop_self("rptest at once", p);
    } else if (what < 9) {
      long k = (long)rng_below(&r, (uint64_t)a->nlive);
      blk_drop_self("rptest live", live[k]);
      live[k] = p;
    } else {
      if (out == NULL) {
        out = (batch_t *)bench_malloc(sizeof *out);
        out->n = 0;
      }
      out->item[out->n++] = p;
      a->handed++;
      if (out->n == BATCH) {
        inbox_push(next, out);
        out = NULL;
      }
    }
    if (i % 64 == 63)
      a->received += inbox_drain(mine);
  }
  if (out != NULL)
    inbox_push(next, out);
  pthread_barrier_wait(&barrier); /* nothing is pushed after this */
  a->received += inbox_drain(mine);
  for (long k = 0; k < a->nlive; k++)
    blk_drop_self("rptest final", live[k]);
  free(live);
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=4] [OPS=5000000] [LIVE=2000]  (OPS in total)");
  long nt = arg_long(argc, argv, 1, 4, "THREADS");
  long ops = arg_long(argc, argv, 2, 5000000, "OPS");
  long nlive = arg_long(argc, argv, 3, 2000, "LIVE");

  inbox_t *inboxes = (inbox_t *)bench_malloc((size_t)nt * sizeof *inboxes);
  targ_t *a = (targ_t *)bench_malloc((size_t)nt * sizeof *a);
  for (long i = 0; i < nt; i++) {
    pthread_mutex_init(&inboxes[i].mu, NULL);
    inboxes[i].head = NULL;
    a[i] = (targ_t){i, nt, share_of(ops, nt, i), nlive, inboxes, 0, 0};
  }
  pthread_barrier_init(&barrier, NULL, (unsigned)nt);
  double t = run_threads_timed(nt, worker, a, sizeof *a);

  uint64_t handed = 0, received = 0;
  for (long i = 0; i < nt; i++) {
    handed += a[i].handed;
    received += a[i].received;
  }
  if (handed != received)
    bench_fail("rptest: %" PRIu64 " blocks handed over but %" PRIu64 " freed by their receivers", handed,
               received);
  free(a);
  free(inboxes);
  printf("bench-rptest: threads=%ld ops=%ld live=%ld handed=%" PRIu64 " time=%.3fs ok\n", nt, ops, nlive,
         handed, t);
  return 0;
}
