/* workload.c: the allocator workload of issue 7's wasm benchmark, built with
 * emcc three ways (dlmalloc, emmalloc, walloc; see run.py).
 *
 *   mix    a live set of SLOTS blocks; each step frees or reallocs a random
 *          slot and puts a new block there: mostly small (8-512 B), some
 *          medium (512 B-16 KiB), a few large (16 KiB-1 MiB), and every
 *          HUGE_EVERY steps a huge block (2-16 MiB) kept in a window of 8.
 *   tiers  ROUNDS times: ALLOCS objects (16-256 B) then free them all; with
 *          walloc the same objects come from the entity tier and one
 *          walloc_reset_tier frees them (-DWITH_WALLOC).
 *
 * Prints one line: mode, time in ms, peak linear memory (memory.buffer size
 * at exit: wasm memory never shrinks, so its size at exit is its peak), and
 * a checksum so nothing is optimised away.
 *
 * usage: workload.js mix|tiers [stats]   (stats: walloc's table on stderr)
 */
#include <emscripten.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef WITH_WALLOC
#include <walloc.h>
#endif

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint32_t next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static size_t range(size_t lo, size_t hi) { return lo + next() % (hi - lo + 1); }

#define SLOTS 20000
#define STEPS 2000000
#define HUGE_EVERY 20000
#define HUGE_WINDOW 8

static size_t pick_size(void) {
  uint32_t r = next() % 1000;
  if (r < 850) return range(8, 512);
  if (r < 990) return range(513, 16384);
  return range(16385, 1 << 20);
}

static uint64_t mix(void) {
  static void *slot[SLOTS];
  static size_t len[SLOTS];
  void *huge[HUGE_WINDOW] = {0};
  uint64_t sum = 0;
  for (int i = 0; i < SLOTS; i++) {
    len[i] = pick_size();
    slot[i] = malloc(len[i]);
    memset(slot[i], i, len[i] < 64 ? len[i] : 64);
  }
  for (long k = 0; k < STEPS; k++) {
    uint32_t i = next() % SLOTS;
    sum += ((unsigned char *)slot[i])[0];
    size_t n = pick_size();
    if (next() % 8 == 0) {                  /* realloc: grow or shrink in place or move */
      slot[i] = realloc(slot[i], n);
    } else {
      free(slot[i]);
      slot[i] = malloc(n);
    }
    if (slot[i] == NULL) abort();
    len[i] = n;
    memset(slot[i], (int)k, n < 64 ? n : 64);
    if (k % HUGE_EVERY == 0) {
      int h = (int)(k / HUGE_EVERY) % HUGE_WINDOW;
      free(huge[h]);
      size_t hn = range(2 << 20, 16 << 20);
      huge[h] = malloc(hn);
      if (huge[h] == NULL) abort();
      memset(huge[h], 1, 4096);
      ((char *)huge[h])[hn - 1] = 2;
    }
  }
  for (int i = 0; i < SLOTS; i++) free(slot[i]);
  for (int h = 0; h < HUGE_WINDOW; h++) free(huge[h]);
  return sum;
}

#define ROUNDS 200
#define ALLOCS 20000

static uint64_t tiers(void) {
  uint64_t sum = 0;
#ifndef WITH_WALLOC
  static void *p[ALLOCS];
#endif
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < ALLOCS; i++) {
      size_t n = range(16, 256);
#ifdef WITH_WALLOC
      walloc_handle h = walloc_allocate(n, WALLOC_TIER_ENTITY);
      if (h == WALLOC_NULL_HANDLE) abort();
      char *q = walloc_handle_to_ptr(h);
#else
      char *q = p[i] = malloc(n);
      if (q == NULL) abort();
#endif
      q[0] = (char)i;
      sum += (unsigned char)q[0];
    }
#ifdef WITH_WALLOC
    if (walloc_reset_tier(WALLOC_TIER_ENTITY) != WALLOC_OK) abort();
#else
    for (int i = 0; i < ALLOCS; i++) free(p[i]);
#endif
  }
  return sum;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "mix";
  double t0 = emscripten_get_now();
  uint64_t sum = strcmp(mode, "tiers") == 0 ? tiers() : strcmp(mode, "mix") == 0 ? mix() : 0;
  double ms = emscripten_get_now() - t0;
  printf("%s time_ms=%.1f peak_bytes=%zu sum=%llu\n", mode, ms,
         (size_t)__builtin_wasm_memory_size(0) * 65536, (unsigned long long)sum);
#ifdef WITH_WALLOC
  if (argc > 2 && strcmp(argv[2], "stats") == 0) walloc_stats_print(2);
#endif
  return 0;
}
