/* test_osmem.c: walloc_heap_stats.mapped_bytes is all the address space
 * walloc holds (lib/core/osmem.c), white-box (linked with the core archive).
 *
 * Each layer's holding is worked out from what that layer reports, not from
 * the counter, and compared with the counter's share for it and with
 * mapped_bytes (their sum), after every step of a program that sets up the
 * tiers, makes heap blocks, a huge block, frames, a pool, a ring and a
 * context, and then gives it all back:
 *   heap    walloc_heap_stats.segments segments of WL_SEGMENT_SIZE (cached
 *           ones included), the huge blocks the test holds (their mapping:
 *           header and size rounded up to the page), and the heap structs
 *           (one WL_META_CHUNK natively, none on wasm: a static heap);
 *   tiers   their three reservations: each tier's capacity
 *           (walloc_tier_stats_get) padded to a commit chunk, its slot table
 *           (one wl_slot_t per granule, rounded up to the page), and the
 *           generation limits (tier.c, tiers_setup);
 *   frames  the chunks walloc_frame_stats counts: the first regular one is
 *           64 KiB, a dedicated one its request and header rounded up;
 *   pools   walloc_pool_stats.slab_bytes, and the slab map's leaves (a
 *           pointer per 64 KiB granule of a 1 GiB region, kept once made).
 * The relation is equality: each counter share equals its layer's report,
 * and mapped_bytes their sum. A layer that mapped around the counter would
 * show a share below its report.
 */
#include "test_common.h"

#include "heap/heap.h" /* white box: the huge header, segments */
#include "lifetimes/lifetimes.h"

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)
#define FRAME_FIRST_CHUNK (64 * KiB)
#define POOL_LEAF_BYTES ((size_t)16384 * sizeof(void *))

/* What the test holds that only it can say: huge blocks and frame chunks. */
static size_t huge_held, frame_held;

static wl_osmem_stats_t counted(void) {
  wl_osmem_stats_t s;
  wl_osmem_stats(&s);
  return s;
}

static uint64_t tiers_reported(void) {
  if (wl_load_acquire(&wl_tiers.state) != 2) return 0;
  uint64_t sum = (uint64_t)WL_TIERS * WL_GEN_LIMITS * sizeof(wl_gen_limit_t);
  for (unsigned i = 0; i < WL_TIERS; i++) {
    walloc_tier_stats ts;
    ck_assert_int_eq(walloc_tier_stats_get((walloc_tier)i, &ts), WALLOC_OK);
    sum += wl_align_up(ts.capacity, WL_TIER_COMMIT_CHUNK);
    sum += wl_align_up((ts.capacity >> wl_tiers.tier[i].granule_shift) * sizeof(wl_slot_t), wl_os.page_size);
  }
  return sum;
}

static size_t meta_bytes; /* the heap structs, found at the start */

static uint64_t heap_reported(void) {
  return wl_test_stats().segments * WL_SEGMENT_SIZE + huge_held + meta_bytes;
}

static size_t pool_slab_bytes(walloc_pool *pool) {
  if (pool == NULL) return 0;
  walloc_pool_stats ps;
  ck_assert_int_eq(walloc_pool_stats_get(pool, &ps), WALLOC_OK);
  return ps.slab_bytes;
}

/* Every share equals its layer's report, and mapped_bytes their sum. */
static void check_layers(const char *step, walloc_pool *pool) {
  wl_osmem_stats_t c = counted();
  uint64_t *by = c.by_user;
  walloc_heap_stats h = wl_test_stats();
  ck_assert_msg(h.mapped_bytes == c.mapped, "%s: mapped_bytes is the counter's", step);
  ck_assert_msg(by[WL_MEM_HEAP] + by[WL_MEM_TIERS] + by[WL_MEM_FRAMES] + by[WL_MEM_POOLS] + by[WL_MEM_ASSETS] ==
                    c.mapped, "%s: mapped is the sum of the layers' shares", step);
  ck_assert_msg(by[WL_MEM_HEAP] == heap_reported(), "%s: heap holds %llu, reports %llu", step,
                (unsigned long long)by[WL_MEM_HEAP], (unsigned long long)heap_reported());
  ck_assert_msg(by[WL_MEM_TIERS] == tiers_reported(), "%s: tiers hold %llu, report %llu", step,
                (unsigned long long)by[WL_MEM_TIERS], (unsigned long long)tiers_reported());
  ck_assert_msg(by[WL_MEM_FRAMES] == frame_held, "%s: frames hold %llu, report %zu", step,
                (unsigned long long)by[WL_MEM_FRAMES], frame_held);
  size_t slabs = pool_slab_bytes(pool);
  uint64_t leaves = by[WL_MEM_POOLS] - slabs;
  ck_assert_msg(by[WL_MEM_POOLS] >= slabs && leaves % POOL_LEAF_BYTES == 0 && (slabs == 0 || leaves != 0),
                "%s: pools hold %llu, report %zu of slabs and whole slab-map leaves", step,
                (unsigned long long)by[WL_MEM_POOLS], slabs);
  ck_assert_msg(by[WL_MEM_ASSETS] == 0, "%s: no asset load, no spool", step);
  ck_assert_msg(c.committed <= c.mapped, "%s: committed is part of mapped", step);
  ck_assert_msg(c.peak_mapped >= c.mapped, "%s: the peak is at least now", step);
}

START_TEST(test_mapped_is_every_layer) {
  void *warm = wl_malloc(64); /* the thread's heap, and its first segment */
  ck_assert_ptr_nonnull(warm);
  meta_bytes = (size_t)(counted().by_user[WL_MEM_HEAP] - wl_test_stats().segments * WL_SEGMENT_SIZE);
  ck_assert_msg(meta_bytes == 0 || meta_bytes == ((size_t)256 << 10), "heap structs: %zu bytes", meta_bytes);
  check_layers("start", NULL);
  uint64_t m0 = counted().mapped;

  /* the tiers: reservations, counted from set-up on */
  walloc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.tier_memory = 16 * MiB;
  ck_assert_int_eq(walloc_init(&cfg), WALLOC_OK);
  check_layers("tiers set up", NULL);
  ck_assert_uint_ge(counted().mapped - m0, 16 * MiB * 99 / 100); /* at least the capacities */

  /* heap blocks: segments */
  enum { BLOCKS = 1024 };
  static void *blocks[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) ck_assert_ptr_nonnull(blocks[i] = wl_malloc(8 * KiB));
  ck_assert_uint_ge(wl_test_stats().segments, 2);
  check_layers("heap blocks", NULL);

  /* a huge block: its own mapping */
  size_t huge_size = 9 * MiB;
  void *huge = wl_malloc(huge_size);
  ck_assert_ptr_nonnull(huge);
  huge_held = wl_align_up(WL_HUGE_HEADER + huge_size, wl_os.page_size);
  check_layers("huge block", NULL);

  /* frames: a regular chunk and a dedicated one */
  walloc_frame_begin();
  ck_assert_ptr_nonnull(walloc_frame_alloc(100, 16));
  frame_held = FRAME_FIRST_CHUNK;
  check_layers("frame chunk", NULL);
  size_t big = 2 * MiB;
  ck_assert_ptr_nonnull(walloc_frame_alloc(big, 16));
  size_t dedicated = wl_align_up(big + 15 + 64, wl_os.page_size);
  frame_held += dedicated;
  walloc_frame_stats fs;
  walloc_frame_stats_get(&fs);
  ck_assert_uint_eq(fs.chunks, 2);
  check_layers("dedicated frame chunk", NULL);

  /* a pool with objects: slabs and a slab-map leaf */
  walloc_pool *pool = walloc_pool_create(48, 16);
  ck_assert_ptr_nonnull(pool);
  static void *objs[4096];
  for (int i = 0; i < 4096; i++) ck_assert_ptr_nonnull(objs[i] = walloc_pool_alloc(pool));
  ck_assert_uint_gt(pool_slab_bytes(pool), 0);
  check_layers("pool", pool);

  /* a ring and a context live in a tier's reservation: commits, no new range */
  uint64_t committed0 = counted().committed;
  walloc_ring *ring = walloc_ring_create(WALLOC_TIER_SCENE, 256 * KiB);
  ck_assert_ptr_nonnull(ring);
  ck_assert_int_eq(walloc_ring_begin_frame(ring, 1), WALLOC_OK);
  ck_assert_uint_ne(walloc_ring_allocate(ring, 1000), WALLOC_NULL_HANDLE);
  walloc_context *ctx = walloc_context_create(WALLOC_TIER_ENTITY, NULL);
  ck_assert_ptr_nonnull(ctx);
  ck_assert_uint_ne(walloc_context_allocate(ctx, 1000), WALLOC_NULL_HANDLE);
  if (wl_os.reserve_commits) { /* wasm: the reservation was memory from the start */
    ck_assert_uint_eq(counted().committed, committed0);
    ck_assert_uint_eq(counted().committed, counted().mapped);
  } else {
    ck_assert_uint_ge(counted().committed - committed0, 256 * KiB); /* at least the ring's bytes */
  }
  check_layers("ring and context", pool);
  uint64_t full = counted().mapped;
  uint64_t full_segments = wl_test_stats().segments;

  /* and back: each release lowers mapped by what its layer held */
  walloc_frame_end();
  frame_held -= dedicated;
  check_layers("frame end", pool);
  size_t slabs = pool_slab_bytes(pool);
  uint64_t before = counted().mapped;
  walloc_pool_destroy(pool);
  ck_assert_uint_eq(before - counted().mapped, slabs);
  check_layers("pool destroyed", NULL);
  wl_free(huge);
  huge_held = 0;
  walloc_collect(true); /* the huge cache, the frame chunks, empty segments */
  frame_held = 0;
  check_layers("huge freed, collected", NULL);
  for (int i = 0; i < BLOCKS; i++) wl_free(blocks[i]);
  walloc_collect(true);
  check_layers("blocks freed, collected", NULL);
  ck_assert_uint_lt(wl_test_stats().segments, full_segments); /* the blocks' segments went back */
  wl_osmem_stats_t end = counted();
  ck_assert_uint_lt(end.mapped, full - dedicated - slabs - 9 * MiB);
  ck_assert_uint_ge(end.peak_mapped, full);
  ck_assert_uint_gt(end.released, 9 * MiB + dedicated + slabs);
  walloc_ring_destroy(ring);
  walloc_context_release(ctx);
  wl_free(warm);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("osmem");
  TCase *tc = tcase_create("osmem");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_mapped_is_every_layer);
  suite_add_tcase(s, tc);
  return s;
}
