/* stack_overflow.c: a deep recursion next to a growing heap (issue 7). The
 * seeds' first prototype broke when the heap grew into the stack. Each round
 * allocates 1 MiB more heap, recurses deeper (4 KiB frames), then checks
 * every heap block: the recursion must end in a reported stack overflow
 * (built with -sSTACK_OVERFLOW_CHECK=2) or a trap, never in a heap block
 * that silently changed. Emscripten places the stack below static data and
 * the heap above both, so an overflow runs away from walloc's memory.
 * stack_overflow.py runs it and checks the output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned char *blocks[256];
static int nblocks;
__attribute__((noinline)) static void touch(volatile unsigned char *f, int n) { f[0] = (unsigned char)n; f[4095] = (unsigned char)(n * 7); }
__attribute__((noinline)) static int deep(int n) {
  volatile unsigned char frame[4096];
  touch(frame, n);
  if (n == 0) return frame[0];
  int r = deep(n - 1);
  return r ^ frame[4095] ^ frame[0];
}
int main(void) {
  for (int round = 1; round < 200; round++) {
    unsigned char *p = malloc(1 << 20);
    memset(p, round & 0xff, 1 << 20);
    blocks[nblocks++] = p;
    deep(round * 8);
    for (int i = 0; i < nblocks; i++)
      for (int j = 0; j < (1 << 20); j += 4093)
        if (blocks[i][j] != ((i + 1) & 0xff)) { printf("heap corrupted in round %d\n", round); return 2; }
    printf("round %d ok\n", round);
    fflush(stdout);
  }
  return 0;
}
