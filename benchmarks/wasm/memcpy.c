/* memcpy.c: walloc_memcpy on WebAssembly, against Emscripten's memcpy and a
 * byte loop, under node (driven by benchmarks/wasm/memcpy.py).
 *
 *   node memcpy.js [rounds] [size,size,...]
 *
 * Variants: walloc_memcpy as it dispatches by default (the simd128 kernel in
 * a -msimd128 build), walloc_memcpy forced to the portable kernel, the libc
 * memcpy Emscripten links (called through a volatile pointer, so every call
 * is a real call), and a byte loop (one byte per iteration, not vectorised,
 * not inlined). Method as in benchmarks/bench-memcpy.c: warm 64-byte-aligned
 * buffers, one sample is `reps` copies with reps chosen so that a libc sample
 * lasts about 2 ms, each round samples every (size, variant) pair, the table
 * keeps the best sample. Every variant's result is checked against the source.
 * Prints one CSV line per (size, variant): size,variant,best_ns,mbps.
 */
#include <emscripten.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walloc.h"
#include "simd/copy.h"

static void *(*volatile libc_memcpy)(void *, const void *, size_t) = memcpy;

__attribute__((noinline)) static void *byte_loop(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
#pragma clang loop vectorize(disable) interleave(disable) unroll(disable)
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}

enum { V_WALLOC, V_PORTABLE, V_LIBC, V_BYTE, V_COUNT };
static const char *const names[V_COUNT] = {"walloc", "walloc-portable", "libc", "byte loop"};

#define RUN(CALL)                                                  \
  do {                                                             \
    double t0 = emscripten_get_now();                              \
    for (size_t i = 0; i < reps; i++) CALL(dst, src, n);           \
    return (emscripten_get_now() - t0) * 1e6;                      \
  } while (0)

__attribute__((noinline)) static double run_walloc(unsigned char *dst, const unsigned char *src, size_t n, size_t reps) { RUN(walloc_memcpy); }
__attribute__((noinline)) static double run_libc(unsigned char *dst, const unsigned char *src, size_t n, size_t reps) { RUN(libc_memcpy); }
__attribute__((noinline)) static double run_byte(unsigned char *dst, const unsigned char *src, size_t n, size_t reps) { RUN(byte_loop); }

static wl_copy_kernel_t default_kernel;

static double run(int v, unsigned char *dst, const unsigned char *src, size_t n, size_t reps) {
  switch (v) {
    case V_WALLOC: wl_copy_force(default_kernel); return run_walloc(dst, src, n, reps);
    case V_PORTABLE: wl_copy_force(WL_COPY_PORTABLE); return run_walloc(dst, src, n, reps);
    case V_LIBC: return run_libc(dst, src, n, reps);
    default: return run_byte(dst, src, n, reps);
  }
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 11;
  static const size_t defaults[] = {6, 8, 13, 14, 19, 27, 32, 64, 100, 256, 1024, 4096, 16384, 65536};
  size_t sizes[64], ns = 0;
  if (argc > 2) {
    for (char *p = argv[2]; *p && ns < 64;) {
      sizes[ns++] = strtoull(p, &p, 10);
      if (*p == ',') p++;
    }
  } else {
    for (; ns < sizeof defaults / sizeof *defaults; ns++) sizes[ns] = defaults[ns];
  }
  size_t max = 0;
  for (size_t i = 0; i < ns; i++) max = sizes[i] > max ? sizes[i] : max;
  unsigned char *src = aligned_alloc(64, max + 64), *dst = aligned_alloc(64, max + 64);
  if (!src || !dst) return 1;
  for (size_t i = 0; i < max; i++) src[i] = (unsigned char)(i * 131u + 7);
  default_kernel = wl_copy_active();
  fprintf(stderr, "default kernel: %s\n", wl_copy_name(default_kernel));

  static double best[64][V_COUNT];
  size_t reps[64];
  for (size_t i = 0; i < ns; i++) {  /* reps: a libc sample of about 2 ms */
    size_t r = 1;
    while (run(V_LIBC, dst, src, sizes[i], r) < 2e6 && r < ((size_t)1 << 30)) r *= 2;
    reps[i] = r;
    for (int v = 0; v < V_COUNT; v++) best[i][v] = 1e300;
  }
  for (int round = 0; round < rounds; round++) {
    for (size_t i = 0; i < ns; i++) {
      for (int k = 0; k < V_COUNT; k++) {
        int v = (k + round) % V_COUNT;  /* rotated order */
        memset(dst, 0, sizes[i]);
        double t = run(v, dst, src, sizes[i], reps[i]) / (double)reps[i];
        if (memcmp(dst, src, sizes[i]) != 0) {
          fprintf(stderr, "%s: wrong bytes at size %zu\n", names[v], sizes[i]);
          return 1;
        }
        if (t < best[i][v]) best[i][v] = t;
      }
    }
  }
  printf("size,variant,best_ns,mbps\n");
  for (size_t i = 0; i < ns; i++) {
    for (int v = 0; v < V_COUNT; v++) {
      printf("%zu,%s,%.3f,%.1f\n", sizes[i], names[v], best[i][v], (double)sizes[i] / best[i][v] * 1e3);
    }
  }
  wl_copy_force(default_kernel);
  return 0;
}
