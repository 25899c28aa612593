/* plain_malloc.c: a program that only uses the C library's allocation (the
 * malloc family, strdup, stdio), linked twice: with walloc (-sMALLOC=none and
 * libwalloc.a) and with Emscripten's default dlmalloc. check_symbols.py proves
 * that dlmalloc's functions are in the second module and absent from the
 * first, and prints the two .wasm sizes.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  enum { N = 10000 };
  static char *p[N];
  size_t total = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++) {
      p[i] = malloc((size_t)(i * 37 % 2000) + 1);
      if (p[i] == NULL) return 1;
      p[i][0] = (char)i;
    }
    for (int i = 0; i < N; i += 2) {
      p[i] = realloc(p[i], (size_t)(i % 300) + 1);
      if (p[i] == NULL) return 1;
    }
    for (int i = 0; i < N; i++) {
      total += malloc_usable_size(p[i]);
      free(p[i]);
    }
  }
  void *a = aligned_alloc(4096, 4096);
  char *s = strdup("done");
  int *z = calloc(100, sizeof *z);
  printf("%s: %zu usable bytes seen, %p %d\n", s, total, a, z[99]);
  free(z);
  free(s);
  free(a);
  return 0;
}
