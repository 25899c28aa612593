/* threads.c: the pthreads variant of the wasm build (-Dwasm_pthreads=true)
 * under load: 8 pthreads allocate through malloc, calloc, realloc, memalign
 * and the tiers at the same time, check each other's data, and free their
 * own blocks and their neighbour's (cross-thread frees), in two rounds: the
 * second round's threads run on the workers the first round's threads left,
 * whose TLS blocks Emscripten allocated and freed through walloc.
 *
 * Linked with -sPROXY_TO_PTHREAD (main runs on a worker, so creating more
 * threads than the pool holds never blocks the browser thread that starts
 * them) and -sEXIT_RUNTIME (the pool's workers would keep node alive).
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include "walloc.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define ROUNDS 2
#define BLOCKS 1500
#define HANDLES 300

static atomic_int failures;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
      atomic_fetch_add(&failures, 1);                                        \
    }                                                                        \
  } while (0)

typedef struct block_s {
  unsigned char *p;
  size_t size;
} block_t;

static block_t blocks[THREADS][BLOCKS];
static walloc_handle handles[THREADS][HANDLES];
static size_t handle_sizes[THREADS][HANDLES];
static pthread_barrier_t barrier;

static uint32_t rng_next(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/* Mostly small and medium blocks, some large (up to 2 MiB), a few huge. */
static size_t pick_size(uint32_t *s) {
  uint32_t r = rng_next(s);
  switch (r % 100) {
  case 0: return (size_t)3 << 20;
  case 1: case 2: case 3: return 20000 + r % 600000;
  default: return 1 + r % (r % 4 == 0 ? 16384 : 256);
  }
}

static unsigned char tag(int t, int i) { return (unsigned char)(t * 31 + i * 7 + 1); }

static bool holds(const unsigned char *p, size_t n, unsigned char v) {
  /* first, last and a stride in between: enough to catch a shared block */
  for (size_t k = 0; k < n; k += 61) {
    if (p[k] != v) return false;
  }
  return p[n - 1] == v;
}

static void *run(void *arg) {
  int t = (int)(intptr_t)arg;
  int next = (t + 1) % THREADS;
  uint32_t seed = 0x9E3779B9u * (uint32_t)(t + 1);

  /* 1. allocate and fill */
  for (int i = 0; i < BLOCKS; i++) {
    size_t n = pick_size(&seed);
    unsigned char *p;
    switch (i % 4) {
    case 0: p = calloc(1, n); CHECK(p == NULL || holds(p, n, 0)); break;
    case 1: p = memalign((size_t)16 << (i % 7), n); CHECK(((uintptr_t)p & (((size_t)16 << (i % 7)) - 1)) == 0); break;
    case 2: p = realloc(malloc(n / 2 + 1), n); break;
    default: p = malloc(n); break;
    }
    CHECK(p != NULL);
    if (p == NULL) n = 0;
    else memset(p, tag(t, i), n);
    blocks[t][i].p = p;
    blocks[t][i].size = n;
  }
  for (int i = 0; i < HANDLES; i++) {
    walloc_tier tier = (walloc_tier)(i % 3);
    size_t n = 8 + rng_next(&seed) % 2000;
    walloc_handle h = walloc_allocate(n, tier);
    CHECK(h != WALLOC_NULL_HANDLE);
    unsigned char *p = walloc_handle_to_ptr(h);
    CHECK(p != NULL);
    if (p != NULL) memset(p, tag(t, i) ^ 0x5A, n);
    handles[t][i] = h;
    handle_sizes[t][i] = n;
  }
  pthread_barrier_wait(&barrier);

  /* 2. the neighbour's data is intact; free our even blocks and its odd
     ones, and its handles of odd index (cross-thread frees) */
  for (int i = 0; i < BLOCKS; i++) {
    block_t *b = &blocks[next][i];
    if (b->p != NULL) CHECK(holds(b->p, b->size, tag(next, i)));
  }
  for (int i = 0; i < HANDLES; i++) {
    unsigned char buf[2048];
    size_t n = handle_sizes[next][i];
    CHECK(walloc_read_data(handles[next][i], 0, buf, n) == WALLOC_OK && holds(buf, n, tag(next, i) ^ 0x5A));
  }
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < BLOCKS; i += 2) {
    free(blocks[t][i].p);
    blocks[t][i].p = NULL;
  }
  for (int i = 1; i < BLOCKS; i += 2) {
    free(blocks[next][i].p);
    blocks[next][i].p = NULL;
  }
  for (int i = 1; i < HANDLES; i += 2) {
    CHECK(walloc_deallocate(handles[next][i]) == WALLOC_OK);
  }

  /* 3. allocate again while the others free: new blocks hold their data */
  block_t again[200];
  for (int i = 0; i < 200; i++) {
    size_t n = pick_size(&seed);
    again[i].p = malloc(n);
    again[i].size = again[i].p != NULL ? n : 0;
    CHECK(again[i].p != NULL);
    if (again[i].p != NULL) memset(again[i].p, tag(t, i) ^ 0xC3, n);
  }
  for (int i = 0; i < 200; i++) {
    if (again[i].p != NULL) CHECK(holds(again[i].p, again[i].size, tag(t, i) ^ 0xC3));
    free(again[i].p);
  }
  for (int i = 0; i < HANDLES; i += 2) {
    unsigned char *p = walloc_handle_to_ptr(handles[t][i]);
    CHECK(p != NULL && holds(p, handle_sizes[t][i], tag(t, i) ^ 0x5A));
    CHECK(walloc_deallocate(handles[t][i]) == WALLOC_OK);
  }
  return NULL;
}

int main(void) {
  for (int round = 0; round < ROUNDS; round++) {
    memset(blocks, 0, sizeof blocks);
    CHECK(pthread_barrier_init(&barrier, NULL, THREADS) == 0);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
      CHECK(pthread_create(&th[t], NULL, run, (void *)(intptr_t)t) == 0);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    for (int t = 0; t < THREADS; t++) {
      for (int i = 0; i < BLOCKS; i++) CHECK(blocks[t][i].p == NULL);
    }
    walloc_heap_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    walloc_heap_stats_get(&s);
    CHECK(s.foreign_frees == 0); /* the runtime's frees (TLS blocks, key arrays) found their blocks */
    printf("round %d: %d threads, %llu allocations, peak %llu threads, memory %zu bytes\n", round + 1,
           THREADS, (unsigned long long)s.allocations, (unsigned long long)s.threads_peak,
           (size_t)s.rss_bytes);
  }
  /* the main thread's heap still works after the others left */
  char *p = malloc(100);
  CHECK(p != NULL && walloc_owns(p));
  free(p);
  int f = atomic_load(&failures);
  printf("threads: %d failed checks\n", f);
  return f != 0;
}
