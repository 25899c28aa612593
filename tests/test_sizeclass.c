/* test_sizeclass.c: the size classes of the general heap (white box). */
#include "test_common.h"
#include "heap/heap.h"

START_TEST(classes_cover_every_size) {
  size_t prev_bin = 1;
  for (size_t size = 0; size <= WL_MEDIUM_MAX; size++) {
    size_t bin = wl_bin_of(size);
    ck_assert_uint_ge(bin, 1);
    ck_assert_uint_le(bin, WL_BIN_MAX);
    ck_assert_uint_ge(wl_bin_size(bin), size);            /* the block holds the request */
    if (bin > 1) ck_assert_uint_lt(wl_bin_size(bin - 1), size == 0 ? 1 : size); /* and is the smallest that does */
    ck_assert_uint_ge(bin, prev_bin);                      /* monotonic */
    prev_bin = bin;
  }
  ck_assert_uint_eq(wl_bin_of(WL_MEDIUM_MAX), WL_BIN_MAX);
  ck_assert_uint_eq(wl_bin_size(WL_BIN_MAX), WL_MEDIUM_MAX);
}
END_TEST

START_TEST(classes_are_aligned_and_increasing) {
  for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) {
    ck_assert_uint_eq(wl_bin_size(bin) % WL_MIN_ALIGN, 0);
    ck_assert_uint_eq(wl_bin_of(wl_bin_size(bin)), bin);  /* a class size maps to itself */
    if (bin > 1) ck_assert_uint_gt(wl_bin_size(bin), wl_bin_size(bin - 1));
  }
}
END_TEST

/* Internal waste: above 128 bytes, rounding up to the class loses at most
   1/9 of the block (about 11 %); below, sizes are 16-byte granular. */
START_TEST(waste_is_at_most_an_eighth) {
  double worst = 0;
  for (size_t size = 129; size <= WL_MEDIUM_MAX; size++) {
    size_t block = wl_bin_size(wl_bin_of(size));
    double waste = (double)(block - size) / (double)block;
    if (waste > worst) worst = waste;
  }
  ck_assert_double_le(worst, 0.125);
  for (size_t size = 1; size <= 128; size++) ck_assert_uint_lt(wl_bin_size(wl_bin_of(size)) - size, 16);
}
END_TEST

START_TEST(power_of_two_sizes_are_classes) {
  for (size_t size = 16; size <= WL_MEDIUM_MAX; size *= 2) ck_assert_uint_eq(wl_bin_size(wl_bin_of(size)), size);
}
END_TEST

/* Alignments up to 64 KiB come for free: rounding the size up to the
   alignment always lands on a class that is a multiple of it. */
START_TEST(rounded_sizes_keep_alignment) {
  for (size_t align = 32; align <= WL_ALIGN_MAX_PAGE; align *= 2) {
    for (size_t size = align; size <= WL_MEDIUM_MAX; size += align) {
      ck_assert_uint_eq(wl_bin_size(wl_bin_of(size)) % align, 0);
    }
  }
}
END_TEST

START_TEST(page_descriptors_fit) {
  ck_assert_uint_eq(sizeof(wl_page_t), 128);
  ck_assert_uint_le(sizeof(wl_segment_t), WL_SLICE_SIZE);
  ck_assert_uint_eq(WL_SLICES, 64);
}
END_TEST

Suite *wl_test_suite(void) {
  Suite *s = suite_create("sizeclass");
  WL_TCASE(s, "classes", 30, classes_cover_every_size, classes_are_aligned_and_increasing,
           waste_is_at_most_an_eighth, power_of_two_sizes_are_classes, rounded_sizes_keep_alignment,
           page_descriptors_fit);
  return s;
}
