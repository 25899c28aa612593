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
 * Thread safety: allocation takes the context's lock; the tree (create,
 * release, reset, the tier-reset observer) changes under one tree lock,
 * taken before any context's lock. Both are registered locks (platform.h),
 * so a fork child finds the tree and every context as the last call left
 * them. A context's lock leaves the registry, which takes no lock under
 * another, after the tree lock is dropped: contexts that go are unlinked
 * under it and freed after it (the `doomed` lists below).
 */
#include "lifetimes.h"

#include <string.h>

#define CTX_MAGIC 0x43747874u /* "Ctxt" */

struct walloc_context {
  uint32_t magic;
  _Atomic(uint32_t) refs;
  wl_lock_t lock;                 /* guards mem */
  wl_owner_t mem;
  walloc_context *parent;         /* the tree: under tree_lock */
  walloc_context *children, *next, *prev;
  bool zombie;                    /* unreferenced, kept for its blocks or children (counted in zombies) */
};

WL_LOCK_STATIC(tree_lock, WL_LEVEL_LIFETIMES_TOP);
static walloc_context *roots;     /* contexts without a parent */
static _Atomic(int) observer_set;
static _Atomic(size_t) zombies;   /* tier resets only walk the tree when there are some */

static walloc_context **sibling_list(walloc_context *c) { return c->parent ? &c->parent->children : &roots; }

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
    wl_lock_fini(&doomed->lock);
    wl_free(doomed);
    doomed = next;
  }
}

/* tree_lock held: release the blocks of c and of every descendant, and
   remove the descendants nobody references. */
static void reset_tree(walloc_context *c, walloc_context **doomed) {
  wl_lock(&c->lock);
  wl_owner_release(&c->mem, NULL);
  wl_unlock(&c->lock);
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
    wl_lock(&c->lock);
    wl_owner_forget_dead(&c->mem);
    wl_unlock(&c->lock);
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
  int set = 0;
  if (wl_cas_strong(&observer_set, &set, 1)) wl_store_release(&wl_tier_reset_observer, tier_reset_observer);
  walloc_context *c = wl_zalloc(sizeof *c);
  if (c == NULL) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_context_create: no memory for the context");
    return NULL;
  }
  c->magic = CTX_MAGIC;
  wl_store_relaxed(&c->refs, 1);
  wl_lock_init(&c->lock, WL_LEVEL_LIFETIMES);
  wl_owner_init(&c->mem, (unsigned)tier);
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
    wl_lock(&ctx->lock);
    wl_owner_forget_dead(&ctx->mem); /* blocks a reset took are not kept for */
    wl_unlock(&ctx->lock);
    if (ctx->children != NULL || wl_load_relaxed(&ctx->mem.w.used) != 0) {
      wl_report("walloc_context_release: the last reference is gone but the context still owns blocks; "
                "they stay until its parent or its tier is reset", ctx);
    }
    try_destroy(ctx, &doomed);
  }
  wl_unlock(&tree_lock);
  doomed_free(doomed);
}

WL_API walloc_handle walloc_context_allocate(walloc_context *ctx, size_t size) {
  if (ctx_check(ctx, "walloc_context_allocate: not a live context") == NULL) return WALLOC_NULL_HANDLE;
  walloc_status st;
  wl_lock(&ctx->lock);
  walloc_handle h = wl_owner_alloc_fast(&ctx->mem, size);
  if (WL_UNLIKELY(h == WALLOC_NULL_HANDLE)) h = wl_owner_alloc(&ctx->mem, size, NULL, &st);
  wl_unlock(&ctx->lock);
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
