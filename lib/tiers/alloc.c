/* alloc.c: allocating and deallocating tier blocks.
 *
 * The fast path (walloc_allocate) bumps inside the calling thread's window
 * of the tier with plain stores (the cursor, the block's slot entry, a
 * counter): it needs the window to belong to the tier's current generation,
 * room in it, and no recycled block waiting on the class's free list. Everything else is wl_tier_alloc_slow: set-up,
 * popping a free list, claiming a block (16 KiB and up) or a new window.
 * Deallocation validates the handle, flips the block's slot entry to free
 * with a compare-and-swap (so a second deallocation fails with
 * WALLOC_ERR_STALE) and pushes the block onto its class's free list.
 *
 * Free lists are Treiber stacks whose head packs a 28-bit tag with the
 * offset + 1 of the first block; the tag changes on every push and pop, so
 * a head that was popped and pushed back meanwhile (ABA) fails the swap.
 * A node remembers the generation it was pushed in; a pop that finds an
 * older one (pushed by a deallocation racing with a reset) drops it.
 */
#include "tiers.h"

WL_INLINE void ctx_count(_Atomic(uint64_t) *n) { wl_store_relaxed(n, wl_load_relaxed(n) + 1); }

static WL_NOINLINE walloc_handle invalid_tier(void) {
  wl_fail(WALLOC_ERR_INVALID, "walloc_allocate: no such tier");
  return WALLOC_NULL_HANDLE;
}

static WL_NOINLINE walloc_handle fallback_alloc(size_t size) {
  if (wl_budget_charge(WALLOC_TIER_FALLBACK, size) != WALLOC_OK) {
    wl_fail(WALLOC_ERR_BUDGET, "walloc_allocate: the fallback tier's budget refused it");
    return WALLOC_NULL_HANDLE;
  }
  walloc_handle h = wl_fallback_alloc(size);
  if (h == WALLOC_NULL_HANDLE) {
    wl_budget_refund(WALLOC_TIER_FALLBACK, size);
    wl_fail(WALLOC_ERR_NOMEM, NULL);
  }
  return h;
}

WL_API walloc_handle walloc_allocate(size_t size, walloc_tier tier) {
  if (WL_LIKELY((unsigned)tier < WL_TIERS && size <= WL_TIER_DIRECT)) {
    wl_tier_t *t = &wl_tiers.tier[tier];
    wl_tier_ctx_t *c = &wl_tier_self.ctx[tier];
    uint64_t epoch = wl_load_relaxed(&c->epoch);
    /* a window of the current generation: this thread has seen the set-up,
       so the tier's plain fields below are safe to read */
    if (WL_LIKELY(epoch == wl_load_relaxed(&t->gen) && !wl_load_relaxed(&t->budgeted))) {
      unsigned cls = wl_tier_class(t, size);
      size_t bs = wl_tier_class_size(cls);
      uint64_t cur = wl_load_relaxed(&c->cur);
      if (WL_LIKELY(cur + bs <= wl_load_relaxed(&c->end) &&
                    (wl_load_relaxed(&t->free_heads[cls]) & WL_HANDLE_OFF_MASK) == 0)) {
        wl_store_relaxed(&c->cur, cur + bs);
        wl_store_relaxed(&t->slots[cur >> t->granule_shift], wl_slot_make(true, 0, cls));
        ctx_count(&c->allocations);
        return wl_handle_make(t, cur, epoch, 0);
      }
    }
  }
  if ((unsigned)tier >= WL_TIERS) return tier == WALLOC_TIER_FALLBACK ? fallback_alloc(size) : invalid_tier();
  return wl_tier_alloc_slow((unsigned)tier, size);
}

/* Pop a block of class cls, or return false.
   Reading a node's link races, by design, with the thread that popped the
   node first and now writes its data there: the value read is then stale
   and the tagged compare-and-swap rejects it. ThreadSanitizer cannot know
   that, so this one function is not instrumented. */
#if defined(__clang__) || defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
#endif
static bool free_pop(wl_tier_t *t, unsigned cls, uint64_t *off_out, uint64_t *gen_out) {
  size_t bs = wl_tier_class_size(cls);
  uint64_t head = wl_load_acquire(&t->free_heads[cls]);
  for (;;) {
    uint64_t enc = head & WL_HANDLE_OFF_MASK;
    if (enc == 0) return false;
    uint64_t off = enc - 1;
    if (off + bs > t->capacity || (off & (wl_tier_granule(t) - 1)) != 0) { /* cannot be: drop the list */
      wl_store_release(&t->free_heads[cls], ((head >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS);
      return false;
    }
    wl_tier_node_t *node = (wl_tier_node_t *)(t->start + off);
    /* a plain (uninstrumented) read: stale if we lose the race */
    uint64_t next = *(volatile uint64_t *)(void *)&node->next & WL_HANDLE_OFF_MASK;
    uint64_t want = (((head >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS) | next;
    if (!wl_cas_weak(&t->free_heads[cls], &head, want)) continue;
    uint64_t gen = wl_load_acquire(&t->gen);
    if (node->gen != gen) { /* pushed by a deallocation that raced with a reset: not ours to reuse */
      head = wl_load_acquire(&t->free_heads[cls]);
      continue;
    }
    wl_fetch_sub(&t->free_bytes, bs);
    *off_out = off;
    *gen_out = gen;
    return true;
  }
}

/* A block of class cls: a recycled one, a directly claimed one (big ones,
   or when window is false), or the next in the thread's window. *version is
   the version its handle takes; its slot entry is not written. */
static bool block_get(wl_tier_t *t, wl_tier_ctx_t *c, unsigned cls, bool window, uint64_t *off_out,
                      uint64_t *gen_out, unsigned *version) {
  size_t bs = wl_tier_class_size(cls);
  uint64_t off, gen;
  if (free_pop(t, cls, &off, &gen)) {
    *version = (wl_slot_version(wl_load_relaxed(&t->slots[off >> t->granule_shift])) + 1) & 63u;
  } else if (bs > WL_TIER_DIRECT || !window) {
    if (!wl_tier_claim(t, bs, &off, &gen)) return false;
    wl_tier_slots_clear(t, off, bs);
    *version = 0;
  } else {
    uint64_t cur = wl_load_relaxed(&c->cur);
    if (wl_load_relaxed(&c->epoch) != wl_load_acquire(&t->gen) || cur + bs > wl_load_relaxed(&c->end)) {
      size_t want = WL_TIER_WINDOW;
      if (!wl_tier_claim(t, want, &off, &gen)) { /* nearly full: claim just this block */
        want = bs;
        if (!wl_tier_claim(t, want, &off, &gen)) return false;
      }
      wl_tier_slots_clear(t, off, want);
      wl_store_relaxed(&c->epoch, gen);
      wl_store_relaxed(&c->end, off + want);
      cur = off;
    }
    wl_store_relaxed(&c->cur, cur + bs);
    off = cur;
    gen = wl_load_relaxed(&c->epoch);
    *version = 0;
  }
  *off_out = off;
  *gen_out = gen;
  return true;
}

walloc_handle wl_tier_alloc_slow(unsigned tier, size_t size) {
  if (wl_tiers_ensure() != WALLOC_OK) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_allocate: the tiers could not be set up");
    return WALLOC_NULL_HANDLE;
  }
  wl_tier_t *t = &wl_tiers.tier[tier];
  wl_tier_ctx_t *c = wl_tier_thread_ctx(tier);
  if (size > t->capacity || wl_tier_class_size(wl_tier_class(t, size)) > t->capacity) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_allocate: larger than the tier");
    return WALLOC_NULL_HANDLE;
  }
  unsigned cls = wl_tier_class(t, size);
  size_t bs = wl_tier_class_size(cls);
  if (wl_budget_charge(tier, bs) != WALLOC_OK) {
    wl_fail(WALLOC_ERR_BUDGET, "walloc_allocate: the tier's budget refused it");
    return WALLOC_NULL_HANDLE;
  }
  uint64_t off, gen;
  unsigned version;
  if (!block_get(t, c, cls, true, &off, &gen, &version)) {
    wl_budget_refund(tier, bs);
    wl_fail(WALLOC_ERR_NOMEM, NULL); /* a full tier is an answer, not a misuse */
    return WALLOC_NULL_HANDLE;
  }
  wl_store_release(&t->slots[off >> t->granule_shift], wl_slot_make(true, version, cls));
  ctx_count(&c->allocations);
  return wl_handle_make(t, off, gen, version);
}

walloc_status wl_tier_block_take(unsigned tier, unsigned cls, uint64_t *off, uint64_t *gen) {
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) return st;
  wl_tier_t *t = &wl_tiers.tier[tier];
  size_t bs = wl_tier_class_size(cls);
  if (cls >= WL_TIER_CLASSES || bs > t->capacity) return WALLOC_ERR_NOMEM;
  if (wl_budget_charge(tier, bs) != WALLOC_OK) return WALLOC_ERR_BUDGET;
  unsigned version;
  if (!block_get(t, wl_tier_thread_ctx(tier), cls, false, off, gen, &version)) {
    wl_budget_refund(tier, bs);
    return WALLOC_ERR_NOMEM;
  }
  return WALLOC_OK;
}

/* Push the free block at off (its slot entry already says free) onto its
   class's list; gen is the generation it was validated in. */
static void free_push(wl_tier_t *t, unsigned cls, uint64_t off, uint64_t gen) {
  wl_tier_node_t *node = (wl_tier_node_t *)(t->start + off);
  node->gen = gen; /* if a reset came since, the pop drops this node */
  uint64_t head = wl_load_relaxed(&t->free_heads[cls]);
  uint64_t want;
  do {
    wl_store_relaxed(&node->next, head & WL_HANDLE_OFF_MASK);
    want = (((head >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS) | (off + 1);
  } while (!atomic_compare_exchange_weak_explicit(&t->free_heads[cls], &head, want, memory_order_release,
                                                  memory_order_relaxed));
  wl_fetch_add(&t->free_bytes, wl_tier_class_size(cls));
}

void wl_tier_block_give(unsigned tier, unsigned cls, uint64_t off, uint64_t gen) {
  wl_tier_t *t = &wl_tiers.tier[tier];
  size_t bs = wl_tier_class_size(cls);
  uint64_t now;
  if (!wl_tier_range_valid(t, gen, off, bs, &now)) return; /* a reset or compaction took it (and its budget) */
  wl_slot_t *slot = &t->slots[off >> t->granule_shift];
  wl_store_release(slot, wl_slot_make(false, wl_slot_version(wl_load_relaxed(slot)), cls));
  free_push(t, cls, off, now);
  wl_budget_refund(tier, bs);
}

/* Readers of stale handles may look at these entries meanwhile; they see
   either value, both of which refuse the stale handle once the bit is clear.
   A plain loop the compiler vectorises. */
#if defined(__clang__) || defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
#endif
void wl_tier_slots_release(wl_tier_t *t, uint64_t off, size_t size) {
  uint16_t *s = (uint16_t *)(void *)&t->slots[off >> t->granule_shift];
  size_t n = size >> t->granule_shift;
  for (size_t i = 0; i < n; i++) s[i] &= (uint16_t)~WL_SLOT_ALLOCATED;
  atomic_thread_fence(memory_order_release);
}

WL_API size_t walloc_allocate_batch(const walloc_request *requests, size_t count, walloc_handle *out) {
  if (requests == NULL || out == NULL) return 0;
  size_t ok = 0;
  for (size_t i = 0; i < count; i++) {
    out[i] = walloc_allocate(requests[i].size, requests[i].tier);
    ok += out[i] != WALLOC_NULL_HANDLE;
  }
  return ok;
}

WL_API walloc_status walloc_deallocate(walloc_handle handle) {
  if (handle != WALLOC_NULL_HANDLE && (handle & WL_HANDLE_FALLBACK)) return wl_fallback_free(handle);
  wl_block_ref_t ref;
  walloc_status st = wl_handle_use(handle, &ref, "walloc_deallocate: stale or invalid handle");
  if (st != WALLOC_OK) return st;
  wl_tier_t *t = ref.tier;
  uint16_t expected = ref.slot;
  unsigned cls = wl_slot_class(expected);
  if (expected & WL_SLOT_OWNED) {
    wl_report("walloc_deallocate: the block belongs to a scope, context or ring (released with it)",
              ref.ptr);
    return WALLOC_ERR_INVALID;
  }
  if (!wl_cas_strong(&t->slots[ref.off >> t->granule_shift], &expected,
                     wl_slot_make(false, wl_slot_version(expected), cls))) {
    return WALLOC_ERR_STALE; /* another thread deallocated it first */
  }
  free_push(t, cls, ref.off, ref.gen);
  wl_budget_refund((unsigned)(t - wl_tiers.tier), ref.size);
  wl_tier_ctx_t *c = wl_tier_thread_ctx((unsigned)(t - wl_tiers.tier));
  ctx_count(&c->deallocations);
  return WALLOC_OK;
}
