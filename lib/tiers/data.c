/* data.c: bounds-checked reads, writes and bulk copies through handles.
 *
 * Every operation resolves its handles first (handle.c) and checks offset
 * and length against the block's usable size without overflow (offset <=
 * size and length <= size - offset), so nothing is ever written outside a
 * block. Copies go through the SIMD kernels (lib/simd); a copy inside one
 * block whose ranges overlap uses memmove.
 */
#include "tiers.h"
#include "../simd/copy.h"

#include <string.h>

WL_INLINE bool in_bounds(size_t size, size_t offset, size_t length) {
  return offset <= size && length <= size - offset;
}

WL_API walloc_status walloc_write_data(walloc_handle handle, size_t offset, const void *data, size_t length) {
  wl_block_ref_t ref;
  walloc_status st = wl_handle_resolve(handle, &ref);
  if (st != WALLOC_OK) return st;
  if (!in_bounds(ref.size, offset, length)) return WALLOC_ERR_BOUNDS;
  if (length == 0) return WALLOC_OK;
  if (data == NULL) return WALLOC_ERR_INVALID;
  wl_memcpy(ref.ptr + offset, data, length);
  return WALLOC_OK;
}

WL_API walloc_status walloc_read_data(walloc_handle handle, size_t offset, void *out, size_t length) {
  wl_block_ref_t ref;
  walloc_status st = wl_handle_resolve(handle, &ref);
  if (st != WALLOC_OK) return st;
  if (!in_bounds(ref.size, offset, length)) return WALLOC_ERR_BOUNDS;
  if (length == 0) return WALLOC_OK;
  if (out == NULL) return WALLOC_ERR_INVALID;
  wl_memcpy(out, ref.ptr + offset, length);
  return WALLOC_OK;
}

static walloc_status copy_one(const walloc_copy_op *op) {
  wl_block_ref_t dst, src;
  walloc_status st = wl_handle_resolve(op->dst, &dst);
  if (st == WALLOC_OK) st = wl_handle_resolve(op->src, &src);
  if (st != WALLOC_OK) return st;
  if (!in_bounds(dst.size, op->dst_offset, op->length) || !in_bounds(src.size, op->src_offset, op->length)) {
    return WALLOC_ERR_BOUNDS;
  }
  uint8_t *d = dst.ptr + op->dst_offset;
  const uint8_t *s = src.ptr + op->src_offset;
  if (op->length == 0) return WALLOC_OK;
  if (d < s + op->length && s < d + op->length) memmove(d, s, op->length); /* same block, overlapping */
  else wl_memcpy(d, s, op->length);
  return WALLOC_OK;
}

WL_API size_t walloc_bulk_copy(const walloc_copy_op *ops, size_t count) {
  if (ops == NULL) return 0;
  size_t done = 0;
  for (size_t i = 0; i < count; i++) done += copy_one(&ops[i]) == WALLOC_OK;
  return done;
}
