/* pool.c: fixed-size object pools (walloc_pool_create/alloc/free/destroy).
 *
 * Owns: the pools (structs from the internal heap), their slabs and the slab
 * map's leaves (mapped through the core's OS door, so they count in
 * mapped_bytes), the registry of pool
 * indices, the slab map, the magazines (internal heap) and each thread's
 * pool caches (TLS).
 *
 *   slab (64 KiB .. 1 MiB, 64 KiB aligned):
 *   | header | object | object | ... | object |      carved in address order
 *
 * Magazines. A magazine is an array of up to M free objects (M: about
 * 16 KiB of objects, 2 .. 256), from the internal heap, never inside a
 * slab. Each pool has an index in the registry, and each registry slot a
 * generation, bumped when its pool is destroyed. A thread keeps an array of
 * caches indexed by pool index: the loaded magazine (its array and count
 * kept in the cache, the count fused with the generation in one word), the
 * previous magazine (full or empty) and a hint. Allocation pops from
 * the loaded magazine and freeing pushes on it: no atomic, no lock, one
 * compare for the generation and the count together. When the loaded one
 * is empty (alloc) or full (free) and the previous one is the other way,
 * they swap; otherwise whole magazines go to or come from the depot, O(1):
 *
 *   depot: WL_POOL_HOMES shards, each a cache line with its own lock and a
 *   list of full and a list of empty magazines. Each thread has a home
 *   shard: it puts there and takes from there first, so its own objects
 *   come back to it warm and the shard's line stays with it. A new thread
 *   gets a home with the fewest live threads, so two live threads share a
 *   shard only when more than WL_POOL_HOMES live. When its shard has no
 *   full (empty) magazine it takes one from any other shard whose
 *   count says it has one (nothing is stranded: a producer gets back what a
 *   consumer freed), else carves (makes) one. A thread that has been living
 *   on its own objects and runs short by a little makes a new magazine
 *   rather than take another thread's (which would then be short and take
 *   one back every round, each time moving the shard's line and the
 *   magazine's between the cores, and hot objects with a full one): it
 *   carves a full one to allocate from, or gets an empty one from the heap
 *   to free into; at most half its own working set plus two magazines, over
 *   its life. Shards keep at most as many empty magazines as all carved
 *   objects would fill, plus 4.
 *   Each shard counts the magazines threads of other homes took from it
 *   (under its lock, in its line): walloc_pool_stats_get adds them up.
 *
 * Carving fills a whole magazine from the newest slab under the pool's
 * lock (a fresh slab when it is used up: a magazine never maps more than
 * one slab), then tags the carved objects as free outside the lock. Single
 * objects (uncached pools, no memory for a magazine) go to a loose list
 * under the pool's lock, drained into magazines first when carving.
 *
 * A thread's cache whose generation is not its pool's belongs to a
 * destroyed pool: its magazines are freed without reading their objects.
 * At thread exit the caches' magazines go to their pools' depots (under the
 * registry lock, only into live pools of the same generation).
 *
 * Checks on free, all O(1). The full way: the slab map (two levels, one
 * entry per 64 KiB of address space, written when slabs come and go) names
 * the slab holding the pointer, which must belong to this pool; the offset
 * must be below what was carved and a whole number of objects (the
 * product with the inverse of the odd part of the size, rotated right by
 * its power of two, at most UINT64_MAX / size). The fast way does the same
 * against the hint (the carved range of the slab of this thread's last free,
 * found through the slab map when it became the hint, trusted only once
 * the generation matched: then it lies in a live slab of this pool; objects
 * carved since miss it) and falls
 * back to the full way on any miss. A free object carries a tag word (its
 * second word: the pool's key, from a per-process secret, xor its address),
 * carved objects too; freeing an object that carries it is a double free.
 * Refused frees are reported (wl_warn) and change nothing.
 *
 * Sizes: objects are at least 16 bytes and 8-byte aligned (a free object
 * holds a link and the tag), rounded up to the alignment asked for (0 means
 * 16); a non-power-of-two alignment or size 0 fail with WALLOC_ERR_INVALID,
 * sizes or alignments above 1 TiB with WALLOC_ERR_NOMEM. Slabs start at
 * 64 KiB and double up to 1 MiB (or hold one object, for big ones).
 *
 * Memory pressure (lib/heap/pressure.c): when the OS refuses memory, or
 * walloc_collect(true) or malloc_trim runs, the depots' empty magazines go
 * back to the heap (the give-back callback, with try-locks only: the
 * refused caller may hold the registry's lock or a shard's); a refused slab
 * (or slab-map leaf) is mapped once more after that give-back. Slabs stay
 * until their pool is destroyed, as do full magazines (their objects are
 * the pool's) and the magazines in threads' caches (thread-local).
 *
 * Thread safety: caches and their magazines are the thread's own; a depot
 * shard's lists behind its lock; the loose list, slabs and carving behind
 * the pool's lock; no two of these are held at once. The registry
 * (indices, generations, the flush at thread exit, the live threads per
 * home) is behind registry_lock, taken before any pool or shard lock. All
 * are registered locks (platform.h: fork takes them all, so a child finds
 * every list whole); a pool's locks are registered when it is made and
 * leave when it is destroyed.
 * walloc_pool_destroy must not race with use of the same pool (as free
 * must not race with use of the block); it may race with thread exits,
 * which flush caches under the registry lock only into live pools.
 */
#include "lifetimes.h"

#include <string.h>

#define WL_POOL_MIN_OBJECT  ((size_t)16)
#define WL_POOL_MAX_OBJECT  ((size_t)1 << (SIZE_MAX > 0xFFFFFFFFu ? 40 : 30))
#define WL_POOL_REGION_SHIFT 16                               /* slab map granule: 64 KiB */
#define WL_POOL_REGION      ((size_t)1 << WL_POOL_REGION_SHIFT)
#define WL_POOL_LEAF_SHIFT  14                                /* 16384 entries: 1 GiB per leaf */
#define WL_POOL_LEAF        ((size_t)1 << WL_POOL_LEAF_SHIFT)
#define WL_POOL_TOP         ((size_t)1 << (WL_ADDRESS_BITS - WL_POOL_REGION_SHIFT - WL_POOL_LEAF_SHIFT))
#define WL_POOL_SLAB_MAX    ((size_t)1 << 20)
#define WL_POOL_HEADER      ((size_t)64)
#define WL_POOL_NO_INDEX    UINT32_MAX
#define WL_POOL_MAX_INDEX   ((uint32_t)1 << 20)
#define WL_POOL_MAG_BYTES   ((size_t)16 << 10)                    /* objects' bytes a magazine aims at */
#define WL_POOL_MAG_MAX     ((uint32_t)256)
#define WL_POOL_MAG_MIN     ((uint32_t)2)
#define WL_POOL_EMPTY_KEEP  ((size_t)4)                       /* empty magazines a shard keeps beyond need */
#define WL_POOL_HOMES       8                                  /* depot shards; threads spread over them */
#define WL_POOL_SLACK       2u                                 /* magazines a thread may carve instead of stealing */
#define WL_POOL_OWN_HITS    4u                                 /* own-shard takes that make it self-sufficient */

typedef struct wl_pool_obj_s {
  struct wl_pool_obj_s *next; /* on the loose list only */
  uintptr_t tag;              /* key ^ address while free */
} wl_pool_obj_t;

/* A magazine: up to pool->mag_size free objects, as an array (objects are
   never read to move them). From the internal heap, not from the slabs, so
   it outlives its pool's objects. */
typedef struct wl_pool_mag_s {
  struct wl_pool_mag_s *next; /* in the pool's full or empty list */
  uint32_t count;             /* objects in it (while loaded, the cache's count is the live one) */
  uint32_t cap;               /* its pool's mag_size when made */
  wl_pool_obj_t *objs[];
} wl_pool_mag_t;

typedef struct wl_pool_slab_s {
  walloc_pool *pool;
  struct wl_pool_slab_s *next;
  size_t size;               /* bytes mapped */
  uintptr_t data;            /* first object */
  uintptr_t data_end;        /* end of the last whole object */
  _Atomic(uintptr_t) carved; /* bytes from data put in a magazine (tagged free) or handed out */
} wl_pool_slab_t;
_Static_assert(sizeof(wl_pool_slab_t) <= WL_POOL_HEADER, "slab header fits");


/* A depot shard: whole magazines, under its lock. The counts are also read
   without the lock, as hints, to skip empty shards. */
typedef struct wl_pool_shard_s {
  wl_lock_t lock;
  _Atomic(uint32_t) full_count, empty_count;
  wl_pool_mag_t *full;       /* magazines with objects (full, or partial from exiting threads) */
  wl_pool_mag_t *empty;      /* empty magazines */
  _Atomic(uint64_t) taken;   /* magazines taken by threads of other homes (walloc_pool_stats_get) */
} __attribute__((aligned(2 * WL_CACHE_LINE))) wl_pool_shard_t; /* the adjacent-line prefetcher pairs lines */

struct walloc_pool {
  /* read-only after creation: the fast paths read these */
  uint32_t index, gen;
  uint64_t gen_high;         /* gen << 32, as in a cache's gen_count */
  size_t object_size, align;
  uintptr_t key;
  uint64_t inv;              /* inverse of the odd part of object_size, mod 2^64 */
  uint64_t inv_limit;        /* UINT64_MAX / object_size */
  unsigned shift;            /* object_size = odd part << shift */
  uint32_t mag_size;         /* objects a magazine holds */
  /* the depot, one shard (a cache line, its own lock) per home */
  wl_pool_shard_t shards[WL_POOL_HOMES];
  /* under the lock: carving and loose objects */
  wl_lock_t lock __attribute__((aligned(WL_CACHE_LINE)));
  _Atomic(size_t) carved_objects; /* written under the lock, read by the shards' bound on empties */
  wl_pool_obj_t *loose;      /* single objects: uncached frees, or no memory for a magazine */
  uintptr_t bump, bump_end;  /* carving in the newest slab */
  wl_pool_slab_t *slabs;
  size_t next_slab;          /* bytes of the next slab */
  size_t slab_count;
};

/* A thread's cache for one pool: the loaded magazine (its object array and
   count kept here, one load away) and the previous one (full or empty). */
typedef struct wl_pool_cache_s {
  wl_pool_obj_t **objs;      /* the loaded magazine's objs, or NULL */
  uint64_t gen_count;        /* generation << 32 | objects in the loaded magazine; generation 0 = none */
  uint16_t limit;            /* the loaded magazine's capacity, 0 when none is loaded */
  uint16_t own_hits;         /* full magazines from the home shard since the last steal (saturates) */
  uint16_t own_peak;         /* the most own_hits seen: the thread's own working set, in magazines */
  uint16_t slack;            /* magazines made (carved full, or empty) instead of taken from another thread */
  wl_pool_mag_t *previous;   /* NULL or a full or empty magazine */
  uintptr_t hint_data;       /* the hint: [hint_data, hint_data + hint_carved) was carved in a slab */
  uint64_t hint_carved;      /* of this pool (checked through the slab map when it was taken; 0 = none);
                                trusted only when the generation matches */
} wl_pool_cache_t;

typedef struct wl_pool_thread_s {
  wl_pool_cache_t *caches;   /* indexed by pool index, from the internal heap */
  uint32_t cap;
  uint32_t home;             /* the depot lists it puts to and takes from first */
  bool registered;
} wl_pool_thread_t;

static __thread wl_pool_thread_t wl_pool_self __attribute__((tls_model("initial-exec")));

typedef struct wl_pool_slot_s {
  walloc_pool *pool;         /* NULL when free */
  uint32_t gen;
  uint32_t next_free;        /* free list of slots: index + 1, 0 ends */
} wl_pool_slot_t;

WL_LOCK_STATIC(registry_lock, WL_LEVEL_LIFETIMES_TOP);
static wl_pool_slot_t *slots;
static uint32_t slots_cap, slots_top, slots_free;
static uintptr_t pool_secret;
static uint32_t homes_given;                   /* under registry_lock, as are: */
static uint32_t home_threads[WL_POOL_HOMES];   /* live threads per home (a hint: a forked child keeps its parent's) */

typedef _Atomic(wl_pool_slab_t *) wl_slab_entry_t;
static _Atomic(wl_slab_entry_t *) slab_map[WL_POOL_TOP];

/* ------------------------------------------------------------------------
   The slab map: 64 KiB granule -> slab
   ------------------------------------------------------------------------ */
WL_INLINE wl_pool_slab_t *slab_lookup(uintptr_t p) {
  uintptr_t idx = p >> WL_POOL_REGION_SHIFT;
  uintptr_t top = idx >> WL_POOL_LEAF_SHIFT;
  if (WL_UNLIKELY(top >= WL_POOL_TOP)) return NULL;
  wl_slab_entry_t *leaf = wl_load_acquire(&slab_map[top]);
  if (WL_UNLIKELY(leaf == NULL)) return NULL;
  return wl_load_acquire(&leaf[idx & (WL_POOL_LEAF - 1)]);
}

static bool slab_map_set(uintptr_t base, size_t size, wl_pool_slab_t *value) {
  for (uintptr_t a = base; a < base + size; a += WL_POOL_REGION) {
    uintptr_t idx = a >> WL_POOL_REGION_SHIFT;
    uintptr_t top = idx >> WL_POOL_LEAF_SHIFT;
    if (top >= WL_POOL_TOP) return false;
    wl_slab_entry_t *leaf = wl_load_acquire(&slab_map[top]);
    if (leaf == NULL) {
      if (value == NULL) continue;
      size_t bytes = WL_POOL_LEAF * sizeof(wl_slab_entry_t);
      bool zero = false;
      wl_slab_entry_t *fresh = wl_give_back_map(WL_MEM_POOLS, bytes, wl_os.page_size, &zero);
      if (fresh == NULL) return false;
      if (!zero) memset(fresh, 0, bytes); /* wasm reuses released ranges */
      if (wl_cas_strong(&slab_map[top], &leaf, fresh)) leaf = fresh;
      else wl_osmem_unmap(WL_MEM_POOLS, fresh, bytes); /* leaf now holds the winner's */
    }
    wl_store_release(&leaf[idx & (WL_POOL_LEAF - 1)], value);
  }
  return true;
}

/* ------------------------------------------------------------------------
   Slabs (under the pool's lock, or at destroy)
   ------------------------------------------------------------------------ */
static size_t data_offset(const walloc_pool *pool) { return wl_align_up(WL_POOL_HEADER, pool->align); }

static void slab_release(wl_pool_slab_t *slab) {
  uintptr_t base = (uintptr_t)slab;
  size_t size = slab->size;
  slab_map_set(base, size, NULL);
  wl_osmem_unmap(WL_MEM_POOLS, slab, size);
}

static bool slab_new(walloc_pool *pool) {
  size_t size = pool->next_slab;
  size_t align = wl_max(WL_POOL_REGION, pool->align);
  wl_pool_slab_t *slab = wl_give_back_map(WL_MEM_POOLS, size, align, NULL);
  if (slab == NULL) return false;
  slab->pool = pool;
  slab->size = size;
  slab->data = (uintptr_t)slab + data_offset(pool);
  size_t count = (size - data_offset(pool)) / pool->object_size;
  slab->data_end = slab->data + count * pool->object_size;
  wl_store_relaxed(&slab->carved, 0);
  if (!slab_map_set((uintptr_t)slab, size, slab)) {
    slab_map_set((uintptr_t)slab, size, NULL);
    wl_osmem_unmap(WL_MEM_POOLS, slab, size);
    return false;
  }
  slab->next = pool->slabs;
  pool->slabs = slab;
  pool->slab_count++;
  pool->bump = slab->data;
  pool->bump_end = slab->data_end;
  if (pool->next_slab < WL_POOL_SLAB_MAX) pool->next_slab *= 2;
  return true;
}

/* Carving: up to `want` objects from the newest slab only (a fresh one if it
   is used up), so a magazine never maps more than one slab. objs[want - 1]
   gets the lowest address (popped first). Returns how many; *first is the
   lowest one. The caller tags them (outside the lock). Under the lock. */
static uint32_t pool_carve(walloc_pool *pool, wl_pool_obj_t **objs, uint32_t want, uintptr_t *first) {
  if (pool->bump >= pool->bump_end && !slab_new(pool)) return 0;
  size_t room = (pool->bump_end - pool->bump) / pool->object_size;
  uint32_t n = room < want ? (uint32_t)room : want;
  uintptr_t p = pool->bump;
  *first = p;
  for (uint32_t i = 0; i < n; i++, p += pool->object_size) objs[n - 1 - i] = (wl_pool_obj_t *)p;
  pool->bump = p;
  wl_store_relaxed(&pool->slabs->carved, p - pool->slabs->data);
  wl_store_relaxed(&pool->carved_objects, wl_load_relaxed(&pool->carved_objects) + n);
  return n;
}

/* Tags carved objects as free: freeing one before it is handed out is a
   double free. Outside the lock: nobody else can see them yet. */
static void pool_tag_carved(const walloc_pool *pool, uintptr_t first, uint32_t n) {
  for (uint32_t i = 0; i < n; i++, first += pool->object_size) {
    ((wl_pool_obj_t *)first)->tag = pool->key ^ first;
  }
}

/* The depot: full and empty magazines in WL_POOL_HOMES shards. A thread
   puts to its home shard and takes from it first (its own objects come
   back to it, warm in its cache, and the shard's lock and line stay with
   it), else from any shard whose count says it has one (nothing is
   stranded). Each step O(1) under one shard's lock; no two depot locks are
   held at once, nor a shard lock with the pool lock. */
static void shard_put_full(wl_pool_shard_t *s, wl_pool_mag_t *m) {
  m->next = s->full;
  s->full = m;
  wl_store_relaxed(&s->full_count, wl_load_relaxed(&s->full_count) + 1);
}

static wl_pool_mag_t *shard_get_full(wl_pool_shard_t *s) {
  wl_pool_mag_t *m = s->full;
  if (m != NULL) {
    s->full = m->next;
    wl_store_relaxed(&s->full_count, wl_load_relaxed(&s->full_count) - 1);
  }
  return m;
}

/* An empty magazine into the shard, or back to the caller to free when the
   shard holds as many as could ever be filled (all carved objects) and a
   few more. */
static wl_pool_mag_t *shard_put_empty(const walloc_pool *pool, wl_pool_shard_t *s, wl_pool_mag_t *m) {
  size_t keep = wl_load_relaxed(&pool->carved_objects) / pool->mag_size + WL_POOL_EMPTY_KEEP;
  if (wl_load_relaxed(&s->empty_count) >= keep || m->cap != pool->mag_size) return m;
  m->count = 0;
  m->next = s->empty;
  s->empty = m;
  wl_store_relaxed(&s->empty_count, wl_load_relaxed(&s->empty_count) + 1);
  return NULL;
}

static wl_pool_mag_t *shard_get_empty(wl_pool_shard_t *s) {
  wl_pool_mag_t *m = s->empty;
  if (m != NULL) {
    s->empty = m->next;
    wl_store_relaxed(&s->empty_count, wl_load_relaxed(&s->empty_count) - 1);
  }
  return m;
}

/* A full (or, with full false, an empty) magazine from a shard other than
   home (home's was tried). */
static wl_pool_mag_t *depot_steal(walloc_pool *pool, uint32_t home, bool full) {
  for (uint32_t k = 1; k < WL_POOL_HOMES; k++) {
    wl_pool_shard_t *s = &pool->shards[(home + k) % WL_POOL_HOMES];
    if (wl_load_relaxed(full ? &s->full_count : &s->empty_count) == 0) continue;
    wl_lock(&s->lock);
    wl_pool_mag_t *m = full ? shard_get_full(s) : shard_get_empty(s);
    if (m != NULL) wl_store_relaxed(&s->taken, wl_load_relaxed(&s->taken) + 1);
    wl_unlock(&s->lock);
    if (m != NULL) return m;
  }
  return NULL;
}

/* Magazines into the home shard; those it does not keep are freed. */
static void depot_give(walloc_pool *pool, uint32_t home, wl_pool_mag_t **mags, int n) {
  wl_pool_shard_t *s = &pool->shards[home];
  wl_lock(&s->lock);
  for (int k = 0; k < n; k++) {
    if (mags[k] == NULL) continue;
    if (mags[k]->count != 0) {
      shard_put_full(s, mags[k]);
      mags[k] = NULL;
    } else {
      mags[k] = shard_put_empty(pool, s, mags[k]);
    }
  }
  wl_unlock(&s->lock);
  for (int k = 0; k < n; k++) wl_free(mags[k]); /* wl_free(NULL) does nothing */
}

/* One object for an uncached caller: the top of a depot magazine, a loose
   one, or carved. Returns NULL without memory. */
static wl_pool_obj_t *depot_take_one(walloc_pool *pool) {
  wl_pool_mag_t *m = depot_steal(pool, WL_POOL_HOMES - 1, true); /* tries shards 0 .. HOMES-2 */
  if (m == NULL) {
    wl_pool_shard_t *s = &pool->shards[WL_POOL_HOMES - 1];
    wl_lock(&s->lock);
    m = shard_get_full(s);
    wl_unlock(&s->lock);
  }
  if (m != NULL) {
    wl_pool_obj_t *o = m->objs[--m->count];
    depot_give(pool, 0, &m, 1);
    return o;
  }
  wl_lock(&pool->lock);
  wl_pool_obj_t *o = pool->loose;
  uintptr_t first;
  if (o != NULL) pool->loose = o->next;
  else if (pool_carve(pool, &o, 1, &first) != 1) o = NULL;
  wl_unlock(&pool->lock);
  return o;
}

static void pool_put_loose(walloc_pool *pool, wl_pool_obj_t *o) {
  wl_lock(&pool->lock);
  o->next = pool->loose;
  pool->loose = o;
  wl_unlock(&pool->lock);
}

/* Fills an empty magazine: loose objects first, else carved ones (tagged
   here, outside the lock). Returns the count. */
static uint32_t mag_fill(walloc_pool *pool, wl_pool_mag_t *m) {
  uint32_t n = 0, carved = 0;
  uintptr_t first = 0;
  wl_lock(&pool->lock);
  while (n < m->cap && pool->loose != NULL) {
    wl_pool_obj_t *o = pool->loose;
    pool->loose = o->next;
    m->objs[n++] = o;
  }
  if (n == 0) n = carved = pool_carve(pool, m->objs, m->cap, &first);
  wl_unlock(&pool->lock);
  pool_tag_carved(pool, first, carved);
  m->count = n;
  return n;
}

static wl_pool_mag_t *mag_new(const walloc_pool *pool) {
  wl_pool_mag_t *m = wl_malloc(sizeof *m + (size_t)pool->mag_size * sizeof(wl_pool_obj_t *));
  if (m != NULL) {
    m->next = NULL;
    m->count = 0;
    m->cap = pool->mag_size;
  }
  return m;
}

WL_INLINE wl_pool_mag_t *mag_of(wl_pool_obj_t **objs) {
  return (wl_pool_mag_t *)((char *)objs - offsetof(wl_pool_mag_t, objs));
}

WL_INLINE uint32_t cache_gen(const wl_pool_cache_t *c) { return (uint32_t)(c->gen_count >> 32); }
WL_INLINE uint32_t cache_count(const wl_pool_cache_t *c) { return (uint32_t)c->gen_count; }

/* The cache's loaded magazine (its count written back), or NULL. */
static wl_pool_mag_t *cache_loaded(wl_pool_cache_t *c) {
  if (c->objs == NULL) return NULL;
  wl_pool_mag_t *m = mag_of(c->objs);
  m->count = cache_count(c);
  return m;
}

static void cache_load(wl_pool_cache_t *c, wl_pool_mag_t *m) {
  uint64_t gen = c->gen_count & ~(uint64_t)UINT32_MAX;
  if (m == NULL) {
    c->objs = NULL;
    c->gen_count = gen;
    c->limit = 0;
  } else {
    c->objs = m->objs;
    c->gen_count = gen | m->count;
    c->limit = (uint16_t)m->cap;
  }
}

/* Whether a thread whose home shard lacks the magazine it needs (a full one
   to allocate, an empty one to free) makes a new one rather than take
   another thread's: yes when it lives on its own magazines (WL_POOL_OWN_HITS
   full ones in a row from home) and has made fewer than WL_POOL_SLACK plus
   half its longest such run, over its life. Taking would leave the other
   thread short by one next, and it would take one back: a magazine (and,
   when full, its hot objects) crossing between the two every round. */
static bool cache_makes_own(wl_pool_cache_t *c) {
  if (c->own_hits < WL_POOL_OWN_HITS || c->slack >= WL_POOL_SLACK + c->own_peak / 2) return false;
  c->slack++;
  return true;
}

/* Forgets a cache's magazines without reading their objects. */
static void cache_drop(wl_pool_cache_t *c) {
  if (c->objs != NULL) wl_free(mag_of(c->objs));
  if (c->previous != NULL) wl_free(c->previous);
  *c = (wl_pool_cache_t){0};
}

/* ------------------------------------------------------------------------
   Threads: caches, and their flush at exit
   ------------------------------------------------------------------------ */
/* A new thread's home: one with the fewest live threads, the first such
   after the last home given (threads made one after another go round the
   shards). So two live threads share a shard only when more than
   WL_POOL_HOMES live; counting only homes given would put a thread on a
   live thread's shard after WL_POOL_HOMES others came and went. */
static uint32_t home_take(void) {
  wl_lock(&registry_lock);
  uint32_t start = homes_given++, best = start % WL_POOL_HOMES;
  for (uint32_t k = 1; k < WL_POOL_HOMES; k++) {
    uint32_t h = (start + k) % WL_POOL_HOMES;
    if (home_threads[h] < home_threads[best]) best = h;
  }
  home_threads[best]++;
  wl_unlock(&registry_lock);
  return best;
}

static void pool_thread_exit(void) {
  wl_pool_thread_t *t = &wl_pool_self;
  if (!t->registered) return;
  wl_lock(&registry_lock);
  if (home_threads[t->home] != 0) home_threads[t->home]--;
  for (uint32_t i = 0; i < t->cap; i++) {
    wl_pool_cache_t *c = &t->caches[i];
    walloc_pool *pool = i < slots_top ? slots[i].pool : NULL;
    if (pool != NULL && slots[i].gen == cache_gen(c)) { /* live: its magazines go to the depot */
      wl_pool_mag_t *mags[2] = {cache_loaded(c), c->previous};
      depot_give(pool, t->home, mags, 2);
      *c = (wl_pool_cache_t){0};
    } else { /* empty, or its pool was destroyed: never read its objects */
      cache_drop(c);
    }
  }
  wl_unlock(&registry_lock);
  wl_free(t->caches);
  memset(t, 0, sizeof *t);
}

static const wl_heap_hooks_t pool_hooks = {pool_thread_exit, NULL};

/* Memory pressure: the depots' empty magazines of every live pool, freed.
   Only try-locks: the caller whose memory was refused may hold the
   registry's lock (walloc_pool_create grows it) or a shard's; what is busy
   is skipped. */
static void pool_give_back(void) {
  if (!wl_lock_try(&registry_lock)) return;
  wl_pool_mag_t *drop = NULL;
  for (uint32_t i = 0; i < slots_top; i++) {
    walloc_pool *pool = slots[i].pool;
    for (int h = 0; pool != NULL && h < WL_POOL_HOMES; h++) {
      wl_pool_shard_t *s = &pool->shards[h];
      if (wl_load_relaxed(&s->empty_count) == 0 || !wl_lock_try(&s->lock)) continue;
      for (wl_pool_mag_t *m; (m = shard_get_empty(s)) != NULL;) {
        m->next = drop;
        drop = m;
      }
      wl_unlock(&s->lock);
    }
  }
  wl_unlock(&registry_lock);
  for (wl_pool_mag_t *next; drop != NULL; drop = next) {
    next = drop->next;
    wl_free(drop);
  }
}

static void hooks_add(void) {
  if (!wl_heap_hooks_add(&pool_hooks)) wl_error("pool: no room for the thread-exit hook", NULL);
  if (!wl_give_back_add(pool_give_back)) wl_error("pool: no room for the give-back callback", NULL);
}
WL_ONCE_STATIC(hooks_added, WL_LEVEL_HEAP);
static void hooks_once(void) { wl_once(&hooks_added, hooks_add); }

/* The calling thread's cache for pool, reset if it belongs to a destroyed
   pool; NULL if the pool has no index or memory for the cache array lacks. */
static wl_pool_cache_t *cache_get(walloc_pool *pool) {
  wl_pool_thread_t *t = &wl_pool_self;
  uint32_t i = pool->index;
  if (i == WL_POOL_NO_INDEX) return NULL;
  if (i >= t->cap) {
    if (!t->registered) {
      if (wl_heap_get_or_init() == NULL) return NULL; /* its thread-exit hook flushes the caches */
      hooks_once();
      t->home = home_take();
      t->registered = true;
    }
    uint32_t cap = t->cap < 16 ? 16 : t->cap;
    while (cap <= i) cap *= 2;
    wl_pool_cache_t *fresh = wl_malloc((size_t)cap * sizeof *fresh);
    if (fresh == NULL) return NULL;
    if (t->caches != NULL) memcpy(fresh, t->caches, (size_t)t->cap * sizeof *fresh);
    memset(fresh + t->cap, 0, (size_t)(cap - t->cap) * sizeof *fresh);
    wl_free(t->caches);
    t->caches = fresh;
    t->cap = cap;
  }
  wl_pool_cache_t *c = &t->caches[i];
  if (cache_gen(c) != pool->gen) { /* a destroyed pool's magazines: forget them, never read their objects */
    cache_drop(c);
    c->gen_count = pool->gen_high;
  }
  return c;
}

/* ------------------------------------------------------------------------
   The API
   ------------------------------------------------------------------------ */
static uint64_t odd_inverse(uint64_t m) {
  uint64_t x = m; /* Newton: each step doubles the correct low bits (3 to start) */
  for (int i = 0; i < 5; i++) x *= 2 - m * x;
  return x;
}

WL_API walloc_pool *walloc_pool_create(size_t object_size, size_t align) {
  if (align == 0) align = 16;
  if (!wl_is_pow2(align)) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_pool_create: alignment is not a power of two");
    return NULL;
  }
  if (object_size == 0) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_pool_create: object size 0");
    return NULL;
  }
  if (object_size > WL_POOL_MAX_OBJECT || align > WL_POOL_MAX_OBJECT) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_pool_create: object size or alignment too large");
    return NULL;
  }
  wl_process_init();
  align = wl_max(align, sizeof(void *)); /* free objects hold a link and a tag */
  size_t size = wl_align_up(wl_max(object_size, WL_POOL_MIN_OBJECT), align);
  walloc_pool *pool = wl_aligned(_Alignof(walloc_pool), sizeof *pool, true);
  if (pool == NULL) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_pool_create: no memory for the pool");
    return NULL;
  }
  wl_lock_init(&pool->lock, WL_LEVEL_LIFETIMES);
  for (int h = 0; h < WL_POOL_HOMES; h++) wl_lock_init(&pool->shards[h].lock, WL_LEVEL_LIFETIMES);
  pool->object_size = size;
  pool->align = align;
  pool->shift = (unsigned)wl_ctz64(size);
  pool->inv = odd_inverse(size >> pool->shift);
  pool->inv_limit = UINT64_MAX / size;
  pool->mag_size = (uint32_t)wl_max(WL_POOL_MAG_MIN, wl_min(WL_POOL_MAG_MAX, WL_POOL_MAG_BYTES / size));
  size_t first = wl_align_up(data_offset(pool) + (size <= 4096 ? 4096 : 8 * size), WL_POOL_REGION);
  if (size > WL_POOL_SLAB_MAX) first = wl_align_up(data_offset(pool) + size, WL_POOL_REGION);
  pool->next_slab = first;

  wl_lock(&registry_lock);
  if (pool_secret == 0) {
    uintptr_t s = (uintptr_t)wl_os_clock_ms() * 0x9E3779B97F4A7C15ull ^ (uintptr_t)&pool_secret ^
                  (uintptr_t)pool ^ wl_os_thread_id() * 0xC2B2AE3D27D4EB4Full;
    s ^= s >> 29;
    pool_secret = s | 1;
  }
  uint32_t index = WL_POOL_NO_INDEX;
  if (slots_free != 0) {
    index = slots_free - 1;
    slots_free = slots[index].next_free;
  } else if (slots_top < WL_POOL_MAX_INDEX) {
    if (slots_top == slots_cap) {
      uint32_t cap = slots_cap == 0 ? 64 : slots_cap * 2;
      wl_pool_slot_t *fresh = wl_malloc((size_t)cap * sizeof *fresh);
      if (fresh != NULL) {
        if (slots != NULL) memcpy(fresh, slots, (size_t)slots_cap * sizeof *fresh);
        memset(fresh + slots_cap, 0, (size_t)(cap - slots_cap) * sizeof *fresh);
        wl_free(slots);
        slots = fresh;
        slots_cap = cap;
      }
    }
    if (slots_top < slots_cap) {
      index = slots_top++;
      slots[index].gen = 1;
    }
  }
  pool->index = index;
  if (index != WL_POOL_NO_INDEX) { /* without an index the pool works, uncached */
    slots[index].pool = pool;
    slots[index].next_free = 0;
    pool->gen = slots[index].gen;
  } else {
    pool->gen = 1;
  }
  pool->gen_high = (uint64_t)pool->gen << 32;
  uintptr_t k = pool_secret ^ ((uintptr_t)pool * 0x9E3779B97F4A7C15ull);
  pool->key = k ^ (k >> 31);
  wl_unlock(&registry_lock);
  hooks_once();
  return pool;
}

static WL_NOINLINE void *pool_alloc_slow(walloc_pool *pool) {
  if (WL_UNLIKELY(pool == NULL)) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_pool_alloc: NULL pool");
    return NULL;
  }
  wl_pool_cache_t *c = cache_get(pool);
  wl_pool_obj_t *o;
  if (c == NULL) { /* uncached */
    o = depot_take_one(pool);
    if (o == NULL) goto nomem;
    o->tag = 0;
    return o;
  }
  wl_pool_mag_t *loaded = cache_loaded(c); /* NULL or empty */
  if (c->previous != NULL && c->previous->count != 0) { /* swap: no lock */
    wl_pool_mag_t *full = c->previous;
    c->previous = loaded;
    loaded = full;
  } else {
    uint32_t home = wl_pool_self.home;
    wl_pool_shard_t *s = &pool->shards[home];
    wl_pool_mag_t *drop = NULL;
    wl_lock(&s->lock);
    wl_pool_mag_t *full = shard_get_full(s);
    if (full != NULL && loaded != NULL) drop = shard_put_empty(pool, s, loaded); /* exchange */
    wl_unlock(&s->lock);
    if (full != NULL) {
      if (c->own_hits < UINT16_MAX) c->own_hits++;
      if (c->own_hits > c->own_peak) c->own_peak = c->own_hits;
    } else if (cache_makes_own(c)) {
      /* carves a new magazine (below), not another thread's full one */
    } else if ((full = depot_steal(pool, home, true)) != NULL) {
      c->own_hits = 0;
      if (loaded != NULL) depot_give(pool, home, &loaded, 1);
    }
    if (full != NULL) {
      wl_free(drop);
      loaded = full;
    } else { /* no full magazine anywhere: fill one */
      if (loaded == NULL) {
        wl_lock(&s->lock);
        loaded = shard_get_empty(s);
        wl_unlock(&s->lock);
      }
      if (loaded == NULL) loaded = depot_steal(pool, home, false);
      if (loaded == NULL) loaded = mag_new(pool);
      if (loaded == NULL) { /* no memory for a magazine: one object */
        o = depot_take_one(pool);
        if (o == NULL) goto nomem;
        o->tag = 0;
        return o;
      }
      mag_fill(pool, loaded);
    }
  }
  cache_load(c, loaded);
  if (cache_count(c) == 0) goto nomem;
  c->gen_count--;
  o = c->objs[cache_count(c)];
  o->tag = 0;
  return o;
nomem:
  wl_fail(WALLOC_ERR_NOMEM, "walloc_pool_alloc: no memory for a slab");
  return NULL;
}

/* The fast paths test the generation and the count at once: x = gen_count -
   gen_high is the count when the generations agree and at least 2^32 (or,
   wrapped, near 2^64) when they differ, above any limit. */
WL_API void *walloc_pool_alloc(walloc_pool *pool) {
  wl_pool_thread_t *t = &wl_pool_self;
  if (WL_LIKELY(pool != NULL && pool->index < t->cap)) {
    wl_pool_cache_t *c = &t->caches[pool->index];
    uint64_t x = c->gen_count - pool->gen_high - 1; /* count - 1 */
    if (WL_LIKELY(x < c->limit)) {
      wl_pool_obj_t *o = c->objs[x];
      c->gen_count--;
      o->tag = 0;
      return o;
    }
  }
  return pool_alloc_slow(pool);
}

/* o carries its tag. */
static WL_NOINLINE void pool_free_slow(walloc_pool *pool, wl_pool_obj_t *o) {
  wl_pool_cache_t *c = cache_get(pool);
  if (c == NULL) { /* uncached: a loose object */
    pool_put_loose(pool, o);
    return;
  }
  wl_pool_mag_t *loaded = cache_loaded(c); /* NULL or full, or not full after a reset */
  if (loaded != NULL && loaded->count < loaded->cap) {
    /* nothing to exchange */
  } else if (loaded != NULL && c->previous != NULL && c->previous->count == 0) { /* swap: no lock */
    wl_pool_mag_t *empty = c->previous;
    c->previous = loaded;
    loaded = empty;
  } else {
    wl_pool_mag_t *give = NULL;
    if (loaded != NULL) { /* the full loaded one becomes previous; a full previous goes to the depot */
      give = c->previous;
      c->previous = loaded;
    }
    uint32_t home = wl_pool_self.home;
    wl_pool_shard_t *s = &pool->shards[home];
    wl_lock(&s->lock);
    if (give != NULL) shard_put_full(s, give);
    loaded = shard_get_empty(s);
    wl_unlock(&s->lock);
    bool own = loaded == NULL && cache_makes_own(c);
    if (loaded == NULL && !own) loaded = depot_steal(pool, home, false);
    if (loaded == NULL) loaded = mag_new(pool);
    if (loaded == NULL && own) loaded = depot_steal(pool, home, false); /* no memory for one of its own */
    if (loaded == NULL) { /* no memory for a magazine: a loose object */
      pool_put_loose(pool, o);
      cache_load(c, NULL);
      return;
    }
  }
  cache_load(c, loaded);
  c->objs[cache_count(c)] = o;
  c->gen_count++;
}

/* A free the fast path refused (or NULL): say why, change nothing. */
static WL_NOINLINE void pool_free_refused(walloc_pool *pool, void *object) {
  if (object == NULL) return;
  if (pool == NULL) {
    wl_warn("walloc_pool_free: NULL pool (ignored)", object);
    return;
  }
  uintptr_t p = (uintptr_t)object;
  wl_pool_slab_t *slab = (p >> WL_POOL_REGION_SHIFT >> WL_POOL_LEAF_SHIFT) < WL_POOL_TOP ? slab_lookup(p) : NULL;
  if (slab == NULL || slab->pool != pool || p - (uintptr_t)slab >= slab->size) {
    wl_warn("walloc_pool_free: not an object of this pool (ignored)", object);
    return;
  }
  uint64_t off = (uint64_t)(p - slab->data);
  if (p < slab->data || off >= wl_load_relaxed(&slab->carved) || off % pool->object_size != 0) {
    wl_warn("walloc_pool_free: not the start of an allocated object (ignored)", object);
    return;
  }
  wl_warn("walloc_pool_free: double free (ignored)", object); /* it carries the tag */
}

/* The checks, in as few instructions as they take: the slab map's top index
   is masked, not range-checked (a slab found for an aliased address cannot
   hold it: the offset test below fails); the offset below what was carved
   also refuses addresses below the first object (it wraps); a multiple of
   object_size = odd << shift is one whose product with the odd part's
   inverse, rotated right by shift, is at most UINT64_MAX / object_size.
   NULL objects and pools fail a test (no slab holds address 0, no slab has
   a NULL pool) and are sorted out by pool_free_refused. */
static WL_NOINLINE void pool_free_checked(walloc_pool *pool, void *object) {
  uintptr_t p = (uintptr_t)object;
  uintptr_t region = p >> WL_POOL_REGION_SHIFT;
  wl_slab_entry_t *leaf = wl_load_acquire(&slab_map[(region >> WL_POOL_LEAF_SHIFT) & (WL_POOL_TOP - 1)]);
  if (WL_UNLIKELY(leaf == NULL)) goto refused;
  wl_pool_slab_t *slab = wl_load_acquire(&leaf[region & (WL_POOL_LEAF - 1)]);
  if (WL_UNLIKELY(slab == NULL || slab->pool != pool)) goto refused;
  uint64_t off = (uint64_t)(p - slab->data);
  uint64_t carved = wl_load_relaxed(&slab->carved);
  if (WL_UNLIKELY(off >= carved)) goto refused;
  uint64_t q = off * pool->inv;
  q = (q >> pool->shift) | (q << ((64 - pool->shift) & 63));
  if (WL_UNLIKELY(q > pool->inv_limit)) goto refused;
  wl_pool_obj_t *o = (wl_pool_obj_t *)object;
  uintptr_t tag = pool->key ^ p;
  if (WL_UNLIKELY(o->tag == tag)) goto refused;
  o->tag = tag;
  wl_pool_thread_t *t = &wl_pool_self;
  if (WL_LIKELY(pool->index < t->cap)) {
    wl_pool_cache_t *c = &t->caches[pool->index];
    uint64_t x = c->gen_count - pool->gen_high; /* the count */
    if (WL_LIKELY(x < c->limit)) {
      c->objs[x] = o;
      c->gen_count++;
      c->hint_data = slab->data;
      c->hint_carved = carved; /* objects carved later miss the hint and come this way */
      return;
    }
  }
  pool_free_slow(pool, o);
  if (pool->index < t->cap && cache_gen(&t->caches[pool->index]) == pool->gen) {
    t->caches[pool->index].hint_data = slab->data;
    t->caches[pool->index].hint_carved = carved;
  }
  return;
refused:
  pool_free_refused(pool, object);
}

/* The fast path: the object is in the slab of the last object this thread
   freed to this pool (the hint, trusted only once the generation matched:
   then it is a live slab of this pool, checked through the slab map when
   it became the hint), below what was carved, a multiple of object_size,
   and not tagged free; the loaded magazine has room. Anything else takes
   the whole way, pool_free_checked. */
WL_API void walloc_pool_free(walloc_pool *pool, void *object) {
  wl_pool_thread_t *t = &wl_pool_self;
  if (WL_LIKELY(pool != NULL && pool->index < t->cap)) {
    wl_pool_cache_t *c = &t->caches[pool->index];
    uint64_t x = c->gen_count - pool->gen_high; /* the count */
    if (WL_LIKELY(x < c->limit)) {
      uintptr_t p = (uintptr_t)object;
      uint64_t off = (uint64_t)(p - c->hint_data);
      uint64_t q = off * pool->inv;
      q = (q >> pool->shift) | (q << ((64 - pool->shift) & 63));
      wl_pool_obj_t *o = (wl_pool_obj_t *)object;
      uintptr_t tag = pool->key ^ p;
      if (WL_LIKELY(off < c->hint_carved && q <= pool->inv_limit && o->tag != tag)) {
        o->tag = tag;
        c->objs[x] = o;
        c->gen_count++;
        return;
      }
    }
  }
  pool_free_checked(pool, object);
}

/* Racy but whole: each count is read once, without stopping the threads. */
static walloc_pool_stats pool_stats(walloc_pool *pool) {
  walloc_pool_stats st = {pool->object_size, 0, 0, 0};
  wl_lock(&pool->lock);
  st.objects = wl_load_relaxed(&pool->carved_objects);
  for (const wl_pool_slab_t *s = pool->slabs; s != NULL; s = s->next) st.slab_bytes += s->size;
  wl_unlock(&pool->lock);
  for (int h = 0; h < WL_POOL_HOMES; h++) st.magazines_taken += wl_load_relaxed(&pool->shards[h].taken);
  return st;
}

WL_API walloc_status walloc_pool_stats_get(walloc_pool *pool, walloc_pool_stats *out) {
  if (pool == NULL || out == NULL) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_pool_stats_get: NULL pool or output");
    return WALLOC_ERR_INVALID;
  }
  *out = pool_stats(pool);
  return WALLOC_OK;
}

/* Every registered pool, under the registry's lock (each pool's lock below
   it, as destroy takes them). */
void wl_pools_stats(wl_pools_stats_t *out) {
  *out = (wl_pools_stats_t){0, 0, 0, 0};
  wl_lock(&registry_lock);
  for (uint32_t i = 0; i < slots_top; i++) {
    if (slots[i].pool == NULL) continue;
    walloc_pool_stats st = pool_stats(slots[i].pool);
    out->pools++;
    out->objects += st.objects;
    out->slab_bytes += st.slab_bytes;
    out->magazines_taken += st.magazines_taken;
  }
  wl_unlock(&registry_lock);
}

WL_API void walloc_pool_destroy(walloc_pool *pool) {
  if (pool == NULL) return;
  wl_lock(&registry_lock);
  uint32_t i = pool->index;
  if (i != WL_POOL_NO_INDEX) {
    if (i >= slots_top || slots[i].pool != pool) {
      wl_unlock(&registry_lock);
      wl_warn("walloc_pool_destroy: not a live pool (ignored)", pool);
      return;
    }
    slots[i].pool = NULL;
    slots[i].gen++; /* every thread's cache of this index is stale from now */
    if (slots[i].gen == 0) slots[i].gen = 1;
    slots[i].next_free = slots_free;
    slots_free = i + 1;
  }
  wl_unlock(&registry_lock);
  /* no exiting thread can reach the pool now: release everything */
  for (wl_pool_slab_t *s = pool->slabs, *next; s != NULL; s = next) {
    next = s->next;
    slab_release(s);
  }
  for (int h = 0; h < WL_POOL_HOMES; h++) {
    for (wl_pool_mag_t *m = pool->shards[h].full, *next; m != NULL; m = next) {
      next = m->next;
      wl_free(m);
    }
    for (wl_pool_mag_t *m = pool->shards[h].empty, *next; m != NULL; m = next) {
      next = m->next;
      wl_free(m);
    }
  }
  wl_pool_thread_t *t = &wl_pool_self;
  if (i < t->cap) cache_drop(&t->caches[i]); /* other threads' go when they next see the generation */
  wl_lock_fini(&pool->lock);
  for (int h = 0; h < WL_POOL_HOMES; h++) wl_lock_fini(&pool->shards[h].lock);
  wl_free(pool);
}
