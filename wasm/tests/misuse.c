/* misuse.c: misuse of free in a module where walloc replaces dlmalloc (issue
 * 15). Each scenario (argv[1]) fills some live blocks, misuses free once, and
 * must stop the program there: on wasm release builds walloc prints nothing
 * and traps (abort), since the option to go on is fixed at its default.
 * misuse.py runs every scenario under node and checks that none reaches
 * "survived" and none finds a live block changed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *live[16];

static void check_live(const char *when) {
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 100; j++)
      if (live[i][j] != (unsigned char)(i + 1)) { printf("heap corrupted %s\n", when); exit(2); }
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  for (int i = 0; i < 16; i++) {
    live[i] = malloc(100);
    memset(live[i], i + 1, 100);
  }
  printf("before %s\n", what);
  fflush(stdout);
  if (strcmp(what, "double_free") == 0) {
    char *p = malloc(64);
    free(p);
    free(p);
  } else if (strcmp(what, "double_free_large") == 0) {
    char *p = malloc(300 << 10);
    free(p);
    free(p);
  } else if (strcmp(what, "interior") == 0) {
    char *p = malloc(256);
    free(p + 16);
  } else if (strcmp(what, "realloc_freed") == 0) {
    char *p = malloc(64);
    free(p);
    p = realloc(p, 200);
  } else if (strcmp(what, "never_handed_out") == 0) {
    char *p = malloc(7000);
    free(p + 7168 * 4);
  } else {
    printf("unknown scenario %s\n", what);
    return 3;
  }
  check_live("after the misuse");
  printf("survived %s\n", what);
  return 0;
}
