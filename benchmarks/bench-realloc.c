/* bench-realloc: growth by realloc, as vectors and strings do.
 *
 * Part 1: each thread keeps VECS vectors alive, each growing from 16 B by
 * +16..+256 B per realloc towards a random target of 1-8 KiB; the vector to
 * grow is picked at random, so neighbours compete for in-place growth. A
 * vector that reaches its target is checked in full and either freed or
 * first shrunk to a quarter-to-half of its size by realloc (checked again),
 * then it starts over at 16 B.
 * Part 2: BIGROUNDS times, two buffers per thread grow alternately by
 * doubling from 16 B to 64 MiB (pages are written and checked, not every
 * byte), then shrink to 1 MiB and are freed.
 * Contents are a function of (vector id, offset) and must survive every realloc.
 *
 * usage: bench-realloc [THREADS=2] [STEPS=2000000] [BIGROUNDS=2] [VECS=1000]
 *        (STEPS reallocs per thread) */
#include "bench_common.h"

typedef struct {
  unsigned char *p;
  size_t n, target;
  uint64_t id;
} vec_t;

static inline unsigned char val(uint64_t id, size_t off)
{
  return (unsigned char)(id * 131u + off * 7u + (off >> 8) * 3u + 1u);
}

static void fill_range(unsigned char *p, uint64_t id, size_t from, size_t to)
{
  for (size_t o = from; o < to; o++)
    p[o] = val(id, o);
}

static void check_range(const char *where, const unsigned char *p, uint64_t id, size_t from,
                        size_t to)
{
  for (size_t o = from; o < to; o++)
    if (p[o] != val(id, o))
      bench_fail("%s: vector %#llx (%p) byte %zu is %#x, expected %#x", where,
                 (unsigned long long)id, (const void *)p, o, p[o], val(id, o));
}

static void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n);
  if (q == NULL)
    bench_fail("realloc(%p, %zu) returned NULL", p, n);
  return q;
}

/* Sparse pattern for the big buffers: every byte of the first 8 KiB, then one
 * byte per 4 KiB page and the last byte. */
#define DENSE 8192u

static void big_write(unsigned char *p, uint64_t id, size_t from, size_t to)
{
  size_t o = from;
  for (; o < to && o < DENSE; o++)
    p[o] = val(id, o);
  for (o = (o + BLK_PAGE - 1) / BLK_PAGE * BLK_PAGE; o < to; o += BLK_PAGE)
    p[o] = val(id, o);
  if (to > DENSE)
    p[to - 1] = val(id, to - 1);
}

static void big_check(const unsigned char *p, uint64_t id, size_t to)
{
  size_t o = 0;
  for (; o < to && o < DENSE; o++)
    if (p[o] != val(id, o))
      goto bad;
  for (o = DENSE; o < to; o += BLK_PAGE)
    if (p[o] != val(id, o))
      goto bad;
  /* the last byte of every earlier (power-of-two) size, and of this one */
  for (size_t s = DENSE * 2; s <= to; s *= 2) {
    o = s - 1;
    if (p[o] != val(id, o))
      goto bad;
  }
  if (to > DENSE && p[to - 1] != val(id, to - 1)) {
    o = to - 1;
    goto bad;
  }
  return;
bad:
  bench_fail("realloc big buffer %#llx (%p) size %zu: byte %zu is %#x, expected %#x",
             (unsigned long long)id, (const void *)p, to, o, p[o], val(id, o));
}

typedef struct {
  long id, steps, bigrounds, vecs;
  uint64_t shrinks;
} targ_t;

static void *worker(void *arg)
{
  targ_t *a = (targ_t *)arg;
  rng_t r;
  rng_seed(&r, 4000 + (uint64_t)a->id);
  uint64_t next_id = ((uint64_t)a->id + 1) << 32;

  /* part 1: many small vectors */
  vec_t *v = (vec_t *)bench_malloc((size_t)a->vecs * sizeof *v);
  for (long i = 0; i < a->vecs; i++) {
    v[i].id = next_id++;
    v[i].n = 16;
    v[i].target = (size_t)rng_range(&r, 1024, 8192);
    v[i].p = (unsigned char *)xrealloc(NULL, 16);
    fill_range(v[i].p, v[i].id, 0, 16);
  }
  for (long k = 0; k < a->steps; k++) {
    vec_t *x = &v[rng_below(&r, (uint64_t)a->vecs)];
    size_t old = x->n;
    size_t n = old + (size_t)rng_range(&r, 16, 256);
    x->p = (unsigned char *)xrealloc(x->p, n);
    /* spot check what moved: both ends of the old contents */
    if (x->p[0] != val(x->id, 0) || x->p[old - 1] != val(x->id, old - 1))
      check_range("realloc grow", x->p, x->id, 0, old);
    fill_range(x->p, x->id, old, n);
    x->n = n;
    if (n >= x->target) {
      check_range("realloc full", x->p, x->id, 0, n);
      if (rng_below(&r, 2) == 0) {
        size_t m = (size_t)rng_range(&r, n / 4, n / 2);
        x->p = (unsigned char *)xrealloc(x->p, m);
        check_range("realloc shrink", x->p, x->id, 0, m);
        a->shrinks++;
      }
      free(x->p);
      x->id = next_id++;
      x->n = 16;
      x->target = (size_t)rng_range(&r, 1024, 8192);
      x->p = (unsigned char *)xrealloc(NULL, 16);
      fill_range(x->p, x->id, 0, 16);
    }
  }
  for (long i = 0; i < a->vecs; i++) {
    check_range("realloc final", v[i].p, v[i].id, 0, v[i].n);
    free(v[i].p);
  }
  free(v);

  /* part 2: two buffers doubling to 64 MiB */
  const size_t big_max = (size_t)64 << 20;
  for (long round = 0; round < a->bigrounds; round++) {
    unsigned char *b[2] = {NULL, NULL};
    size_t bn[2] = {0, 0};
    uint64_t bid[2];
    bid[0] = next_id++;
    bid[1] = next_id++;
    for (size_t n = 16; n <= big_max; n *= 2) {
      for (int j = 0; j < 2; j++) {
        b[j] = (unsigned char *)xrealloc(b[j], n);
        big_check(b[j], bid[j], bn[j]);
        big_write(b[j], bid[j], bn[j], n);
        bn[j] = n;
      }
    }
    for (int j = 0; j < 2; j++) {
      big_check(b[j], bid[j], bn[j]);
      b[j] = (unsigned char *)xrealloc(b[j], (size_t)1 << 20);
      big_check(b[j], bid[j], (size_t)1 << 20);
      free(b[j]);
      a->shrinks++;
    }
  }
  return NULL;
}

int main(int argc, char **argv)
{
  usage_if_help(argc, argv,
                "[THREADS=2] [STEPS=2000000] [BIGROUNDS=2] [VECS=1000]  (STEPS per thread)");
  long threads = arg_long(argc, argv, 1, 2, "THREADS");
  long steps = arg_long(argc, argv, 2, 2000000, "STEPS");
  long bigrounds = arg_long(argc, argv, 3, 2, "BIGROUNDS");
  long vecs = arg_long(argc, argv, 4, 1000, "VECS");

  targ_t *a = (targ_t *)bench_malloc((size_t)threads * sizeof *a);
  for (long i = 0; i < threads; i++)
    a[i] = (targ_t){i, steps, bigrounds, vecs, 0};
  double t0 = now_s();
  run_threads(threads, worker, a, sizeof *a);
  double t = now_s() - t0;
  uint64_t shrinks = 0;
  for (long i = 0; i < threads; i++)
    shrinks += a[i].shrinks;
  free(a);
  printf("bench-realloc: threads=%ld steps=%ld bigrounds=%ld vecs=%ld shrinks=%" PRIu64
         " time=%.3fs ok\n",
         threads, steps, bigrounds, vecs, shrinks, t);
  return 0;
}
