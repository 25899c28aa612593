/* scope.c: per-thread nested scopes with budgets (walloc_scope_*).
 *
 * Owns: each thread's stack of open scopes, its cache of scope records,
 * its chunk caches (one per tier) and its count of scopes entered (kept per
 * thread, so entering stays free of shared writes: wl_scope_stats). A scope is an owner (owner.c): its
 * blocks live in chunks of its own, so leaving one, in any order, releases
 * exactly its blocks and nothing of any other scope or thread.
 * Budgets: an allocation counts against the scope's budget and against the
 * budget of every enclosing scope that has one (each budgeted scope links to
 * the nearest budgeted one around it, so the check walks only those).
 * Misuse is reported and tolerated: leaving an outer scope first leaves the
 * inner ones with it; leaving twice, or from another thread, does nothing.
 * Thread safety: a scope is used by the thread that entered it; others are
 * refused (WALLOC_ERR_INVALID) after one read of its owner field.
 * walloc_scope_used may be read from any thread.
 */
#include "lifetimes.h"

#if defined(__wasm__)
#define SCOPE_OPEN  0x53636f70u /* "Scop" */
#else
#define SCOPE_OPEN  WALLOC_SCOPE_OPEN_ /* walloc.h's inline allocation reads open scopes */
#endif
#define SCOPE_LEFT  0x4c656674u /* "Left" */
#define SCOPE_CACHE 64          /* records a thread keeps for its next scopes */

struct walloc_scope {
  uint32_t state;
  uint32_t depth;
  uintptr_t owner;               /* wl_owner_thread() of the thread that entered it */
  wl_owner_t mem;                /* its window first: walloc.h's walloc_scope_map_ */
  size_t budget;                 /* 0 = none */
  size_t charged;                /* budgeted scopes: own and open inner scopes' bytes */
  walloc_scope *parent;          /* the scope this thread had open at enter */
  walloc_scope *budget_parent;   /* nearest enclosing scope with a budget */
};

#if !defined(__wasm__)
_Static_assert(offsetof(struct walloc_scope, state) == offsetof(walloc_scope_map_, state) &&
                   offsetof(struct walloc_scope, owner) == offsetof(walloc_scope_map_, thread) &&
                   offsetof(struct walloc_scope, mem) + offsetof(wl_owner_t, w) == offsetof(walloc_scope_map_, w),
               "walloc_scope_map_ (walloc.h) must mirror struct walloc_scope: change both and renumber WALLOC_SCOPE_OPEN_");
#endif

typedef struct scope_thread_s {
  walloc_scope *top;
  walloc_scope *cache;           /* left records, linked through parent */
  unsigned cached;
  bool hooked;
  uint64_t entered;              /* statistics: scopes ever entered */
  wl_chunk_cache_t chunks[WL_TIERS];
} scope_thread_t;

static __thread scope_thread_t self __attribute__((tls_model("initial-exec")));

static void leave_one(scope_thread_t *me, walloc_scope *s);

static void thread_exit(void) {
  scope_thread_t *me = &self;
  if (me->top != NULL) wl_warn("a thread exited with scopes open: they are left now", me->top);
  while (me->top != NULL) leave_one(me, me->top);
  for (unsigned i = 0; i < WL_TIERS; i++) wl_chunk_cache_drop(&me->chunks[i], i);
  while (me->cache != NULL) {
    walloc_scope *s = me->cache;
    me->cache = s->parent;
    wl_free(s);
  }
  me->cached = 0;
}

static const wl_heap_hooks_t scope_hooks = {thread_exit, NULL};

static void hooks_add(void) {
  if (!wl_heap_hooks_add(&scope_hooks)) wl_error("scope: no room for the thread-exit hook", NULL);
}
WL_ONCE_STATIC(hooks_added, WL_LEVEL_HEAP);

static void hooks_once(scope_thread_t *me) {
  me->hooked = true;
  wl_once(&hooks_added, hooks_add);
  wl_heap_get_or_init(); /* this thread's exit runs the hooks */
}

WL_API walloc_scope *walloc_scope_enter(walloc_tier tier, size_t budget) {
  if ((unsigned)tier >= WL_TIERS) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_scope_enter: scopes live in the render, scene or entity tier");
    return NULL;
  }
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) {
    wl_fail(st, "walloc_scope_enter: the tiers could not be set up");
    return NULL;
  }
  scope_thread_t *me = &self;
  if (WL_UNLIKELY(!me->hooked)) hooks_once(me);
  walloc_scope *s = me->cache;
  if (s != NULL) {
    me->cache = s->parent;
    me->cached--;
  } else if ((s = wl_malloc(sizeof *s)) == NULL) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_scope_enter: no memory for the scope record");
    return NULL;
  }
  walloc_scope *parent = me->top;
  s->state = SCOPE_OPEN;
  s->owner = wl_owner_thread();
  s->budget = budget;
  s->charged = 0;
  s->parent = parent;
  s->budget_parent = parent == NULL ? NULL : parent->budget != 0 ? parent : parent->budget_parent;
  s->depth = parent == NULL ? 1 : parent->depth + 1;
  wl_owner_init(&s->mem, (unsigned)tier);
  /* walloc.h's inline path serves scopes with no budget to count against */
  s->mem.w.fast_max = budget == 0 && s->budget_parent == NULL ? s->mem.small_max : 0;
  me->top = s;
  me->entered++;
  return s;
}

/* The scope, if the calling thread may use it; else NULL with the status set. */
static walloc_scope *scope_check(walloc_scope *s, const char *what) {
  if (s == NULL) {
    wl_fail(WALLOC_ERR_INVALID, what);
    return NULL;
  }
  if (s->state != SCOPE_OPEN) {
    wl_fail(WALLOC_ERR_STALE, what);
    return NULL;
  }
  if (s->owner != wl_owner_thread()) {
    wl_fail(WALLOC_ERR_INVALID, what);
    return NULL;
  }
  return s;
}

WL_API walloc_handle(walloc_scope_allocate)(walloc_scope *scope, size_t size) {
  walloc_scope *s = scope_check(scope, "walloc_scope_allocate: not an open scope of this thread");
  if (s == NULL) return WALLOC_NULL_HANDLE;
  walloc_scope *first = s->budget != 0 ? s : s->budget_parent;
  if (WL_LIKELY(first == NULL)) { /* no budget to count against */
    walloc_handle h = wl_owner_alloc_fast(&s->mem, size);
    if (WL_LIKELY(h != WALLOC_NULL_HANDLE)) return h;
  }
  size_t bs = wl_owner_block_size(s->mem.tier, size);
  for (walloc_scope *b = first; b != NULL; b = b->budget_parent) {
    if (size > b->budget || b->charged + bs > b->budget) {
      wl_fail(WALLOC_ERR_BUDGET, NULL); /* a budget saying no is an answer, not a misuse */
      return WALLOC_NULL_HANDLE;
    }
  }
  walloc_status st;
  walloc_handle h = wl_owner_alloc(&s->mem, size, &self.chunks[s->mem.tier], &st);
  if (h == WALLOC_NULL_HANDLE) {
    wl_fail(st, NULL);
    return h;
  }
  for (walloc_scope *b = first; b != NULL; b = b->budget_parent) b->charged += bs;
  return h;
}

WL_API size_t walloc_scope_used(const walloc_scope *scope) {
  if (scope == NULL || scope->state != SCOPE_OPEN) return 0;
  return (size_t)wl_load_relaxed(&((walloc_scope *)scope)->mem.w.used);
}

static void leave_one(scope_thread_t *me, walloc_scope *s) {
  size_t own = (size_t)wl_load_relaxed(&s->mem.w.used);
  for (walloc_scope *b = s->budget_parent; b != NULL; b = b->budget_parent) {
    b->charged = b->charged > own ? b->charged - own : 0;
  }
  wl_owner_release(&s->mem, &me->chunks[s->mem.tier]);
  if (s->parent == NULL) wl_chunk_cache_cycle(&me->chunks[s->mem.tier], s->mem.tier);
  me->top = s->parent;
  s->state = SCOPE_LEFT;
  if (me->cached < SCOPE_CACHE) {
    s->parent = me->cache;
    me->cache = s;
    me->cached++;
  } else {
    wl_free(s);
  }
}

WL_API void walloc_scope_leave(walloc_scope *scope) {
  if (scope == NULL) return;
  if (scope->state != SCOPE_OPEN) {
    wl_warn("walloc_scope_leave: the scope was already left", scope);
    return;
  }
  if (scope->owner != wl_owner_thread()) {
    wl_warn("walloc_scope_leave: the scope belongs to another thread (ignored)", scope);
    return;
  }
  scope_thread_t *me = &self;
  if (me->top != scope) {
    wl_warn("walloc_scope_leave: scopes left out of order; the inner ones are left with it", scope);
    while (me->top != NULL && me->top != scope) leave_one(me, me->top);
  }
  leave_one(me, scope);
}

void wl_scope_stats(wl_scope_stats_t *out) {
  const scope_thread_t *me = &self;
  out->entered = me->entered;
  out->open = me->top != NULL ? me->top->depth : 0;
  out->used_bytes = 0;
  for (walloc_scope *s = me->top; s != NULL; s = s->parent) out->used_bytes += wl_load_relaxed(&s->mem.w.used);
}
