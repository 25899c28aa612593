/* huge.c: blocks above 2 MiB, each in a mapping of its own, and their cache.
 *
 * A huge mapping starts on a WL_HUGE_ALIGN boundary (4 MiB; 64 KiB on wasm,
 * where padding is real memory) with a one-page header (a wl_segment_t
 * without slice descriptors); the block follows the header. For alignments
 * of WL_HUGE_ALIGN and more the block itself starts on such a boundary and
 * the header sits WL_HUGE_ALIGN before it (map value WL_MAP_HUGE_PREV).
 *
 * Freed huge blocks wait in a small cache (WALLOC_HUGE_CACHE entries, at
 * most WL_HUGE_CACHE_BYTES together, none over WL_HUGE_CACHE_ENTRY) so a
 * program that frees and mallocs big buffers in a loop reuses their resident
 * pages instead of calling the kernel and faulting them in again. A request
 * takes the smallest cached mapping that is large enough and gives back the
 * surplus at its end. An entry is unmapped once it has waited longer than
 * WALLOC_HUGE_CACHE_DELAY (100 ms: faulting in a big block again costs far
 * more than keeping it a little longer), when the cache overflows, or when
 * the OS refuses memory (pressure.c). realloc grows a huge block in
 * place when the address space after it is free, and otherwise moves its pages
 * with wl_os_remap (mremap), so big buffers are never copied.
 * Thread safety: any thread may free or reallocate any huge block; the cache
 * is behind huge_lock.
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

/* Options fixed at build time with no huge cache (wasm): nothing is ever
   cached or lent, and the code for both folds away. Elsewhere the option can
   change at run time, so what is cached or lent already is looked after
   whatever its value is now. */
#define WL_HUGE_NEVER_CACHED (WL_OPTIONS_FIXED && wl_option(WL_OPT_HUGE_CACHE) <= 0)

#define WL_HUGE_CACHE_BYTES ((size_t)128 << 20)
#define WL_HUGE_CACHE_ENTRY ((size_t)64 << 20)

WL_LOCK_STATIC(huge_lock, WL_LEVEL_HEAP);
static wl_segment_t *cache_first; /* most recently freed first */
static _Atomic(size_t) cache_count; /* read without the lock only as a hint */
static size_t cache_bytes;

wl_segment_t *wl_huge_header(const void *p, unsigned map_value) {
  uintptr_t seg = (uintptr_t)p & ~(uintptr_t)(WL_HUGE_ALIGN - 1);
  if (map_value == WL_MAP_HUGE_PREV) seg -= WL_HUGE_ALIGN;
  return (wl_segment_t *)seg;
}

static uint8_t *huge_block(wl_segment_t *seg) { return (uint8_t *)seg + seg->huge_offset; }

static void huge_release(wl_segment_t *seg) {
  wl_segment_map_set(huge_block(seg), WL_MAP_NONE);
  wl_osmem_unmap(WL_MEM_HEAP, seg->mapped_base, seg->mapped_size);
}

static void huge_account(int64_t blocks, int64_t bytes) {
  atomic_fetch_add_explicit(&wl_stats.huge_live, blocks, memory_order_relaxed);
  wl_stats_live_add(bytes);
}

static wl_segment_t *huge_remap(wl_segment_t *seg, size_t need);

/* The bytes a block of `need` (header included) keeps of a larger mapping
   when its surplus is given back: a quarter more, room to grow. */
static size_t keep_of(size_t need) { return wl_align_up(need + need / 4, wl_os.page_size); }

/* Take the smallest cached mapping of at least `need` bytes. When none is
   large enough, the largest is grown to `need` (in place, or its pages moved
   by the kernel: wl_os_remap): its resident pages serve the new block and
   only the added tail is faulted in, where a fresh mapping would fault in
   every page while the cached one kept its own resident beside it. A mapping
   larger than keep_of(need) is not trimmed here: the block lends its surplus
   (huge_lend), so a program that frees and mallocs buffers of varying sizes
   reuses the same pages without faulting them in again. */
static wl_segment_t *cache_take(size_t need) {
  if (wl_option(WL_OPT_HUGE_CACHE) <= 0) return NULL; /* nothing is ever cached (wasm: folds away) */
  if (wl_load_relaxed(&cache_count) == 0) return NULL;
  wl_lock(&huge_lock);
  wl_segment_t **best = NULL, **largest = NULL;
  for (wl_segment_t **link = &cache_first; *link != NULL; link = &(*link)->next) {
    size_t have = (*link)->mapped_size;
    if (have >= need && (best == NULL || have < (*best)->mapped_size)) best = link;
    if (largest == NULL || have > (*largest)->mapped_size) largest = link;
  }
  if (best == NULL && wl_os.can_remap) best = largest;
  wl_segment_t *seg = NULL;
  if (best != NULL) {
    seg = *best;
    *best = seg->next;
    wl_fetch_sub(&cache_count, 1);
    cache_bytes -= seg->mapped_size;
  }
  wl_unlock(&huge_lock);
  if (seg == NULL || seg->mapped_size >= need) return seg;
  wl_segment_t *grown = huge_remap(seg, need);
  if (grown == NULL) huge_release(seg);
  return grown;
}

/* A live huge block whose mapping is larger than keep_of its size (taken
   from the cache) lends the surplus pages: they stay mapped, resident, past
   the block's usable end, on the lent list, until the cache delay passes
   (wl_huge_cache_collect trims them then, or at once under memory pressure)
   or the block is freed or reallocated first (the whole mapping then goes on
   as before: to the cache, or grown in place). The list holds at most
   WALLOC_HUGE_CACHE blocks, the lent bytes at most WL_HUGE_CACHE_BYTES
   together with the cache; past that a surplus is trimmed at once. A lent
   block's mapped_size changes only under huge_lock, which its free and
   realloc take to unlend it first. */
static wl_segment_t *lent_first;
static _Atomic(size_t) lent_count; /* read without the lock only as a hint */
static size_t lent_bytes;

static void lent_unlink(wl_segment_t *seg) {
  for (wl_segment_t **link = &lent_first; *link != NULL; link = &(*link)->next) {
    if (*link == seg) {
      *link = seg->next;
      break;
    }
  }
  wl_fetch_sub(&lent_count, 1);
  lent_bytes -= seg->mapped_size;
  seg->huge_lent = 0;
}

/* Give back what seg maps beyond its block's keep (seg is ours: unlent, or under huge_lock). */
static void huge_trim(wl_segment_t *seg) {
  size_t keep = keep_of(seg->huge_offset + seg->huge_size);
  if (seg->mapped_size > keep && wl_osmem_resize(WL_MEM_HEAP, seg, seg->mapped_size, keep)) {
    seg->mapped_size = keep;
  }
}

static void huge_lend(wl_segment_t *seg) {
  seg->cache_expire = wl_os_clock_ms() + wl_max(0, wl_option(WL_OPT_HUGE_CACHE_DELAY));
  wl_lock(&huge_lock);
  bool room = wl_load_relaxed(&lent_count) < (size_t)wl_option(WL_OPT_HUGE_CACHE) &&
              lent_bytes + cache_bytes + seg->mapped_size <= WL_HUGE_CACHE_BYTES;
  if (room) {
    seg->huge_lent = 1;
    seg->next = lent_first;
    lent_first = seg;
    wl_fetch_add(&lent_count, 1);
    lent_bytes += seg->mapped_size;
  }
  wl_unlock(&huge_lock);
  if (!room) huge_trim(seg);
}

/* Take seg's surplus off the lent list, if it is there. Always under the
   lock, never after a look at lent_count: the collector may have trimmed the
   block's mapping and unlisted it a moment ago, and only the lock makes its
   new mapped_size visible here (a block freed right after its trim was
   cached with its old size, and the next one taken from it ran past the
   mapping's end: valgrind saw the write, TSan the race). */
static void huge_unlend(wl_segment_t *seg) {
  if (WL_HUGE_NEVER_CACHED) return;
  wl_lock(&huge_lock);
  if (seg->huge_lent) lent_unlink(seg);
  wl_unlock(&huge_lock);
}

void *wl_huge_alloc(size_t size, size_t align, bool zero) {
  if (size > WL_MAX_ALLOC) return NULL;
  size_t page = wl_os.page_size;
  size_t offset = wl_max(WL_HUGE_HEADER, align);     /* block start minus header */
  unsigned map_value = WL_MAP_HUGE;
  if (align >= WL_HUGE_ALIGN) {
    offset = WL_HUGE_ALIGN;
    map_value = WL_MAP_HUGE_PREV;
  }
  /* at least one byte: a mapping of exactly `offset` bytes would put the
     block just past its end, in someone else's memory (for HUGE_PREV the next
     4 MiB, whose map byte this allocation would then overwrite) */
  size_t need = wl_align_up(offset + wl_max(size, 1), page);
  wl_segment_t *seg = map_value == WL_MAP_HUGE && offset == WL_HUGE_HEADER ? cache_take(need) : NULL;
  bool is_zero = false;
  if (seg != NULL) {
    wl_fetch_add(&wl_stats.huge_cache_hits, 1);
  } else {
    /* header at a WL_HUGE_ALIGN boundary, or (HUGE_PREV) the block at an `align` boundary */
    size_t a = map_value == WL_MAP_HUGE_PREV ? align : WL_HUGE_ALIGN;
    size_t off = map_value == WL_MAP_HUGE_PREV ? WL_HUGE_ALIGN % a : 0;
    seg = wl_segment_os_alloc(need, a, off, &is_zero);
    if (seg == NULL) return NULL;
    seg->mapped_base = seg;
    seg->mapped_size = need;
  }
  seg->kind = WL_SEGMENT_HUGE;
  seg->map_value = map_value;
  seg->huge_offset = offset;
  size_t keep = keep_of(need);
  bool lend = wl_option(WL_OPT_HUGE_CACHE) > 0 && seg->mapped_size > keep; /* from the cache only */
  seg->huge_size = (lend ? keep : seg->mapped_size) - offset;
  seg->huge_in_cache = 0;
  seg->huge_lent = 0;
  wl_store_relaxed(&seg->tid, 0);
  wl_segment_map_set(huge_block(seg), map_value);
  wl_fetch_add(&wl_stats.huge_allocs, 1);
  huge_account(1, (int64_t)seg->huge_size);
  if (zero && !is_zero) memset(huge_block(seg), 0, size);
  if (lend) huge_lend(seg); /* last: from here on, mapped_size is the list's */
  return huge_block(seg);
}

/* p is the huge block of seg, live (the caller checked: free.c). */
void wl_huge_free(wl_segment_t *seg, void *p) {
  wl_assert(!seg->huge_in_cache && (uint8_t *)p == huge_block(seg));
  WL_UNUSED(p);
  huge_account(-1, -(int64_t)seg->huge_size);
  huge_unlend(seg);
  long max = wl_option(WL_OPT_HUGE_CACHE);
  if (seg->map_value != WL_MAP_HUGE || seg->huge_offset != WL_HUGE_HEADER || max <= 0 ||
      seg->mapped_size > WL_HUGE_CACHE_ENTRY) {
    huge_release(seg);
    return;
  }
  seg->huge_in_cache = 1;
  seg->cache_expire = wl_os_clock_ms() + wl_max(0, wl_option(WL_OPT_HUGE_CACHE_DELAY));
  wl_segment_t *evict = NULL;
  wl_lock(&huge_lock);
  seg->next = cache_first;
  cache_first = seg;
  cache_bytes += seg->mapped_size;
  wl_fetch_add(&cache_count, 1);
  while (wl_load_relaxed(&cache_count) > (size_t)max || cache_bytes > WL_HUGE_CACHE_BYTES) { /* drop the oldest */
    wl_segment_t **link = &cache_first;
    while ((*link)->next != NULL) link = &(*link)->next;
    wl_segment_t *old = *link;
    *link = NULL;
    wl_fetch_sub(&cache_count, 1);
    cache_bytes -= old->mapped_size;
    old->next = evict;
    evict = old;
  }
  wl_unlock(&huge_lock);
  while (evict != NULL) {
    wl_segment_t *next = evict->next;
    huge_release(evict);
    evict = next;
  }
}

void wl_huge_cache_collect(int64_t now, bool force) {
  if (WL_HUGE_NEVER_CACHED) return; /* not the current value: what was cached before must still go */
  if (wl_load_relaxed(&cache_count) == 0 && wl_load_relaxed(&lent_count) == 0) return;
  if (force) wl_lock(&huge_lock); /* trim or memory pressure: none may be skipped (no caller holds it) */
  else if (!wl_lock_try(&huge_lock)) return;
  wl_segment_t *release = NULL;
  for (wl_segment_t **link = &cache_first; *link != NULL;) {
    wl_segment_t *seg = *link;
    if (force || seg->cache_expire <= now) {
      *link = seg->next;
      wl_fetch_sub(&cache_count, 1);
      cache_bytes -= seg->mapped_size;
      seg->next = release;
      release = seg;
    } else {
      link = &seg->next;
    }
  }
  for (wl_segment_t **link = &lent_first; *link != NULL;) {
    wl_segment_t *seg = *link;
    if (force || seg->cache_expire <= now) {
      lent_unlink(seg); /* *link is now the next one */
      huge_trim(seg);   /* under the lock: the block's owner may free it meanwhile */
    } else {
      link = &seg->next;
    }
  }
  wl_unlock(&huge_lock);
  while (release != NULL) {
    wl_segment_t *next = release->next;
    huge_release(release);
    release = next;
  }
}

/* Grow (or shrink) the mapping behind a huge block to `need` bytes without
   copying. Returns the (possibly moved) header, or NULL when it cannot. */
static wl_segment_t *huge_remap(wl_segment_t *seg, size_t need) {
  if (wl_osmem_resize(WL_MEM_HEAP, seg, seg->mapped_size, need)) {
    seg->mapped_size = need;
    return seg;
  }
  if (!wl_os.can_remap || need < seg->mapped_size) return NULL;
  /* The target is mapped readable and writable rather than only reserved:
     the kernel replaces it either way (valgrind's view of the grown part:
     wl_os_remap). */
  void *dst = wl_osmem_map(WL_MEM_HEAP, need, WL_HUGE_ALIGN, 0, NULL);
  if (dst == NULL) return NULL;
  /* The move frees the old range at once, and another thread may map a
     block there before this one goes on: the old map byte is cleared
     before the move (and set again if it fails), never after, or it would
     be that block's byte. The block being moved is the caller's, so no
     one looks it up meanwhile. */
  wl_segment_map_set(seg, WL_MAP_NONE);
  if (!wl_in_map((uintptr_t)dst, need) || !wl_osmem_remap(WL_MEM_HEAP, seg, seg->mapped_size, dst, need)) {
    wl_segment_map_set(seg, WL_MAP_HUGE);
    wl_osmem_unmap(WL_MEM_HEAP, dst, need);
    return NULL;
  }
  wl_segment_t *moved = dst;
  moved->mapped_base = moved;
  moved->mapped_size = need;
  wl_segment_map_set(moved, WL_MAP_HUGE);
  return moved;
}

/* p is the huge block of seg, live (the caller checked: alloc.c). */
void *wl_huge_realloc(wl_segment_t *seg, void *p, size_t size) {
  wl_assert(!seg->huge_in_cache && (uint8_t *)p == huge_block(seg));
  huge_unlend(seg);
  size_t old = seg->huge_size;
  if (size <= WL_LARGE_MAX || seg->map_value != WL_MAP_HUGE) {
    if (size <= old && size > WL_LARGE_MAX) return p; /* aligned huge block that still fits */
  } else {
    size_t need = wl_align_up(seg->huge_offset + size, wl_os.page_size);
    if (need <= seg->mapped_size && need >= seg->mapped_size / 2) { /* fits: the whole mapping is the block's */
      if (!WL_HUGE_NEVER_CACHED) { /* a block that lent a surplus was smaller */
        seg->huge_size = seg->mapped_size - seg->huge_offset;
        wl_stats_live_add((int64_t)seg->huge_size - (int64_t)old);
      }
      return p;
    }
    if (need > seg->mapped_size) { /* room to grow again without a system call */
      need = wl_align_up(need + need / 8, wl_os.page_size);
    }
    wl_segment_t *moved = huge_remap(seg, need);
    if (moved != NULL) {
      moved->huge_size = moved->mapped_size - moved->huge_offset;
      wl_stats_live_add((int64_t)moved->huge_size - (int64_t)old);
      return huge_block(moved);
    }
  }
  void *q = wl_malloc_also(size);
  if (q == NULL) return NULL;
  memcpy(q, p, wl_min(old, size));
  wl_huge_free(seg, p);
  return q;
}
