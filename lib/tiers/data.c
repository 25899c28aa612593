/* data.c: bounds-checked reads, writes and bulk copies through handles.
 *
 * Every operation resolves its handles first (handle.c) and checks offset
 * and length against the block's usable size without overflow (offset <=
 * size and length <= size - offset), so nothing is ever written outside a
 * block. Copies go through the SIMD kernels (lib/simd); a copy inside one
 * block whose ranges overlap uses memmove. Each copy runs in a guarded
 * section of its blocks' generation (tiers.h): a reset of the tier waits
 * for it, so a copy either happens in a live block or fails as stale.
 */
#include "tiers.h"
#include "../simd/copy.h"

#include <string.h>

WL_INLINE bool in_bounds(size_t size, size_t offset, size_t length) {
  return offset <= size && length <= size - offset;
}

/* Copy length bytes between buf and [offset, offset+length) of a live
   block, in a guarded section: a reset of its tier comes before or after,
   never half way (tiers.h). */
static walloc_status block_copy(walloc_handle handle, size_t offset, void *buf, size_t length, bool write) {
  wl_block_ref_t ref;
  walloc_status st = wl_handle_enter(handle, &ref, "walloc_read_data/write_data: stale or invalid handle");
  if (st != WALLOC_OK) return st;
  if (!in_bounds(ref.size, offset, length)) st = WALLOC_ERR_BOUNDS;
  else if (length != 0 && buf == NULL) st = WALLOC_ERR_INVALID;
  else if (length != 0 && write) wl_memcpy(ref.ptr + offset, buf, length);
  else if (length != 0) wl_memcpy(buf, ref.ptr + offset, length);
  wl_handle_leave(&ref);
  return st;
}

WL_API walloc_status walloc_write_data(walloc_handle handle, size_t offset, const void *data, size_t length) {
  return block_copy(handle, offset, (void *)(uintptr_t)data, length, true);
}

WL_API walloc_status walloc_read_data(walloc_handle handle, size_t offset, void *out, size_t length) {
  return block_copy(handle, offset, out, length, false);
}

static walloc_status copy_one(const walloc_copy_op *op) {
  wl_block_ref_t dst, src;
  walloc_status st = wl_handle_enter2(op->dst, &dst, op->src, &src);
  if (st != WALLOC_OK) return st;
  if (!in_bounds(dst.size, op->dst_offset, op->length) || !in_bounds(src.size, op->src_offset, op->length)) {
    st = WALLOC_ERR_BOUNDS;
  } else if (op->length != 0) {
    uint8_t *d = dst.ptr + op->dst_offset;
    const uint8_t *s = src.ptr + op->src_offset;
    if (d < s + op->length && s < d + op->length) memmove(d, s, op->length); /* same block, overlapping */
    else wl_memcpy(d, s, op->length);
  }
  wl_handle_leave(&dst);
  wl_handle_leave(&src);
  return st;
}

WL_API size_t walloc_bulk_copy(const walloc_copy_op *ops, size_t count) {
  if (ops == NULL) return 0;
  size_t done = 0;
  for (size_t i = 0; i < count; i++) done += copy_one(&ops[i]) == WALLOC_OK;
  return done;
}
