/* handle.c: from a handle to a block, and back; fallback-tier blocks.
 *
 * Owns: the validation every handle goes through before walloc touches the
 * memory it names (tier by offset, granule alignment, the slot entry's
 * allocated bit and version, then the generation check under the tier's
 * sequence counter), and the general-heap blocks of the fallback tier, which
 * carry a 16-byte header (magic, state with a nonce, size) so that a freed
 * or reused one is told apart from a live one.
 * Thread safety: validation only reads; the answers race with a concurrent
 * deallocation or reset of the same block exactly as the caller's own use
 * would (the caller holds a handle another thread is retiring).
 */
#include "tiers.h"

#define WL_FB_MAGIC 0x57614c4cu /* "WaLL" */

typedef struct wl_fb_header_s {
  uint32_t magic;
  _Atomic(uint32_t) state;  /* nonce << 1 | allocated */
  uint64_t size;
} wl_fb_header_t;
_Static_assert(sizeof(wl_fb_header_t) == 16, "fallback header keeps 16-byte alignment");

static _Atomic(uint32_t) fb_nonce;

/* ------------------------------------------------------------------------
   Fallback blocks: the general heap with a header
   ------------------------------------------------------------------------ */
walloc_handle wl_fallback_alloc(size_t size) {
  if (size > WL_MAX_ALLOC - sizeof(wl_fb_header_t)) return WALLOC_NULL_HANDLE;
  wl_fb_header_t *h = wl_malloc(sizeof *h + size);
  if (h == NULL) return WALLOC_NULL_HANDLE;
  uint32_t nonce = (atomic_fetch_add_explicit(&fb_nonce, 1, memory_order_relaxed) & 0xFFFFu);
  h->magic = WL_FB_MAGIC;
  h->size = size;
  wl_store_release(&h->state, nonce << 1 | 1u);
  return WL_HANDLE_FALLBACK | ((uint64_t)nonce << WL_FB_NONCE_SHIFT) | (uint64_t)(uintptr_t)h;
}

static walloc_status fb_resolve(walloc_handle handle, wl_block_ref_t *ref, wl_fb_header_t **hdr) {
  uintptr_t addr = (uintptr_t)(handle & WL_FB_ADDR_MASK);
  uint32_t nonce = (uint32_t)((handle >> WL_FB_NONCE_SHIFT) & 0xFFFFu);
  if ((addr & 15) != 0) return WALLOC_ERR_INVALID;
  if (!wl_owns((void *)addr)) return WALLOC_ERR_STALE; /* freed and gone, or never walloc's */
  wl_fb_header_t *h = (wl_fb_header_t *)addr;
  if (h->magic != WL_FB_MAGIC || wl_load_acquire(&h->state) != (nonce << 1 | 1u)) return WALLOC_ERR_STALE;
  ref->tier = NULL;
  ref->ptr = (uint8_t *)(h + 1);
  ref->size = (size_t)h->size;
  ref->off = 0;
  ref->gen = 0;
  ref->slot = 0;
  *hdr = h;
  return WALLOC_OK;
}

walloc_status wl_fallback_free(walloc_handle handle) {
  wl_block_ref_t ref;
  wl_fb_header_t *h;
  walloc_status st = fb_resolve(handle, &ref, &h);
  if (st != WALLOC_OK) return st;
  uint32_t live = wl_load_relaxed(&h->state);
  if (!wl_cas_strong(&h->state, &live, live & ~1u)) return WALLOC_ERR_STALE; /* freed meanwhile */
  wl_budget_refund(WALLOC_TIER_FALLBACK, ref.size);
  wl_free(h);
  return WALLOC_OK;
}

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
  if (handle & WL_HANDLE_FALLBACK) {
    wl_fb_header_t *h;
    return fb_resolve(handle, ref, &h);
  }
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
  /* a fallback block: its header sits just before */
  if ((p & 15) != 0 || p < sizeof(wl_fb_header_t)) return WALLOC_NULL_HANDLE;
  wl_fb_header_t *h = (wl_fb_header_t *)(p - sizeof(wl_fb_header_t));
  if (!wl_owns(h) || h->magic != WL_FB_MAGIC) return WALLOC_NULL_HANDLE;
  uint32_t state = wl_load_acquire(&h->state);
  if (!(state & 1u)) return WALLOC_NULL_HANDLE;
  return WL_HANDLE_FALLBACK | ((uint64_t)(state >> 1) << WL_FB_NONCE_SHIFT) | (uint64_t)(uintptr_t)h;
}
