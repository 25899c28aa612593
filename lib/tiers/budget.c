/* budget.c: per-tier budgets (walloc_set_budget).
 *
 * Owns: each tier's limits, the bytes charged against them and the soft
 * limit's callback. A budget counts the bytes of every block taken from the
 * tier by any path: walloc_allocate, scopes' and contexts' chunks, rings,
 * promotion (each at its class size; fallback blocks at their size).
 * The allocation fast path never counts: it bumps inside what its thread
 * charged for its window beforehand (all of the window without a budget;
 * with one, credit of at most 4 KiB and 1/16 of what the hard limit
 * leaves, returned before the thread asks for more: alloc.c). Setting or
 * clearing a budget changes the tier's window tag, so every thread charges
 * (or stops) from its next block.
 * Setting one seeds the count with the arena tier's current use (bytes in
 * live blocks: what the statistics call used); the fallback tier counts its
 * blocks from then on.
 * Thread safety: charges are compare-and-swap loops on one counter, so a
 * hard limit is never exceeded, even by racing threads; the soft callback
 * runs in the thread whose charge crossed the limit, once per crossing (it
 * re-arms when use falls back to the limit or below).
 */
#include "tiers.h"

typedef struct wl_budget_s {
  _Atomic(uint64_t) used;
  _Atomic(uint64_t) soft, hard;      /* 0 = none */
  _Atomic(walloc_budget_fn) fn;
  _Atomic(void *) arg;
  _Atomic(uint8_t) soft_armed;
  _Atomic(uint8_t) on;               /* a limit is set */
} wl_budget_t;

static wl_budget_t budgets[WALLOC_TIER_COUNT];
WL_LOCK_STATIC(budget_lock, WL_LEVEL_TIERS_TOP); /* serialises walloc_set_budget */

walloc_status wl_budget_charge(unsigned tier, size_t bytes) {
  wl_budget_t *b = &budgets[tier];
  if (WL_LIKELY(!wl_load_relaxed(&b->on))) return WALLOC_OK;
  uint64_t hard = wl_load_relaxed(&b->hard);
  uint64_t used = wl_load_relaxed(&b->used), now;
  do {
    now = used + bytes;
    if (now < used || (hard != 0 && now > hard)) return WALLOC_ERR_BUDGET;
  } while (!wl_cas_weak(&b->used, &used, now));
  uint64_t soft = wl_load_relaxed(&b->soft);
  if (soft != 0 && now > soft && wl_load_relaxed(&b->soft_armed)) {
    uint8_t armed = 1;
    walloc_budget_fn fn = wl_load_acquire(&b->fn);
    if (wl_cas_strong(&b->soft_armed, &armed, 0) && fn != NULL) {
      fn((walloc_tier)tier, (size_t)now, (size_t)soft, wl_load_relaxed(&b->arg));
    }
  }
  return WALLOC_OK;
}

void wl_budget_refund(unsigned tier, size_t bytes) {
  wl_budget_t *b = &budgets[tier];
  if (WL_LIKELY(!wl_load_relaxed(&b->on))) return;
  uint64_t used = wl_load_relaxed(&b->used), now;
  do {
    now = used > bytes ? used - bytes : 0; /* blocks from before a reset are not counted twice */
  } while (!wl_cas_weak(&b->used, &used, now));
  uint64_t soft = wl_load_relaxed(&b->soft);
  if (soft != 0 && now <= soft) wl_store_relaxed(&b->soft_armed, 1);
}

bool wl_budget_on(unsigned tier) { return wl_load_relaxed(&budgets[tier].on) != 0; }

size_t wl_budget_headroom(unsigned tier) {
  wl_budget_t *b = &budgets[tier];
  uint64_t hard = wl_load_relaxed(&b->hard), used = wl_load_relaxed(&b->used);
  if (hard == 0) return SIZE_MAX;
  return used < hard ? (size_t)(hard - used) : 0;
}

void wl_budget_reset(unsigned tier, size_t used) {
  wl_budget_t *b = &budgets[tier];
  wl_store_relaxed(&b->used, used);
  uint64_t soft = wl_load_relaxed(&b->soft);
  if (soft == 0 || used <= soft) wl_store_relaxed(&b->soft_armed, 1);
}

WL_API walloc_status walloc_set_budget(walloc_tier tier, size_t soft_limit, size_t hard_limit,
                                       walloc_budget_fn on_soft_limit, void *arg) {
  if ((unsigned)tier >= WALLOC_TIER_COUNT) return WALLOC_ERR_INVALID;
  if (hard_limit != 0 && soft_limit > hard_limit) return WALLOC_ERR_INVALID;
  if (tier != WALLOC_TIER_FALLBACK) {
    walloc_status st = wl_tiers_ensure();
    if (st != WALLOC_OK) return st;
  }
  wl_budget_t *b = &budgets[tier];
  wl_lock(&budget_lock);
  bool on = soft_limit != 0 || hard_limit != 0;
  uint64_t used = 0;
  if (on && !wl_load_relaxed(&b->on) && tier != WALLOC_TIER_FALLBACK) {
    /* seed with what the tier holds now (the fallback tier counts its
       blocks from here on: the heap behind it serves malloc too) */
    walloc_tier_stats s;
    walloc_tier_stats_get(tier, &s);
    used = s.used;
  } else {
    used = wl_load_relaxed(&b->used);
  }
  wl_store_relaxed(&b->soft, soft_limit);
  wl_store_relaxed(&b->hard, hard_limit);
  wl_store_relaxed(&b->arg, arg);
  wl_store_release(&b->fn, on_soft_limit);
  wl_store_relaxed(&b->used, used);
  wl_store_relaxed(&b->soft_armed, 1); /* the next charge above the soft limit calls back */
  wl_store_release(&b->on, (uint8_t)on);
  if (tier < WL_TIERS) wl_tier_windows_resync(&wl_tiers.tier[tier]); /* windows charge (or stop charging) from their next block */
  wl_unlock(&budget_lock);
  return WALLOC_OK;
}
