/* trivial.c: the smallest program that links an allocator (malloc, free,
 * realloc, calloc). Its .wasm size with each allocator, minus the same with
 * -sMALLOC=none and no allocator at all would be ideal; run.py reports the
 * sizes so the allocators' own code can be compared. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  char *p = malloc((size_t)argc * 100);
  p = realloc(p, (size_t)argc * 1000);
  char *q = calloc((size_t)argc, 16);
  printf("%p %p\n", (void *)p, (void *)q);
  free(q);
  free(p);
  return 0;
}
