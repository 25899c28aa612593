/* sizeclass.c: the size classes ("bins") of small and medium blocks.
 *
 * Sizes are counted in 16-byte words w (every block is 16-byte aligned).
 * Classes 1..8 are 16, 32, ..., 128 bytes. Above 128 bytes each power of two
 * is split into 8 classes: for 2^b < w <= 2^(b+1) the class sizes are
 * 2^b + k * 2^(b-3), k = 1..8. Rounding up to the next class therefore wastes
 * at most 1/9 (11 %) of a block. Class 72 (WL_BIN_MAX) is 32 KiB
 * (WL_MEDIUM_MAX), the largest medium size.
 */
#include "heap.h"

size_t wl_bin_of(size_t size) {
  size_t w = wl_wsize(size);
  if (w <= 8) return w == 0 ? 1 : w;
  size_t b = wl_bsr(w - 1);                      /* 2^b < w <= 2^(b+1), b >= 3 */
  size_t k = ((w - 1 - ((size_t)1 << b)) >> (b - 3)) + 1;
  return 8 + (b - 3) * 8 + k;
}

size_t wl_bin_size(size_t bin) {
  if (bin <= 8) return bin * WL_MIN_ALIGN;
  size_t b = (bin - 9) / 8 + 3;
  size_t k = (bin - 9) % 8 + 1;
  return (((size_t)1 << b) + k * ((size_t)1 << (b - 3))) * WL_MIN_ALIGN;
}
