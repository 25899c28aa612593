/* fallback.c: the fallback tier: general-heap blocks named by handles.
 *
 * Owns: the table of live fallback blocks (entry -> block, size,
 * generation), its free entries, and the 16-byte header in front of every
 * fallback block, which holds the block's handle.
 *
 *   handle: 63 fallback (1) | 62..28 generation (35 bits) | 27..0 entry
 *   entry:  state = generation << 1 | live, block, size, free-list link
 *
 * Why a table: a handle is a plain integer the caller may have forged, so
 * resolving one must not touch memory walloc has not verified. An address
 * inside the handle cannot be verified cheaply (the heap's ownership map
 * has one byte per 4 MiB, and a header found there could have been written
 * by the caller: that is how a forged handle once wrote far past a block).
 * The table is walloc's own memory: resolving reads the entry the handle
 * names, its generation and live bit, and takes the block's address and
 * size from the entry, never from the block. An index beyond the entries
 * ever made is refused before anything is read.
 *
 * Generations never wrap: deallocation advances the entry's generation, and
 * an entry whose generation reaches WL_FB_GEN_RETIRE is retired (never
 * handed out again) instead of wrapping. So a stale handle stays stale for
 * the life of the process: with 2^28 entries of 2^35 uses each, retiring
 * costs one 32-byte entry per 2^35 deallocations of one entry (at 50
 * million a second, one every 11 minutes). Debug builds retire at 16, so
 * the tests reach that path.
 *
 * walloc_ptr_to_handle goes the other way: the header before a pointer is
 * read only once the heap says a live heap block starts there (wl_owns),
 * and the handle found in it counts only if it resolves to
 * a live entry whose block is that very block; a header the caller wrote
 * cannot name a block it is not.
 *
 * Invariants: an entry's generation only grows; its block and size are
 * those of a live fallback block while the live bit is set; an entry is on
 * the free list exactly when it is free and not retired. Chunks of the
 * table are never freed, so reading any entry ever made is safe.
 * Thread safety: lock-free. The table grows by chunks (64 << c entries for
 * chunk c, so 22 pointers address 2^28 entries) published with a
 * compare-and-swap; free entries form a Treiber stack whose head packs a
 * 32-bit tag (ABA); deallocation clears the live bit with a
 * compare-and-swap, so of two racing deallocations one succeeds and the
 * other is told WALLOC_ERR_STALE. A resolver reads the state, then block
 * and size, then the state again (a sequence lock: the entry's writer
 * stores block and size with release after it took the entry). As for
 * tier handles, using a block another thread is deallocating is the
 * caller's race.
 */
#include "tiers.h"

typedef struct wl_fb_header_s {
  uint64_t handle;          /* the block's handle, for walloc_ptr_to_handle */
  uint64_t reserved;        /* keeps the data 16-byte aligned */
} wl_fb_header_t;
_Static_assert(sizeof(wl_fb_header_t) == 16, "fallback header keeps 16-byte alignment");

typedef struct wl_fb_entry_s {
  _Atomic(uint64_t) state;  /* generation << 1 | live */
  _Atomic(uintptr_t) block; /* the header's address, while live */
  _Atomic(size_t) size;     /* usable bytes, while live */
  _Atomic(uint32_t) next;   /* free list: index + 1 of the next free entry, 0 at the end */
} wl_fb_entry_t;

#define WL_FB_CHUNK0_SHIFT 6
#define WL_FB_CHUNK0       ((uint64_t)1 << WL_FB_CHUNK0_SHIFT)
#define WL_FB_CHUNKS       (WL_FB_SLOT_BITS - WL_FB_CHUNK0_SHIFT)
#define WL_FB_ENTRIES      ((WL_FB_CHUNK0 << WL_FB_CHUNKS) - WL_FB_CHUNK0) /* 2^28 - 64 */
#define WL_FB_GEN_RETIRE   (WL_DEBUG > 0 ? (uint64_t)16 : WL_FB_GEN_MASK)

static _Atomic(wl_fb_entry_t *) fb_chunks[WL_FB_CHUNKS];
static _Atomic(uint64_t) fb_made;  /* entries handed out at least once: indices below this */
static _Atomic(uint64_t) fb_free;  /* tag << 32 | (index + 1) of the first free entry */

/* ------------------------------------------------------------------------
   The table
   ------------------------------------------------------------------------ */
/* Chunk c holds entries [64 * (2^c - 1), 64 * (2^(c+1) - 1)). */
WL_INLINE unsigned fb_chunk_of(uint64_t index) {
  return (unsigned)wl_bsr((size_t)(index + WL_FB_CHUNK0)) - WL_FB_CHUNK0_SHIFT;
}
WL_INLINE uint64_t fb_chunk_first(unsigned c) { return (WL_FB_CHUNK0 << c) - WL_FB_CHUNK0; }

/* The entry of index (< fb_made), or NULL if its chunk was never made. */
static wl_fb_entry_t *fb_entry(uint64_t index) {
  unsigned c = fb_chunk_of(index);
  wl_fb_entry_t *chunk = wl_load_acquire(&fb_chunks[c]);
  return chunk == NULL ? NULL : &chunk[index - fb_chunk_first(c)];
}

/* The entry of index, making its chunk (zeroed: free, generation 0) if needed. */
static wl_fb_entry_t *fb_entry_make(uint64_t index) {
  wl_fb_entry_t *e = fb_entry(index);
  if (e != NULL) return e;
  unsigned c = fb_chunk_of(index);
  wl_fb_entry_t *mine = wl_zalloc((size_t)(WL_FB_CHUNK0 << c) * sizeof(wl_fb_entry_t));
  if (mine == NULL) return NULL;
  wl_fb_entry_t *expected = NULL;
  if (!wl_cas_strong(&fb_chunks[c], &expected, mine)) wl_free(mine); /* another thread made it first */
  return fb_entry(index);
}

static void fb_push(uint64_t index, wl_fb_entry_t *e) {
  uint64_t head = wl_load_relaxed(&fb_free), want;
  do {
    wl_store_relaxed(&e->next, (uint32_t)head);
    want = ((head >> 32) + 1) << 32 | (index + 1);
  } while (!wl_cas_weak(&fb_free, &head, want));
}

/* A free entry: a recycled one, else a new one; NULL when none can be had. */
static wl_fb_entry_t *fb_take(uint64_t *index) {
  uint64_t head = wl_load_acquire(&fb_free);
  while ((uint32_t)head != 0) {
    uint64_t i = (uint32_t)head - 1;
    wl_fb_entry_t *e = fb_entry(i);
    if (e == NULL) break; /* cannot be: only made entries are pushed */
    uint64_t want = ((head >> 32) + 1) << 32 | wl_load_relaxed(&e->next); /* stale if we lose: the tag says so */
    if (wl_cas_weak(&fb_free, &head, want)) {
      *index = i;
      return e;
    }
  }
  uint64_t i = atomic_fetch_add_explicit(&fb_made, 1, memory_order_acq_rel);
  if (i >= WL_FB_ENTRIES) return NULL; /* 2^28 entries made: the table is full */
  *index = i;
  return fb_entry_make(i); /* (on failure the index stays unused: it was never handed out) */
}

/* ------------------------------------------------------------------------
   Allocation, resolution, deallocation
   ------------------------------------------------------------------------ */
walloc_handle wl_fallback_alloc(size_t size) {
  if (size > WL_MAX_ALLOC - sizeof(wl_fb_header_t)) return WALLOC_NULL_HANDLE;
  wl_fb_header_t *h = wl_malloc(sizeof *h + size);
  if (h == NULL) return WALLOC_NULL_HANDLE;
  uint64_t index;
  wl_fb_entry_t *e = fb_take(&index);
  if (e == NULL) {
    wl_free(h);
    return WALLOC_NULL_HANDLE;
  }
  uint64_t gen = wl_load_relaxed(&e->state) >> 1; /* free: nobody else writes it */
  walloc_handle handle = WL_HANDLE_FALLBACK | gen << WL_FB_GEN_SHIFT | index;
  h->handle = handle;
  h->reserved = 0;
  /* release: a resolver that reads these then sees the state that freed the entry (or later) */
  wl_store_release(&e->block, (uintptr_t)h);
  wl_store_release(&e->size, size);
  wl_store_release(&e->state, gen << 1 | 1u);
  return handle;
}

static walloc_status fb_resolve(walloc_handle handle, wl_block_ref_t *ref, wl_fb_entry_t **entry) {
  uint64_t index = handle & WL_FB_SLOT_MASK;
  uint64_t live = ((handle >> WL_FB_GEN_SHIFT) & WL_FB_GEN_MASK) << 1 | 1u;
  if (index >= wl_load_acquire(&fb_made)) return WALLOC_ERR_INVALID; /* never handed out */
  wl_fb_entry_t *e = fb_entry(index);
  if (e == NULL || wl_load_acquire(&e->state) != live) return WALLOC_ERR_STALE;
  uintptr_t block = wl_load_relaxed(&e->block);
  size_t size = wl_load_relaxed(&e->size);
  atomic_thread_fence(memory_order_acquire);
  if (wl_load_relaxed(&e->state) != live) return WALLOC_ERR_STALE; /* deallocated meanwhile */
  ref->tier = NULL;
  ref->ptr = (uint8_t *)block + sizeof(wl_fb_header_t);
  ref->size = size;
  ref->off = 0;
  ref->gen = 0;
  ref->slot = 0;
  *entry = e;
  return WALLOC_OK;
}

walloc_status wl_fallback_resolve(walloc_handle handle, wl_block_ref_t *ref) {
  wl_fb_entry_t *e;
  return fb_resolve(handle, ref, &e);
}

walloc_status wl_fallback_free(walloc_handle handle) {
  wl_block_ref_t ref;
  wl_fb_entry_t *e;
  walloc_status st = fb_resolve(handle, &ref, &e);
  if (st != WALLOC_OK) return st;
  uint64_t gen = (handle >> WL_FB_GEN_SHIFT) & WL_FB_GEN_MASK;
  uint64_t live = gen << 1 | 1u;
  if (!wl_cas_strong(&e->state, &live, (gen + 1) << 1)) return WALLOC_ERR_STALE; /* freed meanwhile */
  if (gen + 1 < WL_FB_GEN_RETIRE) fb_push(handle & WL_FB_SLOT_MASK, e); /* else retired: never wraps */
  wl_budget_refund(WALLOC_TIER_FALLBACK, ref.size);
  wl_free(ref.ptr - sizeof(wl_fb_header_t));
  return WALLOC_OK;
}

/* The handle of the live fallback block whose data starts at p, or the
   null handle. */
walloc_handle wl_fallback_handle_of(uintptr_t p) {
  if ((p & 15) != 0 || p < sizeof(wl_fb_header_t)) return WALLOC_NULL_HANDLE;
  const wl_fb_header_t *h = (const wl_fb_header_t *)(p - sizeof(wl_fb_header_t));
  /* read the header's first word only where a live heap block starts */
  if (!wl_owns(h)) return WALLOC_NULL_HANDLE;
  walloc_handle handle = h->handle;
  wl_block_ref_t ref;
  if (!(handle & WL_HANDLE_FALLBACK) || wl_fallback_resolve(handle, &ref) != WALLOC_OK ||
      (uintptr_t)ref.ptr != p) {
    return WALLOC_NULL_HANDLE;
  }
  return handle;
}
