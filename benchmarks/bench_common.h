/* Shared helpers for the walloc benchmark workloads.
 *
 * The workloads are plain C11 + POSIX threads and use the C library's malloc
 * family, so the allocator under test is chosen with LD_PRELOAD. Nothing here
 * links or knows about walloc.
 *
 * Every block a workload allocates is filled with a pattern derived from a
 * per-block key and checked again before it is freed; a mismatch prints what
 * was found and ends the process with exit status 2 (bench_fail). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- failure ------------------------------------------------------------ */

static void bench_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("BENCH FAILURE: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  fflush(stdout);
  /* Other threads may still be running: do not run atexit handlers. */
  _Exit(2);
}

static inline void *bench_malloc(size_t n)
{
  void *p = malloc(n);
  if (p == NULL)
    bench_fail("malloc(%zu) returned NULL", n);
  return p;
}

/* ---- arguments ------------------------------------------------------------ */

/* Positional argument i as an integer of at least `min`, or def when
   absent; exits on anything else. arg_long: a positive one. */
static long arg_long_min(int argc, char **argv, int i, long def, const char *name, long min)
{
  if (i >= argc)
    return def;
  char *end = NULL;
  errno = 0;
  long v = strtol(argv[i], &end, 0);
  if (errno != 0 || end == argv[i] || *end != '\0' || v < min) {
    fprintf(stderr, "%s: bad value for %s: '%s' (want an integer of at least %ld)\n", argv[0], name,
            argv[i], min);
    exit(64);
  }
  return v;
}

static long arg_long(int argc, char **argv, int i, long def, const char *name)
{
  return arg_long_min(argc, argv, i, def, name, 1);
}

static void usage_if_help(int argc, char **argv, const char *usage)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      printf("usage: %s %s\n", argv[0], usage);
      exit(0);
    }
  }
}

/* The index of argv[1] among the count mode names, after usage_if_help;
 * prints the usage and exits with 2 when it names none. */
static inline int mode_arg(int argc, char **argv, const char *const *names, int count, const char *usage)
{
  usage_if_help(argc, argv, usage);
  for (int m = 0; argc >= 2 && m < count; m++) {
    if (strcmp(argv[1], names[m]) == 0) return m;
  }
  fprintf(stderr, "usage: %s %s\n", argv[0], usage);
  exit(2);
}

/* ---- time ----------------------------------------------------------------- */

static inline double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- random numbers (xorshift64*, one state per thread) ------------------- */

typedef struct {
  uint64_t s;
} rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed)
{
  /* splitmix64 scramble so that small seeds give unrelated streams */
  uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  r->s = z ? z : 0x1234567ull;
}

static inline uint64_t rng_next(rng_t *r)
{
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* uniform in [0, n) (n > 0; the tiny modulo bias does not matter here) */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
  return (rng_next(r) >> 11) % n;
}

/* uniform in [lo, hi] */
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
  return lo + rng_below(r, hi - lo + 1);
}

/* Roughly log-uniform in [lo, hi]: a random power-of-two band, then uniform
 * inside it. Small sizes are as likely as large bands, as in real programs. */
static inline size_t rng_logsize(rng_t *r, size_t lo, size_t hi)
{
  unsigned bands = 0;
  while ((lo << (bands + 1)) <= hi)
    bands++;
  size_t base = lo << rng_below(r, bands + 1);
  size_t top = base * 2 - 1;
  if (top > hi)
    top = hi;
  return (size_t)rng_range(r, base, top);
}

/* Like rng_logsize, but the band is geometric: [lo, 2 lo) half the time,
 * the next band a quarter, and so on (the last band takes what is left):
 * many small sizes, few large ones. */
static inline size_t rng_skewsize(rng_t *r, size_t lo, size_t hi)
{
  unsigned bands = 0;
  while ((lo << (bands + 1)) <= hi)
    bands++;
  unsigned b = 0;
  uint64_t x = rng_next(r);
  while (b < bands && (x & 1)) {
    b++;
    x >>= 1;
  }
  size_t base = lo << b;
  size_t top = base * 2 - 1;
  if (top > hi)
    top = hi;
  return (size_t)rng_range(r, base, top);
}

/* Part i of total split into parts shares that differ by at most one, so
 * that a workload does the same total work at any thread count. */
static inline long share_of(long total, long parts, long i)
{
  return total / parts + (i < total % parts ? 1 : 0);
}

/* ---- block patterns --------------------------------------------------------
 *
 * Blocks of 16 bytes or more carry a header {key, size}; the rest holds a
 * byte derived from the key: every byte for blocks up to BLK_FULL bytes, for
 * larger blocks the first and last BLK_EDGE bytes and one byte per 4 KiB page
 * in between (so every page of a block is written and checked). Blocks under
 * 16 bytes are filled with the pattern byte only; the caller keeps their key.
 */

#define BLK_FULL 1024u
#define BLK_EDGE 256u
#define BLK_PAGE 4096u

typedef struct {
  uint64_t key;
  uint64_t size;
} blk_hdr_t;

static inline unsigned char pat_byte(uint64_t key)
{
  unsigned char b = (unsigned char)(key ^ (key >> 13) ^ (key >> 29) ^ (key >> 43));
  return b ? b : 0xA5;
}

static inline void blk_fill(void *p, size_t n, uint64_t key)
{
  unsigned char *c = (unsigned char *)p;
  unsigned char b = pat_byte(key);
  if (n <= BLK_FULL) {
    memset(c, b, n);
  } else {
    memset(c, b, BLK_EDGE);
    memset(c + n - BLK_EDGE, b, BLK_EDGE);
    for (size_t o = BLK_PAGE; o < n - BLK_EDGE; o += BLK_PAGE)
      c[o] = b;
  }
  if (n >= sizeof(blk_hdr_t)) {
    blk_hdr_t h = {key, (uint64_t)n};
    memcpy(c, &h, sizeof h);
  }
}

/* Returns 0 when the block holds what blk_fill(p, n, key) wrote. */
static inline int blk_bad(const void *p, size_t n, uint64_t key)
{
  const unsigned char *c = (const unsigned char *)p;
  unsigned char b = pat_byte(key);
  size_t start = 0;
  if (n >= sizeof(blk_hdr_t)) {
    blk_hdr_t h;
    memcpy(&h, c, sizeof h);
    if (h.key != key || h.size != n)
      return 1;
    start = sizeof h;
  }
  unsigned bad = 0;
  if (n <= BLK_FULL) {
    for (size_t i = start; i < n; i++)
      bad |= c[i] ^ b;
  } else {
    for (size_t i = start; i < BLK_EDGE; i++)
      bad |= c[i] ^ b;
    for (size_t i = n - BLK_EDGE; i < n; i++)
      bad |= c[i] ^ b;
    for (size_t o = BLK_PAGE; o < n - BLK_EDGE; o += BLK_PAGE)
      bad |= c[o] ^ b;
  }
  return bad != 0;
}

static inline void blk_check(const char *where, const void *p, size_t n, uint64_t key)
{
  if (blk_bad(p, n, key)) {
    const unsigned char *c = (const unsigned char *)p;
    unsigned long long hk = 0, hs = 0;
    if (n >= sizeof(blk_hdr_t)) {
      blk_hdr_t h;
      memcpy(&h, c, sizeof h);
      hk = (unsigned long long)h.key;
      hs = (unsigned long long)h.size;
    }
    bench_fail("%s: block %p size %zu key %#llx corrupted (header key %#llx size %llu, "
               "expected byte %#x, first bytes %02x %02x %02x %02x)",
               where, p, n, (unsigned long long)key, hk, hs, pat_byte(key), c[0], n > 1 ? c[1] : 0,
               n > 2 ? c[2] : 0, n > 3 ? c[3] : 0);
  }
}

/* Check a block that carries its own header (n >= 16) and return its size. */
static inline size_t blk_check_self(const char *where, const void *p)
{
  blk_hdr_t h;
  memcpy(&h, p, sizeof h);
  if (h.size < sizeof(blk_hdr_t) || h.size > ((uint64_t)1 << 40))
    bench_fail("%s: block %p has a corrupted header (key %#llx size %llu)", where, p,
               (unsigned long long)h.key, (unsigned long long)h.size);
  blk_check(where, p, (size_t)h.size, h.key);
  return (size_t)h.size;
}

/* A block that remembers its size and key: for blocks under 16 bytes,
 * which carry no header (blk_fill). */
typedef struct {
  void *p;
  size_t n;
  uint64_t key;
} blk_t;

static inline void blk_new(blk_t *b, size_t n, uint64_t key)
{
  b->p = bench_malloc(n);
  b->n = n;
  b->key = key;
  blk_fill(b->p, n, key);
}

/* Check and free b if it holds a block; leaves it empty. */
static inline void blk_drop(const char *where, blk_t *b)
{
  if (b->p == NULL)
    return;
  blk_check(where, b->p, b->n, b->key);
  free(b->p);
  b->p = NULL;
}

/* malloc(n >= 16) filled with key's pattern: the block describes itself. */
static inline void *blk_new_self(size_t n, uint64_t key)
{
  void *p = bench_malloc(n);
  blk_fill(p, n, key);
  return p;
}

/* Check a self-describing block and free it (NULL: nothing). */
static inline void blk_drop_self(const char *where, void *p)
{
  if (p == NULL)
    return;
  blk_check_self(where, p);
  free(p);
}

/* ---- threads ---------------------------------------------------------------- */

/* Start n threads running fn(&args[i * stride]) and wait for all of them. */
static void run_threads(long n, void *(*fn)(void *), void *args, size_t stride)
{
  pthread_t *tids = (pthread_t *)bench_malloc((size_t)n * sizeof *tids);
  for (long i = 0; i < n; i++) {
    int e = pthread_create(&tids[i], NULL, fn, (char *)args + (size_t)i * stride);
    if (e != 0)
      bench_fail("pthread_create: %s", strerror(e));
  }
  for (long i = 0; i < n; i++)
    pthread_join(tids[i], NULL);
  free(tids);
}

/* run_threads, timed: seconds from the first start to the last join. */
static double run_threads_timed(long n, void *(*fn)(void *), void *args, size_t stride)
{
  double t0 = now_s();
  run_threads(n, fn, args, stride);
  return now_s() - t0;
}

/* ---- a queue of pointers between threads ----------------------------------
 *
 * A bounded ring behind one mutex: bq_push waits while it is full, bq_pop
 * while it is empty and writers are left; bq_pop returns NULL once every
 * writer has called bq_writer_done and the ring is empty. */

#define BQ_CAP 64

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  void *ring[BQ_CAP];
  long head, count, writers;
} bq_t;

static void bq_init(bq_t *q, long writers)
{
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  q->head = q->count = 0;
  q->writers = writers;
}

static void bq_push(bq_t *q, void *p)
{
  pthread_mutex_lock(&q->mu);
  while (q->count == BQ_CAP)
    pthread_cond_wait(&q->not_full, &q->mu);
  q->ring[(q->head + q->count) % BQ_CAP] = p;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

static void *bq_pop(bq_t *q)
{
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && q->writers > 0)
    pthread_cond_wait(&q->not_empty, &q->mu);
  void *p = NULL;
  if (q->count > 0) {
    p = q->ring[q->head];
    q->head = (q->head + 1) % BQ_CAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->mu);
  return p;
}

static void bq_writer_done(bq_t *q)
{
  pthread_mutex_lock(&q->mu);
  q->writers--;
  pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

/* ---- memory ------------------------------------------------------------------ */

/* Resident set size of this process in KiB, from /proc/self/statm. */
static long rss_kib(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return -1;
  long size = 0, resident = -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    resident = -1;
  fclose(f);
  if (resident < 0)
    return -1;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
