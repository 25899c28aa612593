/* tiers.h: the tiered handle API's data model and cross-file interface.
 *
 *   one reservation, committed on demand        slot tables (2 bytes per granule)
 *   +-----------------+-----------+---------+   +------+-----+------+
 *   | render (50 %)   | scene     | entity  |   |render|scene|entity|
 *   +-----------------+-----------+---------+   +------+-----+------+
 *   ^ wl_tiers.base: a handle's offset counts from here (0 on wasm)
 *
 * A tier is a bump arena with per-size-class free lists. Threads take
 * windows of 64 KiB from the tier's claim pointer with one atomic add and bump
 * inside them with plain stores; bigger blocks are claimed directly. Block
 * sizes are powers of two from the tier's granule (32 bytes or the
 * alignment, whichever is larger), so every block is granule aligned and a
 * freed block serves its class again.
 *
 * Handle (64 bits):
 *   63        62..57    56..36        35..0
 *   fallback  version   generation    offset from wl_tiers.base
 * A fallback handle (bit 63) names a general-heap block instead, through
 * the fallback tier's own table (fallback.c): bits 62..28 are the entry's
 * generation and 27..0 its index. Nothing in a fallback handle is an
 * address, so resolving one reads only walloc's table.
 *
 * Stale detection: each tier counts generations; a reset or a compaction
 * ends one. A handle carries the generation it was made in; it is valid
 * while its block lies below every compaction limit since then (resets have
 * limit 0). Those limits, taken per range of generations, increase with the
 * generation, so they are kept as a ring of (first generation, limit) pairs
 * and the check is a binary search. Inside a generation, the slot table holds each block's state
 * (allocated bit, 6-bit version, size class): deallocation clears the bit with
 * a compare-and-swap (a second one fails: WALLOC_ERR_STALE), reuse from a free
 * list bumps the version (old handles no longer match).
 *
 * Thread safety: allocation touches only the thread's window (and the free
 * list heads, with tagged compare-and-swap, ABA-safe); reset and compaction
 * take the tier's lock and publish the new generation under a sequence
 * counter that validation reads. An allocation that races with a reset of
 * its tier belongs to the old generation: its handle is stale at once.
 *
 * Inline resolution: walloc.h resolves handles in the caller's code over a
 * map of these structures (walloc_tiers_map_: wl_tiers_t's head and each
 * tier's gen, seq, start, slots, offset, capacity, granule shift, top and
 * committed), read only when its abi number is the header's. The asserts
 * after wl_tiers_t keep the two layouts equal; a change to either bumps
 * WALLOC_MAP_ABI_, and programs built against the old header then call
 * the library. The check reads gen and top under seq, like validation
 * here, and writes nothing (handle.c says why its answers hold).
 */
#ifndef WL_TIERS_H
#define WL_TIERS_H

#include "../heap/heap_api.h"
#include "walloc.h"

#include <string.h>

/* Lock levels (platform.h): set-up, each tier's lock and the thread
   registry call only the heap and the platform while held; walloc_set_budget
   reads the statistics (the registry) under the budget lock. */
#define WL_LEVEL_TIERS     (WL_LEVEL_HEAP_RUNTIME + 1) /* set-up, each tier, the thread registry */
#define WL_LEVEL_TIERS_TOP (WL_LEVEL_HEAP_RUNTIME + 2) /* budgets */

#define WL_TIERS                3                    /* arena tiers; FALLBACK is the heap */
#define WL_HANDLE_OFF_BITS      36
#define WL_HANDLE_OFF_MASK      (((uint64_t)1 << WL_HANDLE_OFF_BITS) - 1)
#define WL_HANDLE_GEN_SHIFT     36
#define WL_HANDLE_GEN_BITS      21
#define WL_HANDLE_GEN_MASK      (((uint64_t)1 << WL_HANDLE_GEN_BITS) - 1)
#define WL_HANDLE_VER_SHIFT     57
#define WL_HANDLE_VER_MASK      ((uint64_t)63)
#define WL_HANDLE_FALLBACK      ((uint64_t)1 << 63)
#define WL_FB_SLOT_BITS         28                   /* fallback handle: table entry */
#define WL_FB_SLOT_MASK         (((uint64_t)1 << WL_FB_SLOT_BITS) - 1)
#define WL_FB_GEN_SHIFT         WL_FB_SLOT_BITS      /* then the entry's generation, up to bit 62 */
#define WL_FB_GEN_MASK          (((uint64_t)1 << (63 - WL_FB_SLOT_BITS)) - 1)

#define WL_TIER_MIN_GRANULE     32
#define WL_TIER_WINDOW          ((size_t)64 << 10)   /* a thread's bump window */
#define WL_TIER_DIRECT          ((size_t)16 << 10)   /* blocks this big are claimed directly */
#define WL_TIER_COMMIT_CHUNK    ((size_t)4 << 20)
#define WL_TIER_MAX_MEMORY      ((uint64_t)1 << WL_HANDLE_OFF_BITS)
_Static_assert(WL_TIER_WINDOW == WL_TIERS_MIN_SHARE, "the tiers option's share limit (core.h) is a window");
#define WL_GEN_LIMITS           65536                /* compaction limits kept (a ring, 1 MiB reserved) */

/* Slot table entry (16 bits): bit 0 allocated; bits 1-6 the version;
   bit 7 owned (the block belongs to a scope, a context or a ring, released
   with its owner, never one by one); bits 8-15 the size code. A code below
   WL_SLOT_SMALL is the block's size in granules. A larger block (128
   granules or more, so it has at least three more entries) has code 128 |
   (its granule count >> 27), and entries 1 to 3 after it carry 9 more bits
   each (bits 7-15; their allocated bit stays clear, so they read "no
   block", and their version bits are kept). Sizes are exact: a block takes
   its request rounded up to the granule, whatever its size. */
#define WL_SLOT_ALLOCATED       1u
#define WL_SLOT_VER_SHIFT       1
#define WL_SLOT_OWNED           (1u << 7)
#define WL_SLOT_CODE_SHIFT      8
#define WL_SLOT_SMALL           128u
#define WL_SLOT_WIDE_BITS       9
#define WL_SLOT_WIDE_SHIFT      7
#define WL_SLOT_MAX_GRANULES    ((uint64_t)1 << (7 + 3 * WL_SLOT_WIDE_BITS))
typedef _Atomic(uint16_t) wl_slot_t;

WL_INLINE uint16_t wl_slot_make(bool allocated, unsigned version, unsigned code) {
  return (uint16_t)((allocated ? WL_SLOT_ALLOCATED : 0) | ((version & 63u) << WL_SLOT_VER_SHIFT) |
                    (code << WL_SLOT_CODE_SHIFT));
}
WL_INLINE unsigned wl_slot_version(uint16_t s) { return (s >> WL_SLOT_VER_SHIFT) & 63u; }
WL_INLINE unsigned wl_slot_code(uint16_t s) { return s >> WL_SLOT_CODE_SHIFT; }

/* Free-list classes, over sizes in granules: 1 to 8 exactly, then eight
   per doubling (at most 1/8 rounding, like the heap's). A freed block goes
   on the list of the largest class it covers (floor), a request takes from
   the smallest class that covers it (ceil), so every block on list k is at
   least class k's size. */
#define WL_FREE_CLASSES         (7 + 8 * 32)
WL_INLINE unsigned wl_fclass_floor(uint64_t g) {
  if (g <= 8) return (unsigned)g - 1;
  unsigned e = (unsigned)wl_bsr(g) - 3;
  return 7 + 8 * e + (unsigned)((g >> e) - 8);
}
WL_INLINE uint64_t wl_fclass_granules(unsigned k) {
  if (k < 7) return k + 1;
  return (uint64_t)(8 + (k - 7) % 8) << ((k - 7) / 8);
}
WL_INLINE unsigned wl_fclass_ceil(uint64_t g) {
  unsigned k = wl_fclass_floor(g);
  return wl_fclass_granules(k) < g ? k + 1 : k;
}

typedef struct wl_gen_limit_s {
  _Atomic(uint64_t) gen;    /* first generation of this range */
  _Atomic(uint64_t) limit;  /* blocks must end at or below this offset */
} wl_gen_limit_t;

/* A free block's first 16 bytes while it waits on a free list. */
typedef struct wl_tier_node_s {
  _Atomic(uint64_t) next;   /* offset + 1 of the next node, 0 at the end */
  uint64_t gen;             /* tier generation when it was pushed */
} wl_tier_node_t;

/* The fields before `align`, seq, and the first two of the second line
   are walloc_tier_map_ (walloc.h), which the inline handle check reads:
   keep them in step (the asserts below), and bump WALLOC_MAP_ABI_ when
   they change. gen and seq change only in a reset or compaction, so the
   first line stays read-mostly. */
typedef struct wl_tier_s {
  /* read on every allocation */
  _Atomic(uint64_t) gen;            /* current generation (starts at 1) */
  uint8_t *start;                   /* first byte of the tier */
  wl_slot_t *slots;                 /* one entry per granule */
  size_t offset;                    /* start - wl_tiers.base */
  size_t capacity;
  uint32_t granule_shift;
  uint32_t align;
  _Atomic(uint64_t) wtag;           /* windows' tag: gen << 16 | a counter of budget changes and of
                                       free lists filling; a thread's window serves the fast path
                                       while its tag is this */
  _Atomic(uint64_t) seq;            /* odd while a reset or compaction changes the generation (under lock) */
  /* claimed and committed space */
  _Alignas(WL_CACHE_LINE) _Atomic(uint64_t) top; /* bytes claimed from the start */
  _Atomic(uint64_t) committed;      /* bytes readable and writable (slot entries too) */
  _Atomic(uint64_t) peak;
  _Atomic(uint64_t) idle;           /* claimed in this generation, in no block and no window: the
                                       tails of replaced windows, the windows of exited threads */
  /* free lists (WL_FREE_CLASSES heads: tag << 36 | (offset + 1)) */
  _Alignas(WL_CACHE_LINE) _Atomic(uint64_t) free_bytes; /* the fast path runs while it is 0 */
  _Atomic(uint64_t) *free_heads;
  /* generations, under seq (odd while being changed) and lock */
  _Atomic(uint64_t) reset_gen;      /* handles of older generations are stale */
  wl_gen_limit_t *limits;           /* ring of WL_GEN_LIMITS entries, committed as it fills */
  _Atomic(uint32_t) lim_first, lim_count;
  uint32_t lim_committed;           /* entries readable and writable */
  wl_lock_t lock;
  /* totals of exited threads, and events */
  _Atomic(uint64_t) allocations, deallocations, resets;
} __attribute__((aligned(512))) wl_tier_t; /* a power of two: tiers are indexed with a shift */

/* Per thread, per tier: the window and the counters (written by the owner
   with relaxed stores, summed by statistics readers). */
typedef struct wl_tier_ctx_s {
  _Atomic(uint64_t) epoch;          /* the tier's wtag when the window was taken or last synced */
  _Atomic(uint64_t) cur;            /* next free byte of the window (offset from the tier start) */
  _Atomic(uint64_t) end;            /* the fast path bumps up to here: the window's end, or with a
                                       budget, the end of the credit charged for it */
  _Atomic(uint64_t) hbase;          /* handle bits of offset cur - cur: tier offset | generation */
  _Atomic(uint64_t) allocations, deallocations;
  _Atomic(uint64_t) wend;           /* the window's end */
  _Atomic(uint64_t) credit;         /* 1: [cur, end) is charged to the tier's budget */
} __attribute__((aligned(64))) wl_tier_ctx_t;

typedef struct wl_tier_thread_s {
  wl_tier_ctx_t ctx[WL_TIERS];
  struct wl_tier_thread_s *next, *prev;
  bool registered;
  bool exited;                      /* thread_exit ran: registering again would leave a dead thread listed */
} wl_tier_thread_t;

typedef struct wl_tiers_s {
  /* walloc_tiers_map_ (walloc.h): abi and abi_unchecked are stored once,
     with release, when set-up is done */
  _Atomic(uint32_t) abi;            /* WALLOC_MAP_ABI_ once set up: inline checks may read the map */
  _Atomic(uint32_t) abi_unchecked;  /* the same, but 0 in debug builds: unchecked access checks */
  uint8_t *base;                    /* handle offsets count from here */
  size_t total;                     /* bytes reserved for the three tiers */
  _Atomic(int) state;               /* 0 none, 1 initialising, 2 ready, 3 failed */
  wl_tier_t tier[WL_TIERS];
} wl_tiers_t;

extern wl_tiers_t wl_tiers;

/* wl_tiers as the inline handle check of walloc.h reads it. */
#define WL_TIERS_MAP ((const walloc_tiers_map_ *)(const void *)&wl_tiers)
#define WL_MAP_SAME(a, b) (offsetof(wl_tier_t, a) == offsetof(walloc_tier_map_, b))
_Static_assert(WL_MAP_SAME(gen, gen) && WL_MAP_SAME(start, start) && WL_MAP_SAME(slots, slots) &&
                   WL_MAP_SAME(offset, offset) && WL_MAP_SAME(capacity, capacity) &&
                   WL_MAP_SAME(granule_shift, granule_shift) && WL_MAP_SAME(seq, seq) && WL_MAP_SAME(top, top) &&
                   WL_MAP_SAME(committed, committed) && sizeof(wl_tier_t) == sizeof(walloc_tier_map_) &&
                   offsetof(wl_tiers_t, abi) == offsetof(walloc_tiers_map_, abi) &&
                   offsetof(wl_tiers_t, abi_unchecked) == offsetof(walloc_tiers_map_, abi_unchecked) &&
                   offsetof(wl_tiers_t, base) == offsetof(walloc_tiers_map_, base) &&
                   offsetof(wl_tiers_t, tier) == offsetof(walloc_tiers_map_, tier) &&
                   WL_TIERS == 3 && WL_TIER_MIN_GRANULE == 32 && WL_SLOT_ALLOCATED == 1 &&
                   WL_HANDLE_OFF_BITS == 36 && WL_HANDLE_GEN_SHIFT == 36 && WL_HANDLE_GEN_BITS == 21 &&
                   WL_HANDLE_VER_SHIFT == 57 && WL_SLOT_VER_SHIFT == 1 && WL_SLOT_OWNED == 0x80,
               "walloc_tiers_map_ (walloc.h) must mirror wl_tiers_t: change both and bump WALLOC_MAP_ABI_");
/* Exported (walloc.h's walloc_thread_) for inline allocation. */
extern __thread wl_tier_thread_t wl_tier_self __asm__("walloc_thread_") __attribute__((tls_model("initial-exec")));
#define WL_CTX_SAME(a) (offsetof(wl_tier_ctx_t, a) == offsetof(walloc_tier_ctx_map_, a))
_Static_assert(WL_CTX_SAME(epoch) && WL_CTX_SAME(cur) && WL_CTX_SAME(end) && WL_CTX_SAME(hbase) &&
                   WL_CTX_SAME(allocations) && sizeof(wl_tier_ctx_t) == sizeof(walloc_tier_ctx_map_) &&
                   WL_MAP_SAME(wtag, wtag) && WL_SLOT_SMALL == 128 && WL_SLOT_CODE_SHIFT == 8,
               "walloc_tier_ctx_map_ (walloc.h) must mirror wl_tier_ctx_t: change both and bump WALLOC_MAP_ABI_");
#if !defined(__wasm__)
_Static_assert(offsetof(wl_tier_thread_t, ctx) == offsetof(walloc_thread_map_, ctx),
               "walloc_thread_map_ (walloc.h) must mirror wl_tier_thread_t: change both and bump WALLOC_MAP_ABI_");
#endif
/* A tier and a thread's window of it as walloc.h's fast path
   (walloc_tier_bump_) reads them. */
#define wl_tier_map(t) ((const walloc_tier_map_ *)(const void *)(t))
#define wl_tier_ctx_map(c) ((walloc_tier_ctx_map_ *)(void *)(c))

/* ------------------------------------------------------------------------
   Inline helpers
   ------------------------------------------------------------------------ */
WL_INLINE size_t wl_tier_granule(const wl_tier_t *t) { return (size_t)1 << t->granule_shift; }

#define WL_WTAG_SHIFT 16
WL_INLINE uint64_t wl_wtag_gen(uint64_t tag) { return tag >> WL_WTAG_SHIFT; }

/* A request's size in granules (0 bytes take one), or 0 when it is more
   than any block can be. */
WL_INLINE uint64_t wl_tier_granules(const wl_tier_t *t, size_t size) {
  if (size <= 1) return 1;
  uint64_t g = (((uint64_t)size - 1) >> t->granule_shift) + 1;
  return g < WL_SLOT_MAX_GRANULES ? g : 0;
}

/* The slot entries of [off, off+size) read "no block" except the first,
   which the caller writes: so no stale entry inside a block passes for one.
   Windows are cleared when claimed, so the bump itself writes one entry. */
WL_INLINE void wl_tier_slots_clear(wl_tier_t *t, uint64_t off, size_t size) {
  memset((void *)&t->slots[off >> t->granule_shift], 0, (size >> t->granule_shift) * sizeof(wl_slot_t));
}

/* The size code of a block of g granules at off, for its first entry; a
   large block's entries 1 to 3 get their bits here (the caller then stores
   the first entry with release). */
WL_INLINE unsigned wl_slot_size_set(wl_tier_t *t, uint64_t off, uint64_t g) {
  if (g < WL_SLOT_SMALL) return (unsigned)g;
  wl_slot_t *e = &t->slots[off >> t->granule_shift];
  for (unsigned k = 1; k <= 3; k++) {
    uint16_t keep = wl_load_relaxed(&e[k]) & (uint16_t)(63u << WL_SLOT_VER_SHIFT);
    unsigned bits = (unsigned)(g >> (WL_SLOT_WIDE_BITS * (3 - k))) & ((1u << WL_SLOT_WIDE_BITS) - 1);
    wl_store_relaxed(&e[k], (uint16_t)(keep | (bits << WL_SLOT_WIDE_SHIFT)));
  }
  return WL_SLOT_SMALL | (unsigned)(g >> (3 * WL_SLOT_WIDE_BITS));
}

/* The size in bytes of the block whose first entry (at off) is s. A large
   block is never under WL_SLOT_SMALL granules, whatever its next entries
   read: a compaction that kept fewer than its first four granules lets
   the next generation write them, and the size that validation checks
   against the kept prefix must still reach past it. */
WL_INLINE size_t wl_slot_size(const wl_tier_t *t, uint64_t off, uint16_t s) {
  uint64_t g = wl_slot_code(s);
  if (g >= WL_SLOT_SMALL) {
    const wl_slot_t *e = &t->slots[off >> t->granule_shift];
    g &= WL_SLOT_SMALL - 1;
    for (unsigned k = 1; k <= 3; k++) g = g << WL_SLOT_WIDE_BITS | (wl_load_relaxed(&e[k]) >> WL_SLOT_WIDE_SHIFT);
    if (g < WL_SLOT_SMALL) g = WL_SLOT_SMALL;
  }
  return (size_t)(g << t->granule_shift);
}

/* The entries of an owner's block of g granules at off (a scope's,
   context's or ring's): allocated, owned, one version above the last block
   there. Returns the version, for the handle. */
WL_INLINE unsigned wl_slot_own(wl_tier_t *t, uint64_t off, uint64_t g) {
  wl_slot_t *slot = &t->slots[off >> t->granule_shift];
  unsigned version = (wl_slot_version(wl_load_relaxed(slot)) + 1) & 63u;
  unsigned code = wl_slot_size_set(t, off, g);
  wl_store_release(slot, (uint16_t)(wl_slot_make(true, version, code) | WL_SLOT_OWNED));
  return version;
}

WL_INLINE walloc_handle wl_handle_make(const wl_tier_t *t, uint64_t off, uint64_t gen, unsigned version) {
  return (t->offset + off) | ((gen & WL_HANDLE_GEN_MASK) << WL_HANDLE_GEN_SHIFT) |
         ((uint64_t)(version & 63u) << WL_HANDLE_VER_SHIFT);
}

/* ------------------------------------------------------------------------
   Cross-file functions, grouped by the file that defines them
   ------------------------------------------------------------------------ */

/* tier.c */
typedef void (*wl_tier_observer_fn)(unsigned tier);
extern _Atomic(wl_tier_observer_fn) wl_tier_reset_observer; /* told after each reset or compaction */
walloc_status wl_tiers_ensure(void);
WL_INLINE bool wl_tiers_ready(void) { return wl_load_acquire(&wl_tiers.state) == 2; } /* set up, without setting up */
wl_tier_ctx_t *wl_tier_thread_ctx(unsigned tier);
bool wl_tier_claim(wl_tier_t *t, size_t size, uint64_t *off, uint64_t *epoch);
walloc_status wl_tier_reset(unsigned tier, size_t preserve, bool compact);
void wl_tier_windows_resync(wl_tier_t *t);
void wl_tier_window_drop(wl_tier_t *t, wl_tier_ctx_t *c); /* the calling thread's, before it takes another */
void wl_tier_stats(unsigned tier, walloc_tier_stats *out);
uint64_t wl_tier_limit(wl_tier_t *t, uint64_t gen);

/* handle.c */
typedef struct wl_block_ref_s {
  wl_tier_t *tier;          /* NULL for a fallback block */
  uint8_t *ptr;             /* first usable byte */
  size_t size;              /* usable bytes */
  uint64_t off;             /* offset in the tier */
  uint64_t gen;             /* the tier's generation when it was validated */
  uint16_t slot;            /* the slot entry that was validated */
} wl_block_ref_t;
walloc_status wl_handle_resolve(walloc_handle h, wl_block_ref_t *ref);
/* wl_handle_resolve for a public call: a failure sets walloc_last_status
   and, in debug builds, says `what` on stderr. */
walloc_status wl_handle_use(walloc_handle h, wl_block_ref_t *ref, const char *what);

/* fallback.c: general-heap blocks behind handles (bit 63) */
walloc_handle wl_fallback_alloc(size_t size);
walloc_status wl_fallback_free(walloc_handle h);
walloc_status wl_fallback_resolve(walloc_handle h, wl_block_ref_t *ref);
walloc_handle wl_fallback_handle_of(uintptr_t p); /* of the block whose data starts at p, or null */

bool wl_tier_range_valid(wl_tier_t *t, uint64_t gen, uint64_t off, size_t size, uint64_t *now);

/* Is the block [off, off+size) that an owner (scope, context, ring) took in
   generation *gen still its own? A reset takes it; a compaction may keep
   it, and then *gen moves to the current generation. */
WL_INLINE bool wl_tier_owned_live(wl_tier_t *t, uint64_t *gen, uint64_t off, size_t size) {
  if (WL_LIKELY(*gen == wl_load_acquire(&t->gen))) return true;
  uint64_t now;
  if (!wl_tier_range_valid(t, *gen, off, size, &now)) return false;
  *gen = now;
  return true;
}

/* alloc.c */
walloc_handle wl_tier_alloc_slow(unsigned tier, size_t size);
void wl_tier_credit_return(unsigned tier); /* the calling thread's unused budget credit, at its exit */
/* Blocks for owners (scopes, contexts, rings): a block of at least size
   bytes (a granule multiple; *got says how many: a recycled one may be
   bigger), charged to the tier's budget; the caller writes its slot
   entries. Give it back (its *got bytes) with every slot in it free
   (allocated bits clear), stating the generation it was taken in: a block
   a reset reclaimed is not pushed. */
walloc_status wl_tier_block_take(unsigned tier, size_t size, uint64_t *off, uint64_t *gen, size_t *got);
void wl_tier_block_give(unsigned tier, size_t size, uint64_t off, uint64_t gen);
/* Clear the allocated bits of the slot entries of [off, off+size), keeping
   versions (the next block there takes version + 1). */
void wl_tier_slots_release(wl_tier_t *t, uint64_t off, size_t size);

/* budget.c: per-tier budgets (WALLOC_TIER_COUNT of them: FALLBACK too) */
walloc_status wl_budget_charge(unsigned tier, size_t bytes);  /* WALLOC_OK or WALLOC_ERR_BUDGET */
void wl_budget_refund(unsigned tier, size_t bytes);
void wl_budget_reset(unsigned tier, size_t used);           /* after a reset or compaction */
bool wl_budget_on(unsigned tier);                           /* a limit is set */
size_t wl_budget_headroom(unsigned tier);                   /* bytes below the hard limit (SIZE_MAX: none) */


#endif
