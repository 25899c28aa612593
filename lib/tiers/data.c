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

/* [offset, offset+length) of a live block, for a copy to or from buf:
   *at is NULL when there is nothing to copy. */
static walloc_status block_range(walloc_handle handle, size_t offset, size_t length, const void *buf,
                                 uint8_t **at) {
  wl_block_ref_t ref;
  *at = NULL;
  walloc_status st = wl_handle_use(handle, &ref, "walloc_read_data/write_data: stale or invalid handle");
  if (st != WALLOC_OK) return st;
  if (!in_bounds(ref.size, offset, length)) return WALLOC_ERR_BOUNDS;
  if (length == 0) return WALLOC_OK;
  if (buf == NULL) return WALLOC_ERR_INVALID;
  *at = ref.ptr + offset;
  return WALLOC_OK;
}

WL_API walloc_status walloc_write_data(walloc_handle handle, size_t offset, const void *data, size_t length) {
  uint8_t *at;
  walloc_status st = block_range(handle, offset, length, data, &at);
  if (at != NULL) wl_memcpy(at, data, length);
  return st;
}

WL_API walloc_status walloc_read_data(walloc_handle handle, size_t offset, void *out, size_t length) {
  uint8_t *at;
  walloc_status st = block_range(handle, offset, length, out, &at);
  if (at != NULL) wl_memcpy(out, at, length);
  return st;
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
