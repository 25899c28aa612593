/* api.c: the tier calls that only route: reset, compaction, statistics. */
#include "tiers.h"

#include <string.h>

WL_API walloc_status walloc_reset_tier(walloc_tier tier) {
  if ((unsigned)tier >= WL_TIERS) return WALLOC_ERR_INVALID; /* FALLBACK too: it would free the world */
  return wl_tier_reset((unsigned)tier, 0, false);
}

WL_API walloc_status walloc_fast_compact_tier(walloc_tier tier, size_t preserve_bytes) {
  if ((unsigned)tier >= WL_TIERS) return WALLOC_ERR_INVALID;
  return wl_tier_reset((unsigned)tier, preserve_bytes, true);
}

WL_API walloc_status walloc_tier_stats_get(walloc_tier tier, walloc_tier_stats *out) {
  if (out == NULL || (unsigned)tier >= WALLOC_TIER_COUNT) return WALLOC_ERR_INVALID;
  memset(out, 0, sizeof *out);
  if (tier == WALLOC_TIER_FALLBACK) { /* the general heap, in the same shape */
    walloc_heap_stats h;
    h.size = sizeof h;
    walloc_heap_stats_get(&h);
    wl_osmem_stats_t os; /* the heap's own: mapped_bytes holds the tiers' reservations too */
    wl_osmem_stats(&os);
    out->capacity = (size_t)os.by_user[WL_MEM_HEAP];
    out->used = (size_t)h.live_bytes;
    out->peak = (size_t)h.peak_bytes;
    out->allocations = h.allocations;
    out->deallocations = h.frees;
    return WALLOC_OK;
  }
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) return st;
  wl_tier_stats((unsigned)tier, out);
  return WALLOC_OK;
}
