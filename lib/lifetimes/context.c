/* context.c: reference-counted owners of tier memory, in a tree
 * (walloc_context_*).
 *
 * Owns: the context tree. A context is an owner (owner.c) with a lock, a
 * reference count and children; a child holds a reference to its parent,
 * so a parent outlives its children. Resetting a context releases its
 * blocks and its descendants' (their handles go stale) and removes the
 * descendants nobody references any more.
 * Releasing the last reference does not free blocks behind the program's
 * back: a context that still owns blocks (or children) stays, unreferenced,
 * until a reset of its parent or of its tier reclaims them; that is
 * reported in debug builds.
 * Thread safety: the context's memory (mem) is its bias thread's, or
 * under its lock. The bias thread (the creator, while no other thread has
 * allocated from it) bumps without the lock, in walloc.h's inline path or
 * here: it sets busy, then (after a compiler barrier only) checks that it
 * is still the bias thread. Any other thread takes the lock, clears the
 * bias, runs wl_os_heavy_barrier (membarrier: every thread has passed a
 * full fence since) and waits for busy to clear: so either the bias
 * thread saw the bias gone, or its bump finished before. Allocating from
 * another thread ends the bias for good (the context is shared: every
 * allocation takes the lock, as without a heavy barrier, on wasm); a reset
 * or release from another thread gives it back after. The tree (create,
 * release, reset, the tier-reset observer) changes under one tree lock,
 * taken before any context's lock. Both are registered locks (platform.h),
 * so a fork child finds the tree and every context as the last call left
 * them (and busy cleared: the fork hook below). A context's lock leaves
 * the registry, which takes no lock under another, after the tree lock is
 * dropped: contexts that go are unlinked under it and freed after it (the
 * `doomed` lists below).
 */
#include "lifetimes.h"

#include <string.h>

#if defined(__wasm__)
#define CTX_MAGIC 0x43747874u /* "Ctxt" */
#else
#define CTX_MAGIC WALLOC_CONTEXT_LIVE_ /* walloc.h's inline allocation reads live contexts */
#endif

struct walloc_context {
  uint32_t magic;
  _Atomic(uint32_t) refs;
  _Atomic(uintptr_t) bias;        /* wl_owner_thread() of the thread that may bump without the lock, or 0 */
  _Atomic(uint32_t) busy;         /* the bias thread is bumping */
  uint32_t pad;
  wl_owner_t mem;                 /* its window first: walloc.h's walloc_context_map_ */
  wl_lock_t lock;                 /* guards mem and cache, with the bias above */
  wl_chunk_cache_t cache;         /* chunks kept from one reset for the next rounds, as a scope's thread keeps them */
  walloc_context *parent;         /* the tree: under tree_lock */
  walloc_context *children, *next, *prev;
  bool zombie;                    /* unreferenced, kept for its blocks or children (counted in zombies) */
};

#if !defined(__wasm__)
_Static_assert(offsetof(struct walloc_context, magic) == offsetof(walloc_context_map_, magic) &&
                   offsetof(struct walloc_context, refs) == offsetof(walloc_context_map_, refs) &&
                   offsetof(struct walloc_context, bias) == offsetof(walloc_context_map_, bias) &&
                   offsetof(struct walloc_context, busy) == offsetof(walloc_context_map_, busy) &&
                   offsetof(struct walloc_context, mem) + offsetof(wl_owner_t, w) == offsetof(walloc_context_map_, w),
               "walloc_context_map_ (walloc.h) must mirror struct walloc_context: change both and renumber "
               "WALLOC_CONTEXT_LIVE_");
#endif

WL_LOCK_STATIC(tree_lock, WL_LEVEL_LIFETIMES_TOP);
static walloc_context *roots;     /* contexts without a parent */
static _Atomic(size_t) zombies;   /* tier resets only walk the tree when there are some */

static walloc_context **sibling_list(walloc_context *c) { return c->parent ? &c->parent->children : &roots; }

/* Is there a heavy barrier (0 not known yet, 1 yes, 2 no)? Contexts get a
   bias thread only if so. */
static _Atomic(int) heavy_barrier;

static bool heavy_barrier_works(void) {
  int k = wl_load_acquire(&heavy_barrier);
  if (k == 0) {
    k = wl_os_heavy_barrier() ? 1 : 2;
    wl_store_release(&heavy_barrier, k);
  }
  return k == 1;
}

/* Take c's lock and, from any thread but its bias thread, its memory: the
   bias is cleared and the bias thread's bump, if one is under way, has
   finished. for_good: the bias stays cleared (another thread allocates
   from c: it is shared now). Returns the bias for ctx_unlock to restore. */
static uintptr_t ctx_lock(walloc_context *c, bool for_good) {
  wl_lock(&c->lock);
  uintptr_t b = wl_load_relaxed(&c->bias);
  if (b == 0 || b == wl_owner_thread()) return 0;
  atomic_store(&c->bias, 0); /* sequentially consistent, then the heavy barrier */
  if (!wl_os_heavy_barrier()) wl_warn("context: the heavy barrier failed; taking the context back anyway", c);
  while (wl_load_acquire(&c->busy) != 0) wl_os_yield();
  return for_good ? 0 : b;
}

static void ctx_unlock(walloc_context *c, uintptr_t bias) {
  if (bias != 0) wl_store_release(&c->bias, bias);
  wl_unlock(&c->lock);
}

/* A fork child has one thread: a bias thread that was bumping in the
   parent is not there to clear busy. Runs with every lock held. */
static void busy_clear(walloc_context *c) {
  for (; c != NULL; c = c->next) {
    wl_store_relaxed(&c->busy, 0);
    busy_clear(c->children);
  }
}
static void fork_child(void) { busy_clear(roots); }
static const wl_heap_hooks_t ctx_hooks = {NULL, fork_child};
static void hooks_add(void) {
  if (!wl_heap_hooks_add(&ctx_hooks)) wl_error("context: no room for the fork hook", NULL);
}
WL_ONCE_STATIC(hooks_added, WL_LEVEL_HEAP);

static void unlink_ctx(walloc_context *c) {
  if (c->prev != NULL) c->prev->next = c->next;
  else *sibling_list(c) = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
}

/* tree_lock held: remove c from the tree if nothing refers to it and it
   owns nothing, then its parent, whose reference it held, in turn. Removed
   contexts go on *doomed (through `next`), for doomed_free once the tree
   lock is dropped. */
static void try_destroy(walloc_context *c, walloc_context **doomed) {
  while (c != NULL && wl_load_relaxed(&c->refs) == 0) {
    if (c->children != NULL || wl_load_relaxed(&c->mem.w.used) != 0) { /* stays until a reset */
      if (!c->zombie) {
        c->zombie = true;
        wl_fetch_add(&zombies, 1);
      }
      return;
    }
    if (c->zombie) wl_fetch_sub(&zombies, 1);
    walloc_context *parent = c->parent;
    unlink_ctx(c);
    c->magic = 0;
    c->next = *doomed;
    *doomed = c;
    if (parent == NULL) return;
    wl_fetch_sub(&parent->refs, 1);
    c = parent;
  }
}

/* With no lock held: free what try_destroy removed. */
static void doomed_free(walloc_context *doomed) {
  while (doomed != NULL) {
    walloc_context *next = doomed->next;
    wl_chunk_cache_drop(&doomed->cache, doomed->mem.tier);
    wl_lock_fini(&doomed->lock);
    wl_free(doomed);
    doomed = next;
  }
}

/* tree_lock held: release the blocks of c and of every descendant, and
   remove the descendants nobody references. */
static void reset_tree(walloc_context *c, walloc_context **doomed) {
  uintptr_t bias = ctx_lock(c, false);
  wl_owner_release(&c->mem, &c->cache);
  wl_chunk_cache_cycle(&c->cache, c->mem.tier);
  ctx_unlock(c, bias);
  for (walloc_context *k = c->children, *next; k != NULL; k = next) {
    wl_fetch_add(&k->refs, 1); /* hold k while its subtree goes */
    reset_tree(k, doomed);
    wl_fetch_sub(&k->refs, 1);
    next = k->next;
    try_destroy(k, doomed);     /* c is held by our caller: the walk stops at it */
  }
}

/* After a reset or compaction of a tier: contexts forget the chunks it
   took, and the unreferenced ones that owned only those go. Referenced
   contexts notice dead chunks by themselves (owner.c) and forget them when
   released, so a reset costs nothing here unless unreferenced ones wait. */
static void forget_tree(walloc_context *c, unsigned tier, walloc_context **doomed) {
  for (walloc_context *k = c->children, *next; k != NULL; k = next) {
    wl_fetch_add(&k->refs, 1);
    forget_tree(k, tier, doomed);
    wl_fetch_sub(&k->refs, 1);
    next = k->next;
    try_destroy(k, doomed);
  }
  if (c->mem.tier == tier) {
    uintptr_t bias = ctx_lock(c, false);
    wl_owner_forget_dead(&c->mem);
    ctx_unlock(c, bias);
  }
}

static void tier_reset_observer(unsigned tier) {
  if (wl_load_relaxed(&zombies) == 0) return;
  walloc_context *doomed = NULL;
  wl_lock(&tree_lock);
  for (walloc_context *r = roots, *next; r != NULL; r = next) {
    wl_fetch_add(&r->refs, 1);
    forget_tree(r, tier, &doomed);
    wl_fetch_sub(&r->refs, 1);
    next = r->next;
    try_destroy(r, &doomed);
  }
  wl_unlock(&tree_lock);
  doomed_free(doomed);
}

/* Once: tier resets tell the contexts (a context made by another thread
   must not go on before the observer is in: the first reset after it would
   miss its dead blocks). */
static void observer_install(void) { wl_store_release(&wl_tier_reset_observer, tier_reset_observer); }
WL_ONCE_STATIC(observer_installed, WL_LEVEL_LIFETIMES);

/* A context the caller may use (a live reference), else NULL. */
static walloc_context *ctx_check(walloc_context *c, const char *what) {
  if (c == NULL || c->magic != CTX_MAGIC || wl_load_relaxed(&c->refs) == 0) {
    wl_fail(WALLOC_ERR_INVALID, what);
    return NULL;
  }
  return c;
}

WL_API walloc_context *walloc_context_create(walloc_tier tier, walloc_context *parent) {
  if ((unsigned)tier >= WL_TIERS) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_context_create: contexts live in the render, scene or entity tier");
    return NULL;
  }
  if (parent != NULL && ctx_check(parent, "walloc_context_create: the parent is not a live context") == NULL) {
    return NULL;
  }
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) {
    wl_fail(st, "walloc_context_create: the tiers could not be set up");
    return NULL;
  }
  wl_once(&observer_installed, observer_install); /* every caller goes on after it is in */
  walloc_context *c = wl_zalloc(sizeof *c);
  if (c == NULL) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_context_create: no memory for the context");
    return NULL;
  }
  c->magic = CTX_MAGIC;
  wl_store_relaxed(&c->refs, 1);
  wl_lock_init(&c->lock, WL_LEVEL_LIFETIMES);
  wl_owner_init(&c->mem, (unsigned)tier);
  c->mem.w.fast_max = c->mem.small_max;
  if (heavy_barrier_works()) {
    wl_once(&hooks_added, hooks_add);
    wl_store_relaxed(&c->bias, wl_owner_thread());
  }
  wl_lock(&tree_lock);
  c->parent = parent;
  if (parent != NULL) wl_fetch_add(&parent->refs, 1);
  walloc_context **list = sibling_list(c);
  c->next = *list;
  if (*list != NULL) (*list)->prev = c;
  *list = c;
  wl_unlock(&tree_lock);
  return c;
}

WL_API walloc_context *walloc_context_retain(walloc_context *ctx) {
  if (ctx_check(ctx, "walloc_context_retain: not a live context") == NULL) return NULL;
  wl_fetch_add(&ctx->refs, 1);
  return ctx;
}

WL_API void walloc_context_release(walloc_context *ctx) {
  if (ctx_check(ctx, "walloc_context_release: not a live context (released too often?)") == NULL) return;
  walloc_context *doomed = NULL;
  wl_lock(&tree_lock);
  if (wl_load_relaxed(&ctx->refs) != 0 && wl_fetch_sub(&ctx->refs, 1) == 1) {
    uintptr_t bias = ctx_lock(ctx, false);
    wl_owner_forget_dead(&ctx->mem); /* blocks a reset took are not kept for */
    ctx_unlock(ctx, bias);
    if (ctx->children != NULL || wl_load_relaxed(&ctx->mem.w.used) != 0) {
      wl_warn("walloc_context_release: the last reference is gone but the context still owns blocks; "
                "they stay until its parent or its tier is reset", ctx);
    }
    try_destroy(ctx, &doomed);
  }
  wl_unlock(&tree_lock);
  doomed_free(doomed);
}

WL_API walloc_handle(walloc_context_allocate)(walloc_context *ctx, size_t size) {
  if (ctx_check(ctx, "walloc_context_allocate: not a live context") == NULL) return WALLOC_NULL_HANDLE;
  walloc_handle h;
#if !defined(__wasm__) /* walloc.h's inline path, for callers built without it (no bias on wasm) */
  if (walloc_context_bump_((walloc_context_map_ *)(void *)ctx, wl_owner_thread(), size, &h)) return h;
#endif
  walloc_status st;
  ctx_lock(ctx, true);
  h = wl_owner_alloc_fast(&ctx->mem, size);
  if (WL_UNLIKELY(h == WALLOC_NULL_HANDLE)) h = wl_owner_alloc(&ctx->mem, size, &ctx->cache, &st);
  ctx_unlock(ctx, 0);
  if (h == WALLOC_NULL_HANDLE) wl_fail(st, NULL);
  return h;
}

WL_API void walloc_context_reset(walloc_context *ctx) {
  if (ctx_check(ctx, "walloc_context_reset: not a live context") == NULL) return;
  walloc_context *doomed = NULL;
  wl_lock(&tree_lock);
  reset_tree(ctx, &doomed);
  wl_unlock(&tree_lock);
  doomed_free(doomed);
}
