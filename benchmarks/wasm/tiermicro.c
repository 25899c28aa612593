/* tiermicro.c: the cost per object of tier allocation on wasm, with and
 * without walloc_handle_to_ptr, against malloc + free (docs/benchmarks.md).
 *
 *   emcc -O2 -sALLOW_MEMORY_GROWTH=1 -sMALLOC=none -Iinclude \
 *        benchmarks/wasm/tiermicro.c build-wasm/libwalloc.a -o tm.js
 *   emcc -O2 -sALLOW_MEMORY_GROWTH=1 -sMALLOC=dlmalloc -DNO_WALLOC \
 *        benchmarks/wasm/tiermicro.c -o tm-dlmalloc.js
 *   node --no-experimental-fetch tm.js 0|1|2      (tm-dlmalloc.js: 2 only)
 *
 * 200 rounds of 20,000 objects of 16-256 bytes. Mode 0: walloc_allocate in
 * the entity tier, one reset per round. Mode 1: the same plus
 * walloc_handle_to_ptr and a store into every block. Mode 2: malloc of the
 * same size immediately followed by free (whichever malloc is linked).
 */
#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef NO_WALLOC
typedef unsigned long long walloc_handle;
#define walloc_allocate(size, tier) 0
#define walloc_handle_to_ptr(h) ((char *)0)
#define walloc_reset_tier(t) 0
#else
#include <walloc.h>
#endif

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (unsigned)(rng >> 16);
}

int main(int argc, char **argv) {
  int mode = argc > 1 ? atoi(argv[1]) : 0;
  static unsigned short size[20000];
  for (int i = 0; i < 20000; i++) size[i] = (unsigned short)(16 + next() % 241);
  unsigned long long sum = 0;
  double t0 = emscripten_get_now();
  for (int r = 0; r < 200; r++) {
    for (int i = 0; i < 20000; i++) {
      if (mode == 2) {
        char *p = malloc(size[i]);
        sum += (size_t)p;
        free(p);
        continue;
      }
      walloc_handle h = walloc_allocate(size[i], WALLOC_TIER_ENTITY);
      if (mode == 1) {
        char *q = walloc_handle_to_ptr(h);
        q[0] = 1;
        sum += (size_t)q;
      } else {
        sum += h;
      }
    }
    if (mode != 2) walloc_reset_tier(WALLOC_TIER_ENTITY);
  }
  printf("mode %d: %.2f ns per object (checksum %llu)\n", mode, (emscripten_get_now() - t0) * 1e6 / 4e6, sum & 1);
  return 0;
}
