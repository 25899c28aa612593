/* bench-prod-cons: producer and consumer threads, every block freed by a
 * thread other than the one that allocated it.
 *
 * Producers malloc blocks of 16 B - 4 KiB (log-uniform), fill them and hand
 * them over in batches through one mutex-protected ring (bq_t); consumers check and
 * free every block and the batch itself. The totals (count and key sum) of
 * what was consumed must match what was produced.
 *
 * usage: bench-prod-cons [PRODUCERS=4] [CONSUMERS=4] [ITEMS=1000000] [BATCH=64]
 *        (ITEMS per producer) */
#include "bench_common.h"

typedef struct {
  long n;
  void *item[];
} batch_t;

static bq_t q; /* batches of blocks */

typedef struct {
  long id, items, batch;
  uint64_t count, keysum; /* produced or consumed */
} targ_t;

static void *producer(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 2000 + (uint64_t)a->id);
  batch_t *b = NULL;
  for (long i = 0; i < a->items; i++) {
    if (b == NULL) {
      b = (batch_t *)bench_malloc(sizeof *b + (size_t)a->batch * sizeof(void *));
      b->n = 0;
    }
    size_t n = rng_logsize(&r, 16, 4096);
    uint64_t key = ((uint64_t)a->id + 1) << 40 | (uint64_t)i;
    void *p = bench_malloc(n);
    blk_fill(p, n, key);
    b->item[b->n++] = p;
    a->count++;
    a->keysum += key;
    if (b->n == a->batch) {
      bq_push(&q, b);
      b = NULL;
    }
  }
  if (b != NULL)
    bq_push(&q, b);
  bq_writer_done(&q);
  return NULL;
}

static void *consumer(void *arg)
{
  targ_t *a = (targ_t *)arg;
  batch_t *b;
  while ((b = (batch_t *)bq_pop(&q)) != NULL) {
    for (long i = 0; i < b->n; i++) {
      blk_hdr_t h;
      memcpy(&h, b->item[i], sizeof h);
      blk_check_self("prod-cons consumer", b->item[i]);
      a->count++;
      a->keysum += h.key;
      free(b->item[i]);
    }
    free(b);
  }
  return NULL;
}

static void *dispatch(void *arg)
{
  targ_t *a = (targ_t *)arg;
  return a->items > 0 ? producer(arg) : consumer(arg);
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv,
                "[PRODUCERS=4] [CONSUMERS=4] [ITEMS=1000000] [BATCH=64]  (ITEMS per producer)");
  long np = arg_long(argc, argv, 1, 4, "PRODUCERS");
  long nc = arg_long(argc, argv, 2, 4, "CONSUMERS");
  long items = arg_long(argc, argv, 3, 1000000, "ITEMS");
  long batch = arg_long(argc, argv, 4, 64, "BATCH");

  bq_init(&q, np);
  long nt = np + nc;
  targ_t *a = (targ_t *)bench_malloc((size_t)nt * sizeof *a);
  /* interleave producers and consumers in start order */
  long pi = 0, ci = 0;
  for (long i = 0; i < nt; i++) {
    int is_prod = (pi < np) && (ci >= nc || i % 2 == 0);
    if (is_prod)
      a[i] = (targ_t){pi++, items, batch, 0, 0};
    else
      a[i] = (targ_t){ci++, 0, batch, 0, 0};
  }
  double t0 = now_s();
  run_threads(nt, dispatch, a, sizeof *a);
  double t = now_s() - t0;

  uint64_t pc = 0, ps = 0, cc = 0, cs = 0;
  for (long i = 0; i < nt; i++) {
    if (a[i].items > 0) {
      pc += a[i].count;
      ps += a[i].keysum;
    } else {
      cc += a[i].count;
      cs += a[i].keysum;
    }
  }
  free(a);
  if (pc != cc || ps != cs)
    bench_fail("prod-cons: produced %" PRIu64 " blocks (key sum %#" PRIx64 ") but consumed %" PRIu64
               " (key sum %#" PRIx64 ")",
               pc, ps, cc, cs);
  printf("bench-prod-cons: producers=%ld consumers=%ld items=%" PRIu64
         " batch=%ld time=%.3fs ns/item=%.1f ok\n",
         np, nc, pc, batch, t, t * 1e9 / (double)pc);
  return 0;
}
