/* tier.c: the three arena tiers: configuration, the reservation and its
 * growth, windows, reset and compaction, statistics.
 *
 * Owns: the configuration and its limits (walloc_init's struct over
 * WALLOC_TIERS over the defaults; a bad WALLOC_TIERS is reported and left
 * out), wl_tiers (one reservation for all tiers, one for their slot
 * tables), the generation bookkeeping that makes stale handles detectable,
 * and the registry of per-thread contexts that statistics sum.
 * Invariants: every handle offset of the layout fits 36 bits (the tiers
 * end by 2^36); top <= capacity; committed >= every claimed byte and
 * committed <= capacity (the inline handle check relies on it); within a
 * generation, blocks handed out lie below top; the limit list holds
 * increasing limits for increasing generations, all >= reset_gen.
 * Thread safety: claims are compare-and-swap on top; commits, resets and
 * compactions take the tier's lock; a reset publishes under `seq` so that
 * handle validation (handle.c) sees a consistent generation and limit list.
 * Memory pressure: a refused reservation or commit is tried once more after
 * every layer gave back what it caches (pressure.c). The tiers themselves
 * give nothing back there: their reservation is their capacity, and free
 * blocks stay on their lists. A set-up refused even then is not tried
 * again (but for a WALLOC_TIERS too big to reserve, which is reported and
 * followed by one set-up with the defaults): the tiers answer
 * WALLOC_ERR_NOMEM from then on.
 * Every lock here is registered (platform.h), so a fork child never finds
 * a reset half published (seq odd) nor the thread registry mid-change; its
 * fork_child repair keeps only the forking thread in the registry.
 */
#include "tiers.h"

#include <string.h>

/* Before set-up, generations read as UINT64_MAX so that no thread's window
   (epoch 0) matches and every allocation takes the slow path. */
wl_tiers_t wl_tiers = {.tier = {[0 ... WL_TIERS - 1] = {.gen = UINT64_MAX, .wtag = UINT64_MAX, .granule_shift = 5,
                                                        .lock = WL_LOCK_INIT(WL_LEVEL_TIERS)}}};
_Static_assert(WL_TIERS == 3, "one registration per tier lock");
WL_LOCK_REGISTER(tier0_lock, &wl_tiers.tier[0].lock);
WL_LOCK_REGISTER(tier1_lock, &wl_tiers.tier[1].lock);
WL_LOCK_REGISTER(tier2_lock, &wl_tiers.tier[2].lock);
WL_API __thread wl_tier_thread_t wl_tier_self __attribute__((tls_model("initial-exec")));

_Atomic(wl_tier_observer_fn) wl_tier_reset_observer;

static _Atomic(uint64_t) free_heads[WL_TIERS][WL_FREE_CLASSES];

WL_API const walloc_tiers_map_ *const walloc_tiers_ = WL_TIERS_MAP;

WL_LOCK_STATIC(init_lock, WL_LEVEL_TIERS);
WL_LOCK_STATIC(threads_lock, WL_LEVEL_TIERS);
static wl_tier_thread_t *threads_first;

static const unsigned default_percent[WL_TIERS] = WL_TIERS_DEFAULT_SHARES;
static const size_t default_align[WL_TIERS] = {128, 64, 8};

/* On wasm reserving is allocating (memory.grow): the tiers' whole share
   becomes linear memory at first use, so the default there is small and
   walloc_init or WALLOC_TIERS asks for more. */
#if defined(__wasm__)
#define WL_TIER_DEFAULT_MEMORY ((size_t)32 << 20)
#elif UINTPTR_MAX > 0xFFFFFFFFu
#define WL_TIER_DEFAULT_MEMORY ((size_t)1 << 30)
#else
#define WL_TIER_DEFAULT_MEMORY ((size_t)256 << 20)
#endif

/* ------------------------------------------------------------------------
   Configuration: walloc_init's struct, else the tiers option (WALLOC_TIERS
   or tiers= in WALLOC_OPTIONS, core.h), else defaults.
   WALLOC_TIERS=<memory>[:<render>,<scene>,<entity>], memory with an
   optional K, M or G suffix: WALLOC_TIERS=2G:60,30,10. A value that does
   not parse or is out of range is reported on stderr (always: without it
   every tier allocation would fail with no word why) and the defaults are
   used; a walloc_config out of range is WALLOC_ERR_INVALID.
   ------------------------------------------------------------------------ */
/* Every handle offset must fit its 36 bits; a 32-bit size_t says less. */
#define WL_TIER_LIMIT WL_TIERS_MAX_MEMORY
_Static_assert(WL_TIERS_MAX_MEMORY == (SIZE_MAX < WL_TIER_MAX_MEMORY ? (uint64_t)SIZE_MAX : WL_TIER_MAX_MEMORY),
               "the tiers option's limit (core.h) is what a handle's offset addresses");

typedef struct wl_tier_layout_s {
  size_t memory;
  unsigned percent[WL_TIERS];
  size_t align[WL_TIERS];
} wl_tier_layout_t;

/* NULL when l is a layout the tiers can take, else why not: the option's
   limits (core.h, one check for WALLOC_TIERS and walloc_config), and the
   alignments, which only walloc_config sets. */
static const char *layout_refusal(const wl_tier_layout_t *l) {
  for (int i = 0; i < WL_TIERS; i++) {
    if (!wl_is_pow2(l->align[i]) || l->align[i] > 4096) return "alignments are powers of two up to 4096";
  }
  return wl_tiers_shape_refusal(l->memory, l->percent);
}

static _Atomic(int) option_refused; /* reported already: a process says it once */

static void report_option(const char *value, const char *why) {
  if (atomic_exchange(&option_refused, 1) != 0) return;
  wl_option_refused(WL_OPT_TIERS, value, why, WL_TIERS_DEFAULT_TEXT);
}

/* The layout for cfg (NULL: none), over WALLOC_TIERS when use_env, over the
   defaults. A bad WALLOC_TIERS is reported (once) and left out. */
static walloc_status layout_resolve(const walloc_config *cfg, bool use_env, wl_tier_layout_t *l) {
  l->memory = WL_TIER_DEFAULT_MEMORY;
  memcpy(l->percent, default_percent, sizeof l->percent);
  memcpy(l->align, default_align, sizeof l->align);
  /* the option, checked by the core (a bad one was reported there and
     reads as unset) */
  wl_options_read(WL_OPTG_TIERS);
  const char *opt = use_env ? wl_option_text(WL_OPT_TIERS) : NULL;
  wl_tiers_option_t o;
  if (opt != NULL && wl_option_tiers(opt, &o) == NULL) {
    l->memory = (size_t)o.memory;
    if ((o.percent[0] | o.percent[1] | o.percent[2]) != 0) memcpy(l->percent, o.percent, sizeof l->percent);
  }
  if (cfg != NULL && cfg->tier_memory != 0) l->memory = cfg->tier_memory;
  if (cfg != NULL && (cfg->tier_percent[0] | cfg->tier_percent[1] | cfg->tier_percent[2]) != 0) {
    memcpy(l->percent, cfg->tier_percent, sizeof l->percent);
  }
  for (int i = 0; cfg != NULL && i < WL_TIERS; i++) {
    if (cfg->tier_alignment[i] != 0) l->align[i] = cfg->tier_alignment[i];
  }
  return layout_refusal(l) == NULL ? WALLOC_OK : WALLOC_ERR_INVALID;
}

/* ------------------------------------------------------------------------
   Threads: each thread's contexts are registered so statistics can sum
   them; at thread exit their counts fold into the tier totals.
   ------------------------------------------------------------------------ */
static void thread_exit(void) {
  wl_tier_thread_t *self = &wl_tier_self;
  if (!self->registered) return;
  for (unsigned i = 0; i < WL_TIERS; i++) { /* a budget's unused credit; the window's rest */
    wl_tier_credit_return(i);
    wl_tier_window_drop(&wl_tiers.tier[i], &self->ctx[i]);
  }
  wl_lock(&threads_lock);
  for (int i = 0; i < WL_TIERS; i++) {
    wl_tier_t *t = &wl_tiers.tier[i];
    wl_tier_ctx_t *c = &self->ctx[i];
    wl_fetch_add(&t->allocations, wl_load_relaxed(&c->allocations));
    wl_fetch_add(&t->deallocations, wl_load_relaxed(&c->deallocations));
  }
  if (self->prev != NULL) self->prev->next = self->next;
  else threads_first = self->next;
  if (self->next != NULL) self->next->prev = self->prev;
  memset(self, 0, sizeof *self);
  self->exited = true;
  wl_unlock(&threads_lock);
}

/* In the child only this thread exists: the others' contexts leave the
   registry (their counts stay out of the statistics, as their threads do).
   fork holds threads_lock meanwhile, so the list is whole. */
static void fork_child(void) {
  threads_first = NULL;
  wl_tier_thread_t *self = &wl_tier_self;
  if (self->registered) {
    self->next = self->prev = NULL;
    threads_first = self;
  }
}

static const wl_heap_hooks_t tier_hooks = {thread_exit, fork_child};

wl_tier_ctx_t *wl_tier_thread_ctx(unsigned tier) {
  wl_tier_thread_t *self = &wl_tier_self;
  if (WL_UNLIKELY(self->exited)) {
    /* A call after this thread's exit hook: from a thread-specific data
       destructor the program's (it runs after the heap's), when the heap
       has let the thread's heap go: wl_heap_get_or_init below gives the
       thread a new one, whose exit runs the hooks again and takes this
       registration back out. Not from another module's exit hook: the heap
       runs them newest first, and every module that calls the tiers from
       its hook added it after the tiers' (it would stay listed after the
       thread is gone). */
    wl_assert(wl_heap_thread_gone());
    self->exited = false;
  }
  if (WL_UNLIKELY(!self->registered)) {
    wl_heap_get_or_init(); /* the heap's thread-exit hook is what folds this thread's counts */
    wl_lock(&threads_lock);
    self->prev = NULL;
    self->next = threads_first;
    if (threads_first != NULL) threads_first->prev = self;
    threads_first = self;
    self->registered = true;
    wl_unlock(&threads_lock);
  }
  return &self->ctx[tier];
}

/* ------------------------------------------------------------------------
   Set-up: one reservation for the tiers, one for their slot tables
   ------------------------------------------------------------------------ */
/* The generation limits', the tiers' and the slot tables' reservations:
   all three, or none and false. */
static bool reserve_all(size_t limits_bytes, size_t total, size_t slots_total, uint8_t **limits, uint8_t **base,
                        uint8_t **slots) {
  *limits = wl_osmem_reserve(WL_MEM_TIERS, limits_bytes, wl_os.page_size);
  if (*limits == NULL) return false;
  *base = wl_osmem_reserve(WL_MEM_TIERS, total, WL_TIER_COMMIT_CHUNK);
  if (*base == NULL) {
    wl_osmem_unreserve(WL_MEM_TIERS, *limits, limits_bytes, 0);
    return false;
  }
  *slots = slots_total != 0 ? wl_osmem_reserve(WL_MEM_TIERS, slots_total, wl_os.page_size) : NULL;
  if (slots_total != 0 && *slots == NULL) {
    wl_osmem_unreserve(WL_MEM_TIERS, *base, total, 0);
    wl_osmem_unreserve(WL_MEM_TIERS, *limits, limits_bytes, 0);
    return false;
  }
  return true;
}

static walloc_status tiers_setup(const walloc_config *cfg, bool use_env) {
  wl_tier_layout_t l;
  walloc_status st = layout_resolve(cfg, use_env, &l);
  if (st != WALLOC_OK) return st;
  wl_process_init();
  size_t caps[WL_TIERS], offsets[WL_TIERS], slot_bytes[WL_TIERS], slots_total = 0;
  /* Tiers start on 4 MiB boundaries (whole commit chunks), unless that
     padding would take the last handle offset past its 36 bits (a total
     near 64 GiB): then on 64 KiB ones, and the tiers end by 2^36. */
  uint64_t end = 0;
  for (size_t pad = WL_TIER_COMMIT_CHUNK;; pad = WL_TIER_WINDOW) {
    end = 0;
    for (int i = 0; i < WL_TIERS; i++) {
      caps[i] = wl_align_down(l.memory / 100 * l.percent[i], WL_TIER_WINDOW);
      offsets[i] = (size_t)end;
      end += (caps[i] + (uint64_t)pad - 1) & ~(uint64_t)(pad - 1);
    }
    if (end <= WL_TIER_LIMIT || pad == WL_TIER_WINDOW) break;
  }
  size_t total = (size_t)end;
  for (int i = 0; i < WL_TIERS; i++) {
    size_t granule = wl_max(WL_TIER_MIN_GRANULE, l.align[i]);
    slot_bytes[i] = wl_align_up(caps[i] / granule * sizeof(wl_slot_t), wl_os.page_size);
    slots_total += slot_bytes[i];
  }
  size_t limits_bytes = WL_TIERS * WL_GEN_LIMITS * sizeof(wl_gen_limit_t);
  uint8_t *limits, *base, *slots;
  /* refused: what every layer caches goes back, and once more (pressure.c) */
  if (!reserve_all(limits_bytes, total, slots_total, &limits, &base, &slots) &&
      !(wl_give_back(NULL) && reserve_all(limits_bytes, total, slots_total, &limits, &base, &slots))) {
    return WALLOC_ERR_NOMEM;
  }
  /* where addresses fit a handle's offset (wasm32), offsets count from 0:
     a handle's offset is its block's address */
  size_t origin = wl_os.handles_are_addresses ? (size_t)(uintptr_t)base : 0;
  for (int i = 0; i < WL_TIERS; i++) offsets[i] += origin;
  wl_tiers.base = (uint8_t *)((uintptr_t)base - origin);
  wl_tiers.total = origin + total;
  for (int i = 0; i < WL_TIERS; i++) {
    wl_tier_t *t = &wl_tiers.tier[i];
    /* every other field is still zero: set-up runs once, and fast paths may
       already read gen (UINT64_MAX until the store below) */
    t->start = (uint8_t *)((uintptr_t)wl_tiers.base + offsets[i]);
    t->offset = offsets[i];
    t->capacity = caps[i];
    t->align = (uint32_t)l.align[i];
    t->granule_shift = (uint32_t)wl_bsr(wl_max(WL_TIER_MIN_GRANULE, l.align[i]));
    t->slots = (wl_slot_t *)slots;
    slots += slot_bytes[i];
    t->limits = (wl_gen_limit_t *)limits + (size_t)i * WL_GEN_LIMITS;
    t->free_heads = free_heads[i];
    wl_store_relaxed(&t->reset_gen, 1);
    wl_store_release(&t->gen, 1);
    wl_store_release(&t->wtag, (uint64_t)1 << WL_WTAG_SHIFT);
  }
  wl_heap_hooks_add(&tier_hooks);
  /* the map is complete: inline handle checks may read it (walloc.h) */
  wl_store_release(&wl_tiers.abi_unchecked, WL_DEBUG ? 0u : WALLOC_MAP_ABI_);
  wl_store_release(&wl_tiers.abi, WALLOC_MAP_ABI_);
  return WALLOC_OK;
}

walloc_status wl_tiers_ensure(void) {
  int state = wl_load_acquire(&wl_tiers.state);
  if (WL_LIKELY(state == 2)) return WALLOC_OK;
  if (state == 3) return WALLOC_ERR_NOMEM;
  wl_lock(&init_lock);
  walloc_status st = WALLOC_OK;
  if (wl_load_relaxed(&wl_tiers.state) == 0) {
    st = tiers_setup(NULL, true);
    const char *opt = wl_option_text(WL_OPT_TIERS);
    if (st != WALLOC_OK && opt != NULL && !wl_load_relaxed(&option_refused)) {
      /* WALLOC_TIERS in range, but more than this process can reserve */
      report_option(opt, "cannot reserve that much");
      st = tiers_setup(NULL, false);
    }
    wl_store_release(&wl_tiers.state, st == WALLOC_OK ? 2 : 3);
  } else if (wl_load_relaxed(&wl_tiers.state) == 3) {
    st = WALLOC_ERR_NOMEM;
  }
  wl_unlock(&init_lock);
  return st;
}

WL_API walloc_status walloc_init(const walloc_config *config) {
  wl_lock(&init_lock);
  walloc_status st;
  if (wl_load_relaxed(&wl_tiers.state) == 2) {
    st = WALLOC_ERR_INVALID; /* already set up (explicitly or by a first allocation) */
  } else {
    st = tiers_setup(config, true);
    if (st == WALLOC_OK) wl_store_release(&wl_tiers.state, 2);
  }
  wl_unlock(&init_lock);
  if (st != WALLOC_OK && st != WALLOC_ERR_INVALID) wl_error("walloc_init: cannot reserve the tiers", NULL);
  return st;
}

/* ------------------------------------------------------------------------
   Claims and commits
   ------------------------------------------------------------------------ */
static bool tier_commit_once(wl_tier_t *t, uint64_t upto) {
  bool ok = true;
  wl_lock(&t->lock);
  uint64_t have = wl_load_relaxed(&t->committed);
  if (upto > have) {
    uint64_t want = wl_min(wl_align_up(upto, WL_TIER_COMMIT_CHUNK), t->capacity);
    size_t page = wl_os.page_size;
    /* the slot pages past those committed with [0, have): each commits once (counted, core.h).
       If the OS refuses the slots after the data, the data stays committed
       and its retry counts it again: committed then runs ahead by that much. */
    uintptr_t slo = wl_align_up((uintptr_t)(t->slots + (have >> t->granule_shift)), page);
    uintptr_t shi = wl_align_up((uintptr_t)(t->slots + (want >> t->granule_shift)), page);
    ok = wl_osmem_commit(t->start + have, want - have) && (shi <= slo || wl_osmem_commit((void *)slo, shi - slo));
    if (ok) wl_store_release(&t->committed, want);
  }
  wl_unlock(&t->lock);
  return ok;
}

static bool tier_commit(wl_tier_t *t, uint64_t upto) {
  if (WL_LIKELY(upto <= wl_load_acquire(&t->committed))) return true;
  /* refused: what every layer caches goes back (not under the tier's lock),
     and once more (pressure.c) */
  return tier_commit_once(t, upto) || (wl_give_back(NULL) && tier_commit_once(t, upto));
}

/* Committed first, then claimed: top never passes committed (the inline
   handle check reads slot entries below top). */
bool wl_tier_claim(wl_tier_t *t, size_t size, uint64_t *off, uint64_t *epoch) {
  for (;;) {
    uint64_t e = wl_load_acquire(&t->gen);
    uint64_t top = wl_load_relaxed(&t->top);
    do {
      if (size > t->capacity || top > t->capacity - size) return false;
      if (!tier_commit(t, top + size)) return false;
    } while (!wl_cas_weak(&t->top, &top, top + size));
    if (wl_load_acquire(&t->gen) != e) continue; /* a reset came between: that space is not ours */
    wl_peak_raise(&t->peak, top + size);
    *off = top;
    *epoch = e;
    return true;
  }
}

/* ------------------------------------------------------------------------
   Generations: reset (limit 0) and compaction (limit = preserved bytes)
   ------------------------------------------------------------------------ */
/* The compaction limits form a ring: entry i (in order from lim_first)
   covers generations [gen_i, gen_i+1), the last one up to the current
   generation, and limits increase with i. */
WL_INLINE wl_gen_limit_t *limit_at(wl_tier_t *t, uint32_t i) {
  return &t->limits[(wl_load_relaxed(&t->lim_first) + i) % WL_GEN_LIMITS];
}

/* The limit of generation `gen` (reset_gen <= gen < current): read under
   the tier's sequence counter (handle.c), written under its lock. */
uint64_t wl_tier_limit(wl_tier_t *t, uint64_t gen) {
  uint32_t lo = 0, hi = wl_load_relaxed(&t->lim_count); /* find the last entry with gen_i <= gen */
  if (hi > WL_GEN_LIMITS) return 0;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (wl_load_relaxed(&limit_at(t, mid)->gen) <= gen) lo = mid + 1;
    else hi = mid;
  }
  return lo == 0 ? 0 : wl_load_relaxed(&limit_at(t, lo - 1)->limit);
}

/* Generation `cur` ends with everything at or beyond `limit` reclaimed. The
   new limit caps every entry: those at or above it merge into one. */
static void limits_close(wl_tier_t *t, uint64_t cur, uint64_t limit) {
  uint32_t n = wl_load_relaxed(&t->lim_count);
  if (limit == 0) {
    wl_store_relaxed(&t->lim_count, 0);
    wl_store_relaxed(&t->reset_gen, cur + 1);
    return;
  }
  uint32_t lo = 0, hi = n; /* first entry whose limit >= the new one */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (wl_load_relaxed(&limit_at(t, mid)->limit) < limit) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n) {
    wl_store_relaxed(&limit_at(t, lo)->limit, limit);
    wl_store_relaxed(&t->lim_count, lo + 1);
    return;
  }
  if (n == WL_GEN_LIMITS) { /* full: the oldest generations become stale (the safe side) */
    wl_store_relaxed(&t->reset_gen, wl_load_relaxed(&limit_at(t, 1)->gen));
    wl_store_relaxed(&t->lim_first, (wl_load_relaxed(&t->lim_first) + 1) % WL_GEN_LIMITS);
    n--;
  }
  uint32_t phys = (wl_load_relaxed(&t->lim_first) + n) % WL_GEN_LIMITS;
  if (phys >= t->lim_committed) { /* grow the committed part by a page */
    size_t per_page = wl_os.page_size / sizeof(wl_gen_limit_t);
    if (!wl_osmem_commit(&t->limits[t->lim_committed], per_page * sizeof(wl_gen_limit_t))) {
      wl_store_relaxed(&t->reset_gen, cur + 1); /* cannot remember: treat as a reset (safe side) */
      wl_store_relaxed(&t->lim_count, 0);
      return;
    }
    t->lim_committed += (uint32_t)per_page;
  }
  wl_store_relaxed(&t->limits[phys].gen, cur);
  wl_store_relaxed(&t->limits[phys].limit, limit);
  wl_store_relaxed(&t->lim_count, n + 1);
}

walloc_status wl_tier_reset(unsigned tier, size_t preserve, bool compact) {
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) return st;
  wl_tier_t *t = &wl_tiers.tier[tier];
  wl_lock(&t->lock);
  uint64_t top = wl_load_relaxed(&t->top);
  uint64_t keep = 0;
  if (compact) {
    keep = preserve > top ? top : wl_align_up(preserve, wl_tier_granule(t));
    if (keep > top) keep = top;
  }
  atomic_fetch_add_explicit(&t->seq, 1, memory_order_acq_rel); /* odd: changing */
  uint64_t cur = wl_load_relaxed(&t->gen);
  if (wl_option(WL_OPT_TIER_DECOMMIT) != 0 && wl_load_relaxed(&t->committed) > keep) {
    size_t page = wl_os.page_size;
    uint64_t from = wl_align_up(keep, page);
    uint64_t to = wl_load_relaxed(&t->committed);
    if (to > from) wl_osmem_purge(t->start + from, to - from);
  }
  limits_close(t, cur, keep);
  for (int k = 0; k < WL_FREE_CLASSES; k++) { /* empty, with a new tag */
    uint64_t h = wl_load_relaxed(&t->free_heads[k]);
    wl_store_release(&t->free_heads[k], ((h >> WL_HANDLE_OFF_BITS) + 1) << WL_HANDLE_OFF_BITS);
  }
  wl_store_relaxed(&t->free_bytes, 0);
  wl_store_relaxed(&t->idle, 0);
  wl_store_relaxed(&t->top, keep);
  wl_store_release(&t->gen, cur + 1);
  uint64_t tag = wl_load_relaxed(&t->wtag);
  while (!wl_cas_weak(&t->wtag, &tag, (cur + 1) << WL_WTAG_SHIFT)) {}
  atomic_fetch_add_explicit(&t->seq, 1, memory_order_acq_rel); /* even: done */
  if (!compact) wl_fetch_add(&t->resets, 1);
  wl_budget_reset(tier, (size_t)keep);
  wl_unlock(&t->lock);
  wl_tier_observer_fn observer = wl_load_acquire(&wl_tier_reset_observer);
  if (observer != NULL) observer(tier);
  return WALLOC_OK;
}

/* The thread leaves its window: what is left of it counts as idle (not
   used) until the generation ends. */
void wl_tier_window_drop(wl_tier_t *t, wl_tier_ctx_t *c) {
  uint64_t cur = wl_load_relaxed(&c->cur), wend = wl_load_relaxed(&c->wend);
  if (wl_wtag_gen(wl_load_relaxed(&c->epoch)) == wl_load_acquire(&t->gen) && wend > cur) wl_fetch_add(&t->idle, wend - cur);
  wl_store_relaxed(&c->wend, cur);
  wl_store_relaxed(&c->end, cur);
}

/* Every thread's window of the tier goes through the slow path once (its
   tag changes; the generation does not): after a budget is set or cleared,
   and when the tier's free lists stop being empty (alloc.c). */
void wl_tier_windows_resync(wl_tier_t *t) {
  uint64_t mask = ((uint64_t)1 << (WL_WTAG_SHIFT - 1)) - 1; /* the counter (the top bit is WL_EPOCH_FREE's) */
  uint64_t tag = wl_load_relaxed(&t->wtag);
  while (!wl_cas_weak(&t->wtag, &tag, (tag & ~mask) | ((tag + 1) & mask))) {}
}

/* ------------------------------------------------------------------------
   Statistics
   ------------------------------------------------------------------------ */
void wl_tier_stats(unsigned tier, walloc_tier_stats *out) {
  wl_tier_t *t = &wl_tiers.tier[tier];
  uint64_t gen = wl_load_acquire(&t->gen);
  uint64_t window_left = 0;
  wl_lock(&threads_lock); /* exiting threads fold their counts under it: totals and registry agree */
  uint64_t allocs = wl_load_relaxed(&t->allocations), deallocs = wl_load_relaxed(&t->deallocations);
  for (wl_tier_thread_t *th = threads_first; th != NULL; th = th->next) {
    wl_tier_ctx_t *c = &th->ctx[tier];
    allocs += wl_load_relaxed(&c->allocations);
    deallocs += wl_load_relaxed(&c->deallocations);
    uint64_t end = wl_load_relaxed(&c->wend), cur = wl_load_relaxed(&c->cur);
    if (wl_wtag_gen(wl_load_relaxed(&c->epoch)) == gen && end > cur) window_left += end - cur;
  }
  wl_unlock(&threads_lock);
  uint64_t top = wl_load_relaxed(&t->top);
  uint64_t free_bytes = wl_load_relaxed(&t->free_bytes);
  uint64_t taken = window_left + free_bytes + wl_load_relaxed(&t->idle);
  out->capacity = t->capacity;
  out->used = top > taken ? (size_t)(top - taken) : 0;
  out->peak = (size_t)wl_load_relaxed(&t->peak);
  out->free_list_bytes = (size_t)free_bytes;
  out->allocations = allocs;
  out->deallocations = deallocs;
  out->resets = wl_load_relaxed(&t->resets);
  out->generation = gen;
}
