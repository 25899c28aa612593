/* owner.c: tier memory owned by a scope or a context (lifetimes.h).
 *
 * Owns: the chunk records of one owner and the per-thread chunk caches.
 * Invariant: inside a chunk, the slot entries of [begin, cur) are those of
 * the blocks handed out (allocated | owned); everywhere else in the chunk
 * the allocated bit is clear, so a handle into it reads as stale.
 * Thread safety: none here; scopes are used by their thread only, contexts
 * call in under their lock.
 */
#include "lifetimes.h"

#include <string.h>

/* The window (o->w) is the current chunk's cur, end and generation, for
   the bump path; every other function here works on the chunk records, so
   it saves the window into them first and loads it again last. */
static void window_save(wl_owner_t *o) {
  if (o->n != 0) o->chunks[o->n - 1].cur = o->w.cur;
}

static void window_load(wl_owner_t *o) {
  wl_tier_t *t = &wl_tiers.tier[o->tier];
  if (o->n == 0) {
    o->w.cur = o->w.end = 0;
    o->w.gen = UINT64_MAX;
    o->w.hbase = 0;
    return;
  }
  const wl_chunk_t *c = &o->chunks[o->n - 1];
  o->w.cur = c->cur;
  o->w.end = c->end;
  o->w.gen = c->dead ? UINT64_MAX : c->gen; /* a dead chunk never matches */
  o->w.hbase = wl_handle_make(t, 0, c->gen, 0);
}

void wl_owner_init(wl_owner_t *o, unsigned tier) {
  memset(o, 0, sizeof *o);
  o->tier = tier;
  o->chunks = &o->first;
  o->cap = 1;
  wl_tier_t *t = &wl_tiers.tier[tier];
  o->w.tier = wl_tier_map(t);
  /* under WL_SLOT_SMALL granules (one slot entry) and WL_OWNER_BLOCK_MAX */
  o->small_max = wl_min((uint64_t)(WL_SLOT_SMALL - 1) << t->granule_shift, (uint64_t)WL_OWNER_BLOCK_MAX);
  window_load(o);
}

/* Is the chunk still the owner's? A reset takes it; a compaction may keep it. */
static bool chunk_live(wl_tier_t *t, wl_chunk_t *c) {
  if (c->dead) return false;
  if (wl_tier_owned_live(t, &c->gen, c->off, c->end - c->off)) return true;
  c->dead = 1;
  return false;
}

static void chunk_give(unsigned tier, wl_chunk_t *c) {
  wl_tier_t *t = &wl_tiers.tier[tier];
  if (!chunk_live(t, c)) return;
  if (c->cur > c->begin) wl_tier_slots_release(t, c->begin, c->cur - c->begin);
  wl_tier_block_give(tier, c->end - c->off, c->off, c->gen);
}

static void cache_trim(wl_chunk_cache_t *cache, unsigned tier, uint32_t keep) {
  while (cache->n > keep) {
    wl_chunk_t *c = &cache->chunk[--cache->n];
    c->begin = c->cur = c->off; /* nothing in use */
    chunk_give(tier, c);
  }
}

void wl_chunk_cache_drop(wl_chunk_cache_t *cache, unsigned tier) {
  cache_trim(cache, tier, 0);
  wl_free(cache->chunk);
  memset(cache, 0, sizeof *cache);
}

void wl_chunk_cache_cycle(wl_chunk_cache_t *cache, unsigned tier) {
  if (cache->drawn > cache->peak) cache->peak = cache->drawn;
  cache->drawn = 0;
  if (++cache->cycles % WL_CHUNK_CACHE_CYCLES == 0) {
    cache->peak_prev = cache->peak;
    cache->peak = 0;
  }
  cache_trim(cache, tier, wl_max(cache->peak, cache->peak_prev));
}

/* Keep a released chunk (its slots already cleared) in the thread's cache. */
static bool cache_put(wl_chunk_cache_t *cache, const wl_chunk_t *c) {
  if (cache->n == cache->cap) {
    if (cache->cap == WL_CHUNK_CACHE_MAX) return false;
    uint32_t cap = cache->cap ? cache->cap * 2 : 16;
    wl_chunk_t *a = wl_malloc(cap * sizeof *a);
    if (a == NULL) return false;
    if (cache->n != 0) memcpy(a, cache->chunk, cache->n * sizeof *a);
    wl_free(cache->chunk);
    cache->chunk = a;
    cache->cap = cap;
  }
  /* field by field: a struct copy right after the caller's store to one
     field stalls on store forwarding (measured: a third of a scope's leave) */
  wl_chunk_t *k = &cache->chunk[cache->n++];
  k->off = c->off;
  k->begin = k->cur = c->cur; /* the next scope goes on from here */
  k->end = c->end;
  k->gen = c->gen;
  k->std = c->std;
  k->dead = 0;
  return true;
}

static wl_chunk_t *chunk_push(wl_owner_t *o) {
  if (o->n == o->cap) {
    uint32_t cap = o->cap * 2;
    wl_chunk_t *a = wl_malloc(cap * sizeof *a);
    if (a == NULL) return NULL;
    memcpy(a, o->chunks, o->n * sizeof *a);
    if (o->chunks != &o->first) wl_free(o->chunks);
    o->chunks = a;
    o->cap = cap;
  }
  return &o->chunks[o->n++];
}

/* A new chunk of size bytes, as the current one (last) or, for a block's
   own chunk, just before it (so the current chunk keeps serving small
   blocks). Standard chunks (WL_OWNER_CHUNK) come from the thread's cache
   first. */
static wl_chunk_t *chunk_new(wl_owner_t *o, size_t size, wl_chunk_cache_t *cache, walloc_status *st) {
  wl_tier_t *t = &wl_tiers.tier[o->tier];
  wl_chunk_t c;
  bool std = size == WL_OWNER_CHUNK;
  if (cache != NULL && std) cache->drawn++;
  while (cache != NULL && std && cache->n > 0) {
    const wl_chunk_t *k = &cache->chunk[--cache->n];
    c.off = k->off;
    c.begin = c.cur = k->begin;
    c.end = k->end;
    c.gen = k->gen;
    c.std = k->std;
    c.dead = 0;
    if (chunk_live(t, &c)) {
      if (c.end - c.cur < WL_OWNER_CHUNK / 4) c.cur = c.off; /* near the end: start over */
      c.begin = c.cur;
      goto have;
    }
  }
  c.std = std;
  c.dead = 0;
  size_t got;
  *st = wl_tier_block_take(o->tier, size, &c.off, &c.gen, &got);
  if (*st != WALLOC_OK) return NULL;
  c.begin = c.cur = c.off;
  c.end = c.off + got;
have:;
  wl_chunk_t *slot = chunk_push(o);
  if (slot == NULL) {
    c.cur = c.begin;
    chunk_give(o->tier, &c);
    *st = WALLOC_ERR_NOMEM;
    return NULL;
  }
  if (!std && o->n >= 2) { /* a block's own chunk: keep the current one last */
    *slot = o->chunks[o->n - 2];
    slot = &o->chunks[o->n - 2];
  }
  *slot = c;
  return slot;
}

static WL_NOINLINE walloc_handle owner_alloc_slow(wl_owner_t *o, size_t size, wl_chunk_cache_t *cache,
                                                  walloc_status *st) {
  wl_tier_t *t = &wl_tiers.tier[o->tier];
  if (size > t->capacity) {
    *st = WALLOC_ERR_NOMEM;
    return WALLOC_NULL_HANDLE;
  }
  uint64_t g = wl_tier_granules(t, size);
  size_t bs = (size_t)g << t->granule_shift;
  wl_chunk_t *c;
  if (bs > WL_OWNER_BLOCK_MAX) {
    if ((c = chunk_new(o, bs, NULL, st)) == NULL) return WALLOC_NULL_HANDLE;
  } else {
    c = o->n != 0 ? &o->chunks[o->n - 1] : NULL;
    if (c == NULL || c->cur + bs > c->end || !chunk_live(t, c)) {
      if ((c = chunk_new(o, WL_OWNER_CHUNK, cache, st)) == NULL) return WALLOC_NULL_HANDLE;
    }
  }
  uint64_t off = c->cur;
  c->cur += bs;
  unsigned version = wl_slot_own(t, off, g);
  wl_store_relaxed(&o->w.used, wl_load_relaxed(&o->w.used) + bs);
  return wl_handle_make(t, off, c->gen, version);
}

walloc_handle wl_owner_alloc(wl_owner_t *o, size_t size, wl_chunk_cache_t *cache, walloc_status *st) {
  walloc_handle h = wl_owner_alloc_fast(o, size);
  if (WL_LIKELY(h != WALLOC_NULL_HANDLE)) return h;
  window_save(o);
  h = owner_alloc_slow(o, size, cache, st);
  window_load(o);
  return h;
}

void wl_owner_release(wl_owner_t *o, wl_chunk_cache_t *cache) {
  window_save(o);
  for (uint32_t i = o->n; i-- > 0;) {
    wl_chunk_t *c = &o->chunks[i];
    if (cache != NULL && c->std && chunk_live(&wl_tiers.tier[o->tier], c)) {
      if (c->cur > c->begin) wl_tier_slots_release(&wl_tiers.tier[o->tier], c->begin, c->cur - c->begin);
      c->begin = c->cur;
      if (cache_put(cache, c)) continue;
    }
    chunk_give(o->tier, c);
  }
  if (o->chunks != &o->first) wl_free(o->chunks);
  o->chunks = &o->first;
  o->cap = 1;
  o->n = 0;
  wl_store_relaxed(&o->w.used, 0);
  window_load(o);
}

void wl_owner_forget_dead(wl_owner_t *o) {
  window_save(o);
  wl_tier_t *t = &wl_tiers.tier[o->tier];
  uint32_t kept = 0;
  uint64_t used = 0;
  for (uint32_t i = 0; i < o->n; i++) {
    if (!chunk_live(t, &o->chunks[i])) continue;
    o->chunks[kept] = o->chunks[i];
    used += o->chunks[kept].cur - o->chunks[kept].begin;
    kept++;
  }
  o->n = kept;
  if (kept == 0) wl_store_relaxed(&o->w.used, 0);
  else if (used < wl_load_relaxed(&o->w.used)) wl_store_relaxed(&o->w.used, used);
  window_load(o);
}
