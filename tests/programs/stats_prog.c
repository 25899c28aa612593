/* stats_prog.c: a program for tests/programs/stats_check.py, which checks what it
 * prints (and what walloc reports when it exits).
 *
 *   stats-prog doc      uses the heap, every tier, a scope, a frame, a pool
 *                       and a ring, checks walloc_stats_json's return values
 *                       (length with len 0, the same with a buffer and with
 *                       a buffer too small, which gets a terminated prefix)
 *                       and prints the document on stdout
 *   stats-prog exit     the same use, then exits (the exit report is the test's)
 *   stats-prog fork N   forks N children that each use the heap and exit
 *                       through exit(), printing each child's pid on stdout
 * Exit status 0, or 1 with a message on stderr.
 */
#include "walloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;
#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "stats-prog: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      failed = 1;                                                        \
    }                                                                    \
  } while (0)

static void *blocks[64];

/* Something in every section of the document; kept live until exit. */
static void use_everything(void) {
  /* walloc_ names: walloc's even where malloc is not (-Doverride=false) */
  for (size_t i = 0; i < 64; i++) blocks[i] = walloc_malloc(16 + i * 200);
  blocks[63] = walloc_realloc(blocks[63], (size_t)1 << 20);  /* large */
  for (int t = 0; t < WALLOC_TIER_COUNT; t++) CHECK(walloc_allocate(1000, (walloc_tier)t) != WALLOC_NULL_HANDLE);
  walloc_scope *scope = walloc_scope_enter(WALLOC_TIER_ENTITY, 0);
  CHECK(scope != NULL && walloc_scope_allocate(scope, 500) != WALLOC_NULL_HANDLE);
  walloc_frame_begin();
  CHECK(walloc_frame_alloc(700, 16) != NULL);
  walloc_pool *pool = walloc_pool_create(64, 16);
  CHECK(pool != NULL && walloc_pool_alloc(pool) != NULL);
  walloc_ring *ring = walloc_ring_create(WALLOC_TIER_RENDER, 1 << 16);
  CHECK(ring != NULL && walloc_ring_begin_frame(ring, 1) == WALLOC_OK);
  CHECK(walloc_ring_allocate(ring, 256) != WALLOC_NULL_HANDLE);
}

static char doc[1 << 17], small[32];

static int print_document(void) {
  memset(doc, 'x', sizeof doc); /* touched before: no page faults between the calls */
  size_t need = 0, whole = 1, cut = 2;
  for (int i = 0; i < 8 && !(need == whole && whole == cut); i++) { /* the figures may move in between (RSS) */
    need = walloc_stats_json(NULL, 0);
    whole = walloc_stats_json(doc, sizeof doc);
    cut = walloc_stats_json(small, 16);
  }
  CHECK(need > 0 && need < sizeof doc);
  CHECK(whole == need && strlen(doc) == need);
  CHECK(cut == need && small[15] == 0 && strncmp(small, doc, 15) == 0);
  if (!failed) printf("%s\n", doc);
  return failed;
}

static int fork_children(int n) {
  for (int i = 0; i < n; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      use_everything();
      exit(failed); /* exit, not _exit: the library's destructor reports */
    }
    printf("%d\n", (int)pid);
  }
  int status, bad = 0;
  while (wait(&status) > 0) bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  return bad;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "fork") == 0 && argc > 2) {
    blocks[0] = walloc_malloc(100); /* the parent's report has a block too */
    return fork_children(atoi(argv[2]));
  }
  use_everything();
  if (strcmp(mode, "doc") == 0) return print_document();
  if (strcmp(mode, "exit") == 0) return failed;
  fprintf(stderr, "usage: stats-prog doc | exit | fork N\n");
  return 2;
}
