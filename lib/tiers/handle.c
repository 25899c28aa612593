/* handle.c: from a handle to a block, and back.
 *
 * Owns: the validation every handle goes through before walloc touches the
 * memory it names (tier by offset, granule alignment, the slot entry's
 * allocated bit and version, then the generation check under the tier's
 * sequence counter); fallback handles (bit 63) go to fallback.c, which
 * checks them against its own table.
 * Thread safety: validation only reads; the answers race with a concurrent
 * deallocation or reset of the same block exactly as the caller's own use
 * would (the caller holds a handle another thread is retiring).
 */
#include "tiers.h"

/* ------------------------------------------------------------------------
   Tier blocks
   ------------------------------------------------------------------------ */
static wl_tier_t *tier_of(uint64_t goff) {
  for (int i = 0; i < WL_TIERS; i++) {
    wl_tier_t *t = &wl_tiers.tier[i];
    if (goff - t->offset < t->capacity) return t;
  }
  return NULL;
}

/* Is the block [off, off+size) of generation gen21 (mod 2^21) still live?
   *now receives the generation the answer holds for. */
static bool generation_valid(wl_tier_t *t, uint64_t gen21, uint64_t off, size_t size, uint64_t *now) {
  for (unsigned spins = 0;; spins++) {
    uint64_t seq = wl_load_acquire(&t->seq);
    if (seq & 1) { /* a reset is being published */
      if (spins > 64) wl_os_yield();
      continue;
    }
    uint64_t cur = wl_load_acquire(&t->gen);
    uint64_t gen = cur - ((cur - gen21) & WL_HANDLE_GEN_MASK);
    bool ok;
    if (gen == cur) ok = off + size <= wl_load_relaxed(&t->top);
    else if (gen < wl_load_relaxed(&t->reset_gen)) ok = false;
    else ok = off + size <= wl_tier_limit(t, gen);
    atomic_thread_fence(memory_order_acquire);
    if (wl_load_relaxed(&t->seq) == seq) {
      *now = cur;
      return ok;
    }
  }
}

bool wl_tier_range_valid(wl_tier_t *t, uint64_t gen, uint64_t off, size_t size, uint64_t *now) {
  return generation_valid(t, gen & WL_HANDLE_GEN_MASK, off, size, now);
}

walloc_status wl_handle_resolve(walloc_handle handle, wl_block_ref_t *ref) {
  if (handle == WALLOC_NULL_HANDLE) return WALLOC_ERR_INVALID;
  if (handle & WL_HANDLE_FALLBACK) return wl_fallback_resolve(handle, ref);
  if (wl_load_acquire(&wl_tiers.state) != 2) return WALLOC_ERR_INVALID;
  wl_tier_t *t = tier_of(handle & WL_HANDLE_OFF_MASK);
  if (t == NULL) return WALLOC_ERR_INVALID;
  uint64_t off = (handle & WL_HANDLE_OFF_MASK) - t->offset;
  if ((off & (wl_tier_granule(t) - 1)) != 0) return WALLOC_ERR_INVALID;
  if (off >= wl_load_acquire(&t->committed)) return WALLOC_ERR_STALE; /* never handed out, or long gone */
  uint16_t slot = wl_load_acquire(&t->slots[off >> t->granule_shift]);
  unsigned version = (unsigned)((handle >> WL_HANDLE_VER_SHIFT) & WL_HANDLE_VER_MASK);
  if (!(slot & WL_SLOT_ALLOCATED) || wl_slot_version(slot) != version) return WALLOC_ERR_STALE;
  size_t size = wl_tier_class_size(wl_slot_class(slot));
  if ((slot & WL_SLOT_UNUSED_BITS) != 0 || off + size > t->capacity) return WALLOC_ERR_STALE;
  uint64_t now;
  if (!generation_valid(t, (handle >> WL_HANDLE_GEN_SHIFT) & WL_HANDLE_GEN_MASK, off, size, &now)) {
    return WALLOC_ERR_STALE;
  }
  ref->gen = now;
  ref->tier = t;
  ref->ptr = t->start + off;
  ref->size = size;
  ref->off = off;
  ref->slot = slot;
  return WALLOC_OK;
}

/* ------------------------------------------------------------------------
   Public conversions
   ------------------------------------------------------------------------ */
walloc_status wl_handle_use(walloc_handle handle, wl_block_ref_t *ref, const char *what) {
  walloc_status st = wl_handle_resolve(handle, ref);
  if (WL_UNLIKELY(st != WALLOC_OK)) wl_fail(st, what);
  return st;
}

WL_API void *walloc_handle_to_ptr(walloc_handle handle) {
  wl_block_ref_t ref;
  return wl_handle_use(handle, &ref, "walloc_handle_to_ptr: stale or invalid handle") == WALLOC_OK ? ref.ptr : NULL;
}

WL_API size_t walloc_handle_size(walloc_handle handle) {
  wl_block_ref_t ref;
  return wl_handle_use(handle, &ref, "walloc_handle_size: stale or invalid handle") == WALLOC_OK ? ref.size : 0;
}

WL_API walloc_handle walloc_ptr_to_handle(const void *ptr) {
  uintptr_t p = (uintptr_t)ptr;
  if (ptr == NULL) return WALLOC_NULL_HANDLE;
  if (wl_load_acquire(&wl_tiers.state) == 2 && p - (uintptr_t)wl_tiers.base < wl_tiers.total) {
    /* (where handles are addresses, wasm, the tiers' offsets count from
       address 0: memory below the tiers, fallback blocks too, lands here
       in no tier, and goes on to the fallback check) */
    wl_tier_t *t = tier_of(p - (uintptr_t)wl_tiers.base);
    if (t != NULL) {
      uint64_t off = (uint64_t)(p - (uintptr_t)t->start);
      if ((off & (wl_tier_granule(t) - 1)) != 0 || off >= wl_load_acquire(&t->committed)) return WALLOC_NULL_HANDLE;
      uint16_t slot = wl_load_acquire(&t->slots[off >> t->granule_shift]);
      if (!(slot & WL_SLOT_ALLOCATED) || (slot & WL_SLOT_UNUSED_BITS) != 0) return WALLOC_NULL_HANDLE;
      uint64_t gen = wl_load_acquire(&t->gen);
      walloc_handle h = wl_handle_make(t, off, gen, wl_slot_version(slot));
      wl_block_ref_t ref;
      return wl_handle_resolve(h, &ref) == WALLOC_OK ? h : WALLOC_NULL_HANDLE; /* live in this generation */
    }
  }
  return wl_fallback_handle_of(p); /* a fallback block, or nothing */
}
