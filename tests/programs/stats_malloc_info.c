/* stats_malloc_info.c: a program linked with the C library's malloc only;
 * tests/programs/stats_check.py runs it with libwalloc.so preloaded. It allocates,
 * checks that malloc_info is walloc's (the library dladdr names) and that
 * options other than 0 are refused with EINVAL, as glibc does, then writes
 * malloc_info(0, stdout). Exit status 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  void *blocks[100];
  for (int i = 0; i < 100; i++) blocks[i] = malloc((size_t)(i + 1) * 48);
  Dl_info info;
  if (dladdr((void *)malloc_info, &info) == 0 || info.dli_fname == NULL || strstr(info.dli_fname, "libwalloc") == NULL) {
    fprintf(stderr, "stats-malloc-info: malloc_info is not walloc's (%s)\n", info.dli_fname ? info.dli_fname : "?");
    return 1;
  }
  errno = 0;
  if (malloc_info(1, stdout) != -1 || errno != EINVAL) {
    fprintf(stderr, "stats-malloc-info: malloc_info(1, ...) must fail with EINVAL\n");
    return 1;
  }
  if (malloc_info(0, stdout) != 0) {
    fprintf(stderr, "stats-malloc-info: malloc_info(0, stdout) failed\n");
    return 1;
  }
  for (int i = 0; i < 100; i++) free(blocks[i]);
  return 0;
}
