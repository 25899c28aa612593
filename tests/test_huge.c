/* test_huge.c: huge blocks, white-box (linked with the core archive, so it
 * can read the ownership map).
 *
 * realloc moves a huge block with mremap, which frees the old range at once;
 * another thread can map a block there and set that range's map byte before
 * the moving thread goes on. The test puts itself in that gap: it defines
 * mremap (the executable's definition comes first), and after the real move
 * marks the old range's byte as another block's would be. The byte must
 * survive the realloc: the move used to clear it afterwards, so that a live
 * block read as "not walloc's memory" (and its free now aborts). Found by
 * benchmarks/bench-realloc with 4 threads, about one run in four.
 */
#include "test_common.h"

#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "heap/heap.h"

#define MiB ((size_t)1 << 20)

static void *moved_from;  /* set by the interposed mremap when it moved a range */
static bool mark_after_move;

void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...) {
  void *dst = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    dst = va_arg(ap, void *);
    va_end(ap);
  }
  void *p = (void *)syscall(SYS_mremap, old, old_size, new_size, flags, dst);
  if (p != MAP_FAILED && p != old && mark_after_move) {
    moved_from = old;
    wl_segment_map_set(old, WL_MAP_HUGE); /* another thread's new block, mapped there meanwhile */
  }
  return p;
}

START_TEST(realloc_move_keeps_a_newer_blocks_map_byte) {
#if defined(WL_TSAN)
  printf("skipped: realloc_move_keeps_a_newer_blocks_map_byte (under ThreadSanitizer walloc never moves a mapping: lib/platform/linux.c)\n");
  return;
#endif
  char *p = walloc_malloc(8 * MiB);
  ck_assert_ptr_nonnull(p);
  p[0] = 42;
  /* something just after the block, so that it cannot grow in place */
  void *fence = mmap(p + 8 * MiB + 64 * 1024, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  mark_after_move = true;
  char *q = walloc_realloc(p, 40 * MiB);
  mark_after_move = false;
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(q[0], 42);
  ck_assert_msg(moved_from != NULL, "the block did not move (fence %p): nothing tested", fence);
  ck_assert_ptr_ne(q, p);
  ck_assert_msg(wl_map_value(moved_from) == WL_MAP_HUGE,
                "the move cleared the map byte of the range it left after another block took it");
  wl_segment_map_set(moved_from, WL_MAP_NONE); /* the pretend block is gone */
  ck_assert(walloc_owns(q));
  walloc_free(q);
  if (fence != MAP_FAILED) munmap(fence, 4096);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("huge");
  WL_TCASE(s, "remap", 60, realloc_move_keeps_a_newer_blocks_map_byte);
  return s;
}
