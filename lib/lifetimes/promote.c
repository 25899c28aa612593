/* promote.c: "graduated migration", copying a block into another tier
 * (walloc_promote).
 *
 * The new block is allocated through walloc_allocate (so the target tier's
 * budget applies), the bytes are copied with walloc's SIMD copy, and the old
 * block is deallocated unless it belongs to an owner (a scope, a context or
 * a ring), which releases it with the rest of its blocks.
 * Thread safety: as walloc_allocate and walloc_deallocate; a block another
 * thread deallocates meanwhile makes the call fail with WALLOC_ERR_STALE.
 */
#include "../simd/copy.h"
#include "lifetimes.h"

WL_API walloc_handle walloc_promote(walloc_handle handle, walloc_tier to) {
  wl_block_ref_t from;
  walloc_status st = wl_handle_resolve(handle, &from);
  if (st != WALLOC_OK) {
    wl_fail(st, "walloc_promote: the handle is stale or invalid");
    return WALLOC_NULL_HANDLE;
  }
  if ((unsigned)to >= WALLOC_TIER_COUNT) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_promote: no such tier");
    return WALLOC_NULL_HANDLE;
  }
  walloc_handle h = walloc_allocate(from.size, to); /* sets walloc_last_status when it fails */
  if (h == WALLOC_NULL_HANDLE) return h;
  wl_block_ref_t dst;
  if (wl_handle_resolve(h, &dst) != WALLOC_OK || wl_handle_resolve(handle, &from) != WALLOC_OK) {
    walloc_deallocate(h); /* the source went away meanwhile (or the target was reset) */
    wl_fail(WALLOC_ERR_STALE, "walloc_promote: the block was reclaimed during the copy");
    return WALLOC_NULL_HANDLE;
  }
  wl_memcpy(dst.ptr, from.ptr, from.size);
  if (from.tier == NULL || !(from.slot & WL_SLOT_OWNED)) walloc_deallocate(handle);
  return h;
}
