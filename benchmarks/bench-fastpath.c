/* bench-fastpath: the cost of one malloc + free pair on the fast path.
 *
 *   bench-fastpath [N=50000000] [SIZE=32]
 *
 * runs `p = malloc(SIZE); free(p);` N times. The pointer goes through a
 * volatile store so the compiler cannot drop the pair. Under callgrind, two
 * runs with different N give instructions per pair as
 * (I(N2) - I(N1)) / (N2 - N1), which cancels start-up and exit.
 *
 * It also prints which shared object supplies malloc (malloc_from=...), so a
 * driver can confirm that LD_PRELOAD took effect. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *volatile sink;

static const char *malloc_from(void)
{
  /* &malloc is resolved by the dynamic linker: the interposed definition */
  void *(*volatile fp)(size_t) = malloc;
  Dl_info info;
  if (dladdr((void *)(uintptr_t)fp, &info) != 0 && info.dli_fname != NULL)
    return info.dli_fname;
  return "?";
}

int main(int argc, char **argv)
{
  if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    printf("usage: %s [N=50000000] [SIZE=32]\n", argv[0]);
    return 0;
  }
  long n = argc > 1 ? strtol(argv[1], NULL, 0) : 50000000;
  long size = argc > 2 ? strtol(argv[2], NULL, 0) : 32;
  if (n <= 0 || size < 0) {
    fprintf(stderr, "%s: bad arguments\n", argv[0]);
    return 64;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    void *p = malloc((size_t)size);
    if (p == NULL && size != 0) { /* malloc(0) may return NULL */
      fprintf(stderr, "BENCH FAILURE: malloc(%ld) returned NULL\n", size);
      return 2;
    }
    sink = p;
    free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("bench-fastpath: n=%ld size=%ld time=%.3fs ns/pair=%.2f ok\n", n, size, t,
         t * 1e9 / (double)n);
  printf("malloc_from=%s\n", malloc_from());
  return 0;
}
