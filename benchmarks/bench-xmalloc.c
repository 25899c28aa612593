/* bench-xmalloc: producers allocate, consumers free (after the published
 * description of the xmalloc-test benchmark).
 *
 * Half of the THREADS threads (rounded down, at least one) are producers:
 * they malloc small blocks (16-128 B; one in 16 of 128 B - 1 KiB), fill
 * them and push them in batches of BATCH onto one mutex-protected queue
 * (bench_common.h's bq_t); the others pop the batches, check and free every
 * block and the batch: every free is cross-thread. With THREADS=1 the one
 * thread alternates: it produces a batch, then consumes it.
 *
 * ITEMS is the total over all producers (constant across thread counts).
 *
 * usage: bench-xmalloc [THREADS=4] [ITEMS=4000000] [BATCH=100] */
#include "bench_common.h"

typedef struct {
  long n;
  void *item[];
} batch_t;

typedef struct {
  long id, items, batch;
  uint64_t count, keysum; /* produced or consumed */
} targ_t;

static bq_t queue;

static size_t xm_size(rng_t *r)
{
  return rng_below(r, 16) == 0 ? (size_t)rng_range(r, 129, 1024) : (size_t)rng_range(r, 16, 128);
}

static batch_t *produce(targ_t *a, rng_t *r, long n)
{
  batch_t *b = (batch_t *)bench_malloc(sizeof *b + (size_t)n * sizeof(void *));
  b->n = n;
  for (long i = 0; i < n; i++) {
    uint64_t key = ((uint64_t)a->id + 1) << 40 | (a->count + 1);
    b->item[i] = blk_new_self(xm_size(r), key);
    a->count++;
    a->keysum += key;
  }
  return b;
}

static void consume(targ_t *a, batch_t *b)
{
  for (long i = 0; i < b->n; i++) {
    blk_hdr_t h;
    memcpy(&h, b->item[i], sizeof h);
    a->count++;
    a->keysum += h.key;
    blk_drop_self("xmalloc consumer", b->item[i]);
  }
  free(b);
}

static void *producer(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 10000 + (uint64_t)a->id);
  for (long left = a->items; left > 0; left -= a->batch)
    bq_push(&queue, produce(a, &r, left < a->batch ? left : a->batch));
  bq_writer_done(&queue);
  return NULL;
}

static void *consumer(void *arg)
{
  targ_t *a = (targ_t *)arg;
  batch_t *b;
  while ((b = (batch_t *)bq_pop(&queue)) != NULL)
    consume(a, b);
  return NULL;
}

static void *dispatch(void *arg)
{
  targ_t *a = (targ_t *)arg;
  return a->items > 0 ? producer(arg) : consumer(arg);
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv, "[THREADS=4] [ITEMS=4000000] [BATCH=100]  (ITEMS in total)");
  long nt = arg_long(argc, argv, 1, 4, "THREADS");
  long items = arg_long(argc, argv, 2, 4000000, "ITEMS");
  long batch = arg_long(argc, argv, 3, 100, "BATCH");

  uint64_t pc = 0, ps = 0, cc = 0, cs = 0;
  double t0 = now_s(), t;
  if (nt == 1) {
    targ_t p = {0, items, batch, 0, 0}, c = {0, 0, batch, 0, 0};
    rng_t r;
    rng_seed(&r, 10000);
    for (long left = items; left > 0; left -= batch)
      consume(&c, produce(&p, &r, left < batch ? left : batch));
    t = now_s() - t0;
    pc = p.count, ps = p.keysum, cc = c.count, cs = c.keysum;
  } else {
    long np = nt / 2;
    bq_init(&queue, np);
    targ_t *a = (targ_t *)bench_malloc((size_t)nt * sizeof *a);
    /* producers and consumers alternate in start order */
    for (long i = 0; i < nt; i++)
      a[i] = (targ_t){i, i % 2 == 0 && i / 2 < np ? share_of(items, np, i / 2) : 0, batch, 0, 0};
    run_threads(nt, dispatch, a, sizeof *a);
    t = now_s() - t0;
    for (long i = 0; i < nt; i++) {
      uint64_t *n = a[i].items > 0 ? &pc : &cc, *s = a[i].items > 0 ? &ps : &cs;
      *n += a[i].count;
      *s += a[i].keysum;
    }
    free(a);
  }
  if (pc != cc || ps != cs)
    bench_fail("xmalloc: produced %" PRIu64 " blocks (key sum %#" PRIx64 ") but consumed %" PRIu64
               " (key sum %#" PRIx64 ")",
               pc, ps, cc, cs);
  printf("bench-xmalloc: threads=%ld items=%" PRIu64 " batch=%ld time=%.3fs ns/item=%.1f ok\n", nt, pc,
         batch, t, t * 1e9 / (double)pc);
  return 0;
}
