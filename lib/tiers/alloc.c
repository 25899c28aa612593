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

static WL_NOINLINE walloc_handle alloc_slow(size_t size, walloc_tier tier) {
  if ((unsigned)tier >= WL_TIERS) return tier == WALLOC_TIER_FALLBACK ? fallback_alloc(size) : invalid_tier();
  return wl_tier_alloc_slow((unsigned)tier, size);
}

/* The fast path (walloc_tier_bump_, walloc.h, the same code callers run
   inline): a block of under WL_SLOT_SMALL granules bumped from the thread's
   window while the window's tag is the tier's (same generation, no budget
   change since, no freed block waiting on any list). (The name in
   parentheses: walloc.h makes it a macro for the inline version, which
   calls this when it cannot allocate.) */
WL_API walloc_handle(walloc_allocate)(size_t size, walloc_tier tier) {
  walloc_handle h;
  if (WL_LIKELY((unsigned)tier < WL_TIERS &&
                walloc_tier_bump_(wl_tier_map(&wl_tiers.tier[tier]), wl_tier_ctx_map(&wl_tier_self.ctx[tier]), size, &h))) {
    return h;
  }
  return alloc_slow(size, tier);
}

/* Pop the first block of class k if it has at least `least` bytes (every
   block there has the class's size or more), or return false.
   Reading a node's link races, by design, with the thread that popped the
   node first and now writes its data there: the value read is then stale
   and the tagged compare-and-swap rejects it. ThreadSanitizer cannot know
   that, so this one function is not instrumented. */
#if defined(__clang__) || defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
#endif
static bool free_pop(wl_tier_t *t, unsigned k, size_t least, uint64_t *off_out, uint64_t *gen_out) {
  least = wl_max(least, (size_t)wl_fclass_granules(k) << t->granule_shift);
  _Atomic(uint64_t) *headp = &t->free_heads[k];
  uint64_t head = wl_load_acquire(headp);
  for (;;) {
    uint64_t enc = head & WL_HANDLE_OFF_MASK;
    if (enc == 0) return false;
    uint64_t off = enc - 1;
    if (off + least > t->capacity || (off & (wl_tier_granule(t) - 1)) != 0) { /* cannot be: drop the list */
      wl_store_release(headp, ((head >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS);
      return false;
    }
    wl_tier_node_t *node = (wl_tier_node_t *)(t->start + off);
    /* its size (the compare-and-swap below fails if another thread took it
       meanwhile, so the size read belongs to the block popped) */
    if (wl_slot_size(t, off, wl_load_relaxed(&t->slots[off >> t->granule_shift])) < least) return false;
    /* a plain (uninstrumented) read: stale if we lose the race */
    uint64_t next = *(volatile uint64_t *)(void *)&node->next & WL_HANDLE_OFF_MASK;
    uint64_t want = (((head >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS) | next;
    if (!wl_cas_weak(headp, &head, want)) continue;
    uint64_t gen = wl_load_acquire(&t->gen);
    if (node->gen != gen) { /* pushed by a deallocation that raced with a reset: not ours to reuse */
      head = wl_load_acquire(headp);
      continue;
    }
    *off_out = off;
    *gen_out = gen;
    return true;
  }
}

/* Push the free block at off (size bytes; its first slot entry already
   says free, with its size) onto its class's list; gen is the generation
   it was validated in. */
static void free_push(wl_tier_t *t, uint64_t off, size_t size, uint64_t gen) {
  wl_tier_node_t *node = (wl_tier_node_t *)(t->start + off);
  _Atomic(uint64_t) *headp = &t->free_heads[wl_fclass_floor(size >> t->granule_shift)];
  node->gen = gen; /* if a reset came since, the pop drops this node */
  /* first: a pop never takes more than was added; the first block on the
     tier's lists sends every thread's next allocation to look at them */
  if (wl_fetch_add(&t->free_bytes, size) == 0) wl_tier_windows_resync(t);
  uint64_t head = wl_load_relaxed(headp);
  uint64_t want;
  do {
    wl_store_relaxed(&node->next, head & WL_HANDLE_OFF_MASK);
    want = (((head >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS) | (off + 1);
  } while (!atomic_compare_exchange_weak_explicit(headp, &head, want, memory_order_release, memory_order_relaxed));
}

/* Put the block [off, off + size) of generation gen on its free list,
   its first entry saying free with its size; false when a reset or
   compaction took it meanwhile (and its budget). */
static bool block_free(wl_tier_t *t, uint64_t off, size_t size, uint64_t gen) {
  uint64_t now;
  if (!wl_tier_range_valid(t, gen, off, size, &now)) return false;
  wl_slot_t *slot = &t->slots[off >> t->granule_shift];
  unsigned code = wl_slot_size_set(t, off, size >> t->granule_shift);
  wl_store_release(slot, wl_slot_make(false, wl_slot_version(wl_load_relaxed(slot)), code));
  free_push(t, off, size, now);
  return true;
}

/* A recycled block of at least g granules: its offset, generation, size
   and the version its next handle takes (its entry is not written). From
   the smallest class whose blocks all fit; else the first block of the
   class below, if it fits (a block freed at its exact size sits there, and
   a request of that same size finds it). */
static bool recycled(wl_tier_t *t, uint64_t g, uint64_t *off, uint64_t *gen, size_t *size, unsigned *version) {
  if (wl_load_relaxed(&t->free_bytes) == 0) return false;
  unsigned k = wl_fclass_ceil(g), f = wl_fclass_floor(g);
  size_t least = (size_t)g << t->granule_shift;
  if (!(k < WL_FREE_CLASSES && free_pop(t, k, least, off, gen)) && !(f != k && free_pop(t, f, least, off, gen))) {
    return false;
  }
  uint16_t s = wl_load_relaxed(&t->slots[*off >> t->granule_shift]);
  *size = wl_slot_size(t, *off, s);
  wl_fetch_sub(&t->free_bytes, *size);
  *version = (wl_slot_version(s) + 1) & 63u;
  return true;
}

/* ------------------------------------------------------------------------
   Windows and their budget credit
   ------------------------------------------------------------------------ */
/* Set in a window's epoch (against the tier's tag) while freed blocks
   wait on the tier's lists: the fast path, which does not look at them,
   is off. */
#define WL_EPOCH_FREE ((uint64_t)1 << (WL_WTAG_SHIFT - 1))

/* Credit a thread charges a budgeted tier for its window at a time: the
   fast path then bumps inside what was charged. Small (at most 4 KiB and
   1/16 of what the hard limit leaves), and given back before the thread
   asks for more, so a thread alone meets its limit exactly. */
#define WL_TIER_CREDIT ((size_t)4 << 10)

/* Give back the unused credit of the thread's window (in its generation). */
static void credit_return(unsigned tier, wl_tier_ctx_t *c, uint64_t wtag) {
  if (!wl_load_relaxed(&c->credit)) return;
  uint64_t cur = wl_load_relaxed(&c->cur), end = wl_load_relaxed(&c->end);
  if (wl_wtag_gen(wl_load_relaxed(&c->epoch)) == wl_wtag_gen(wtag) && end > cur) wl_budget_refund(tier, (size_t)(end - cur));
  wl_store_relaxed(&c->end, cur);
  wl_store_relaxed(&c->credit, 0);
}

void wl_tier_credit_return(unsigned tier) {
  credit_return(tier, &wl_tier_self.ctx[tier], wl_load_acquire(&wl_tiers.tier[tier].wtag));
}

/* Make [cur, cur + bs) of the window chargeable for the fast path: all of
   it without a budget, else credit of at least bs. False: the budget
   refused even bs. */
static bool credit_take(unsigned tier, wl_tier_ctx_t *c, size_t bs) {
  uint64_t cur = wl_load_relaxed(&c->cur), wend = wl_load_relaxed(&c->wend);
  if (!wl_budget_on(tier)) {
    wl_store_relaxed(&c->end, wend);
    return true;
  }
  size_t want = wl_max(bs, wl_min(WL_TIER_CREDIT, wl_budget_headroom(tier) / 16));
  if (want > wend - cur) want = (size_t)(wend - cur);
  if (wl_budget_charge(tier, want) != WALLOC_OK) {
    want = bs;
    if (wl_budget_charge(tier, want) != WALLOC_OK) return false;
  }
  wl_store_relaxed(&c->end, cur + want);
  wl_store_relaxed(&c->credit, 1);
  return true;
}

/* Room for bs bytes at the thread's window cursor, in the tier's current
   generation, chargeable: the window it has (after a budget change, synced
   to it), or a new one. */
static walloc_status window_room(unsigned tier, wl_tier_t *t, wl_tier_ctx_t *c, size_t bs) {
  for (;;) {
    uint64_t wtag = wl_load_acquire(&t->wtag);
    uint64_t cur = wl_load_relaxed(&c->cur);
    bool same_gen = wl_wtag_gen(wl_load_relaxed(&c->epoch)) == wl_wtag_gen(wtag);
    if (same_gen && (wl_load_relaxed(&c->epoch) | WL_EPOCH_FREE) == (wtag | WL_EPOCH_FREE) &&
        cur + bs <= wl_load_relaxed(&c->end)) {
      return WALLOC_OK;
    }
    credit_return(tier, c, wtag);
    if (!same_gen || cur + bs > wl_load_relaxed(&c->wend)) {
      wl_tier_window_drop(t, c);
      uint64_t off, gen;
      size_t want = WL_TIER_WINDOW;
      if (!wl_tier_claim(t, want, &off, &gen)) { /* nearly full: claim just this block */
        want = bs;
        if (!wl_tier_claim(t, want, &off, &gen)) return WALLOC_ERR_NOMEM;
      }
      if (gen != wl_wtag_gen(wtag)) continue; /* a reset came between */
      wl_tier_slots_clear(t, off, want);
      wl_store_relaxed(&c->cur, off);
      wl_store_relaxed(&c->end, off);
      wl_store_relaxed(&c->wend, off + want);
      wl_store_relaxed(&c->hbase, t->offset + ((gen & WL_HANDLE_GEN_MASK) << WL_HANDLE_GEN_SHIFT));
    }
    /* in step with the tier, but while freed blocks wait, a tag that is
       not the tier's: every allocation comes here and looks at the lists */
    wl_store_relaxed(&c->epoch, wl_load_acquire(&t->free_bytes) == 0 ? wtag : wtag ^ WL_EPOCH_FREE);
    if (!credit_take(tier, c, bs)) return WALLOC_ERR_BUDGET;
  }
}

walloc_handle wl_tier_alloc_slow(unsigned tier, size_t size) {
  if (wl_tiers_ensure() != WALLOC_OK) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_allocate: the tiers could not be set up");
    return WALLOC_NULL_HANDLE;
  }
  wl_tier_t *t = &wl_tiers.tier[tier];
  wl_tier_ctx_t *c = wl_tier_thread_ctx(tier);
  uint64_t g = wl_tier_granules(t, size);
  if (g == 0 || g > (t->capacity >> t->granule_shift)) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_allocate: larger than the tier");
    return WALLOC_NULL_HANDLE;
  }
  size_t bs = (size_t)g << t->granule_shift;
  uint64_t off, gen;
  unsigned version = 0;
  size_t got;
  if (recycled(t, g, &off, &gen, &got, &version)) {
    if (wl_budget_charge(tier, got) != WALLOC_OK) { /* back on its list */
      block_free(t, off, got, gen);
      wl_fail(WALLOC_ERR_BUDGET, "walloc_allocate: the tier's budget refused it");
      return WALLOC_NULL_HANDLE;
    }
    wl_slot_t *slot = &t->slots[off >> t->granule_shift];
    wl_store_release(slot, wl_slot_make(true, version, wl_slot_code(wl_load_relaxed(slot))));
  } else if (g < WL_SLOT_SMALL && bs <= WL_TIER_DIRECT) {
    walloc_status st = window_room(tier, t, c, bs);
    if (st != WALLOC_OK) {
      wl_fail(st, st == WALLOC_ERR_BUDGET ? "walloc_allocate: the tier's budget refused it" : NULL);
      return WALLOC_NULL_HANDLE;
    }
    off = wl_load_relaxed(&c->cur);
    gen = wl_wtag_gen(wl_load_relaxed(&c->epoch));
    wl_store_relaxed(&c->cur, off + bs);
    wl_store_release(&t->slots[off >> t->granule_shift], wl_slot_make(true, 0, (unsigned)g));
  } else {
    if (wl_budget_charge(tier, bs) != WALLOC_OK) {
      wl_fail(WALLOC_ERR_BUDGET, "walloc_allocate: the tier's budget refused it");
      return WALLOC_NULL_HANDLE;
    }
    if (!wl_tier_claim(t, bs, &off, &gen)) {
      wl_budget_refund(tier, bs);
      wl_fail(WALLOC_ERR_NOMEM, NULL); /* a full tier is an answer, not a misuse */
      return WALLOC_NULL_HANDLE;
    }
    wl_tier_slots_clear(t, off, bs);
    wl_store_release(&t->slots[off >> t->granule_shift], wl_slot_make(true, 0, wl_slot_size_set(t, off, g)));
  }
  ctx_count(&c->allocations);
  return wl_handle_make(t, off, gen, version);
}

walloc_status wl_tier_block_take(unsigned tier, size_t size, uint64_t *off, uint64_t *gen, size_t *got) {
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) return st;
  wl_tier_t *t = &wl_tiers.tier[tier];
  uint64_t g = wl_tier_granules(t, size);
  if (g == 0 || g > (t->capacity >> t->granule_shift) || ((size_t)g << t->granule_shift) != size) {
    return WALLOC_ERR_NOMEM;
  }
  unsigned version;
  if (recycled(t, g, off, gen, got, &version)) {
    if (wl_budget_charge(tier, *got) == WALLOC_OK) return WALLOC_OK;
    block_free(t, *off, *got, *gen); /* back on its list */
    return WALLOC_ERR_BUDGET;
  }
  if (wl_budget_charge(tier, size) != WALLOC_OK) return WALLOC_ERR_BUDGET;
  if (!wl_tier_claim(t, size, off, gen)) {
    wl_budget_refund(tier, size);
    return WALLOC_ERR_NOMEM;
  }
  wl_tier_slots_clear(t, *off, size);
  *got = size;
  return WALLOC_OK;
}

void wl_tier_block_give(unsigned tier, size_t size, uint64_t off, uint64_t gen) {
  if (block_free(&wl_tiers.tier[tier], off, size, gen)) wl_budget_refund(tier, size);
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
  if (expected & WL_SLOT_OWNED) {
    wl_warn("walloc_deallocate: the block belongs to a scope, context or ring (released with it)",
              ref.ptr);
    return WALLOC_ERR_INVALID;
  }
  if (!wl_cas_strong(&t->slots[ref.off >> t->granule_shift], &expected,
                     (uint16_t)(expected & ~WL_SLOT_ALLOCATED))) {
    return WALLOC_ERR_STALE; /* another thread deallocated it first */
  }
  free_push(t, ref.off, ref.size, ref.gen);
  wl_budget_refund((unsigned)(t - wl_tiers.tier), ref.size);
  wl_tier_ctx_t *c = wl_tier_thread_ctx((unsigned)(t - wl_tiers.tier));
  ctx_count(&c->deallocations);
  return WALLOC_OK;
}
