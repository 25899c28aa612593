/* handle.c: from a handle to a block, and back.
 *
 * Owns: the validation every handle goes through before walloc touches the
 * memory it names. Two steps. The quick check (walloc_handle_check_ in
 * walloc.h, inline in callers' code and used here too) answers for a live
 * block of its tier's current generation: tier by two compares of the
 * offset, generation equal to the tier's, granule aligned, below
 * `committed`, slot entry allocated with the handle's version, block end
 * below `top`, all read under the tier's sequence counter (one attempt,
 * no loop). Anything else goes to resolve_slow, the full check: tier by
 * offset, slot entry, then the generation against the compaction limits
 * under the sequence counter (which waits out a reset under way), with a
 * status for every refusal. Fallback handles (bit 63) go to fallback.c,
 * which checks them against its own table.
 * Why the quick check's "yes" is a live block: within the current
 * generation every granule below top had its slot entry cleared when its
 * window or block was claimed, so an allocated entry there with the
 * handle's version is a block handed out in this generation and not
 * deallocated (deallocation clears the bit; reuse bumps the version);
 * below the prefix a compaction kept, the entries are those of the kept
 * blocks. Entries above top are left over from older generations (a reset
 * does not touch them): top refuses a forged handle that names one (only
 * in the instant between a claim's bump of top and its clearing of the
 * entries could one pass, as it could in the full check: it then gets a
 * pointer into the tier, nothing worse). Slot
 * entries are read only below committed, and committed <= capacity, so
 * nothing outside the tier is read or returned. See docs/tiers.md,
 * "Resolving a handle".
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

/* The full check, for everything the quick one (walloc_handle_check_)
   cannot tell: fallback handles, older generations (a compaction may have
   kept the block), and every refusal with its status. */
static walloc_status resolve_slow(walloc_handle handle, wl_block_ref_t *ref) {
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
  /* a code of 0 was never written; a large block's size continues in the
     next three entries, which must be readable */
  if (wl_slot_code(slot) == 0 ||
      (wl_slot_code(slot) >= WL_SLOT_SMALL && off + (4u << t->granule_shift) > wl_load_acquire(&t->committed))) {
    return WALLOC_ERR_STALE;
  }
  size_t size = wl_slot_size(t, off, slot);
  if (off + size > t->capacity) return WALLOC_ERR_STALE;
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

walloc_status wl_handle_resolve(walloc_handle handle, wl_block_ref_t *ref) {
  unsigned tier;
  uint16_t slot;
  uint64_t gen;
  uint8_t *p = walloc_handle_check_(WL_TIERS_MAP, handle, &tier, &slot, &gen);
  if (WL_UNLIKELY(p == NULL)) return resolve_slow(handle, ref);
  wl_tier_t *t = &wl_tiers.tier[tier];
  uint64_t off = (uint64_t)(p - t->start);
  ref->gen = gen;
  ref->tier = t;
  ref->ptr = p;
  ref->size = wl_slot_size(t, off, slot);
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

/* (the names in parentheses: walloc.h makes them macros for the inline
   versions, which call these when they cannot tell) */
WL_API void *(walloc_handle_to_ptr)(walloc_handle handle) {
  wl_block_ref_t ref;
  return wl_handle_use(handle, &ref, "walloc_handle_to_ptr: stale or invalid handle") == WALLOC_OK ? ref.ptr : NULL;
}

/* abi_unchecked stays 0 in debug builds, where every call checks. */
WL_API void *(walloc_handle_ptr_unchecked)(walloc_handle handle) {
  if (!(handle & WL_HANDLE_FALLBACK) && wl_load_acquire(&wl_tiers.abi_unchecked) == WALLOC_MAP_ABI_) {
    return (void *)((uintptr_t)wl_tiers.base + (uintptr_t)(handle & WL_HANDLE_OFF_MASK)); /* base may be 0 (wasm) */
  }
  wl_block_ref_t ref;
  return wl_handle_use(handle, &ref, "walloc_handle_ptr_unchecked: stale or invalid handle") == WALLOC_OK ? ref.ptr
                                                                                                         : NULL;
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
      if (!(slot & WL_SLOT_ALLOCATED) || wl_slot_code(slot) == 0) return WALLOC_NULL_HANDLE;
      uint64_t gen = wl_load_acquire(&t->gen);
      walloc_handle h = wl_handle_make(t, off, gen, wl_slot_version(slot));
      wl_block_ref_t ref;
      return wl_handle_resolve(h, &ref) == WALLOC_OK ? h : WALLOC_NULL_HANDLE; /* live in this generation */
    }
  }
  return wl_fallback_handle_of(p); /* a fallback block, or nothing */
}
