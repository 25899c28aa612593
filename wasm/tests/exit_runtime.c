/* exit_runtime.c: a program built with -sEXIT_RUNTIME=1 links against walloc
 * (musl's atexit allocates with __libc_calloc, which walloc must define with
 * -sMALLOC=none) and its atexit handlers run with walloc still working.
 * main returns 3; the handler allocates, checks the block is walloc's, and
 * ends the process with 0. So exit status 0 means the handler ran. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walloc.h"

static void at_exit(void) {
  char *p = malloc(100);
  if (p == NULL || !walloc_owns(p)) _exit(1);
  memset(p, 0x5a, 100);
  free(p);
  puts("atexit handler ran, walloc answered");
  fflush(stdout);
  _exit(0);
}

int main(void) {
  for (int i = 0; i < 40; i++) { /* more handlers than musl's static block of 32 */
    if (atexit(at_exit) != 0) return 2;
  }
  return 3;
}
