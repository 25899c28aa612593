/* ring.c: frames-in-flight rings (walloc_ring_*).
 *
 * Owns: one block of a tier used as a ring of 128-byte-aligned blocks, and
 * the list of frames not yet retired with where each began. head and tail
 * count bytes ever allocated and ever retired (positions are taken modulo
 * the ring size), so head - tail is the space in use; an allocation that
 * would make it exceed the ring fails instead of overwriting a frame the
 * consumer may still read. A block that would straddle the ring's end
 * starts at its beginning (the skipped tail belongs to the frame).
 * Blocks carry slot entries (allocated, owned, version + 1 over the last
 * block at that offset): retiring a frame clears them, so its handles go
 * stale.
 * Statistics (wl_ring_stats): rings created, and the live ones' count and
 * bytes, as process-wide relaxed counters moved only by create and destroy.
 * Thread safety: every call takes the ring's lock (registered: a fork
 * child finds the ring as the last call left it, never mid-allocation).
 */
#include "lifetimes.h"

#include <string.h>

#define RING_MAGIC 0x52696e67u /* "Ring" */
#define RING_ALIGN ((size_t)128)

typedef struct ring_frame_s {
  uint64_t frame, start;
} ring_frame_t;

struct walloc_ring {
  uint32_t magic;
  unsigned tier;
  wl_lock_t lock;
  uint64_t base, size, gen;       /* the ring: tier offset, bytes, generation */
  size_t block;                   /* bytes of the tier block holding it (size or more) */
  size_t align;                   /* 128, or the tier's granule if larger */
  uint64_t head, tail;
  ring_frame_t *frames;           /* frames not retired, oldest first, as a ring buffer */
  uint32_t first, count, cap;
  bool in_frame, dead;
};

/* Statistics: rings made, and the live ones' count and bytes. */
static struct {
  _Atomic(uint64_t) created, live, bytes;
} ring_stats;

static bool ring_live(walloc_ring *r) {
  if (r->dead) return false;
  if (wl_tier_owned_live(&wl_tiers.tier[r->tier], &r->gen, r->base, r->size)) return true;
  r->dead = true; /* its tier was reset under it */
  return false;
}

/* Clear the slot entries of the ring bytes [from, to) (counters). */
static void ring_clear(walloc_ring *r, uint64_t from, uint64_t to) {
  if (to <= from) return;
  wl_tier_t *t = &wl_tiers.tier[r->tier];
  if (to - from >= r->size) {
    wl_tier_slots_release(t, r->base, r->size);
    return;
  }
  uint64_t a = from % r->size, b = to % r->size;
  if (a < b) {
    wl_tier_slots_release(t, r->base + a, b - a);
  } else {
    wl_tier_slots_release(t, r->base + a, r->size - a);
    if (b > 0) wl_tier_slots_release(t, r->base, b);
  }
}

static walloc_ring *ring_check(walloc_ring *r, const char *what) {
  if (r == NULL || r->magic != RING_MAGIC) {
    wl_fail(WALLOC_ERR_INVALID, what);
    return NULL;
  }
  return r;
}

WL_API walloc_ring *walloc_ring_create(walloc_tier tier, size_t bytes) {
  if ((unsigned)tier >= WL_TIERS || bytes == 0) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_ring_create: a ring needs an arena tier and a size");
    return NULL;
  }
  walloc_status st = wl_tiers_ensure();
  if (st != WALLOC_OK) {
    wl_fail(st, "walloc_ring_create: the tiers could not be set up");
    return NULL;
  }
  wl_tier_t *t = &wl_tiers.tier[tier];
  if (bytes > t->capacity) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_ring_create: larger than the tier");
    return NULL;
  }
  walloc_ring *r = wl_zalloc(sizeof *r);
  if (r == NULL) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_ring_create: no memory for the ring");
    return NULL;
  }
  r->tier = (unsigned)tier;
  r->align = wl_max(RING_ALIGN, wl_tier_granule(t));
  r->size = wl_align_up(bytes, r->align);
  st = wl_tier_block_take((unsigned)tier, r->size, &r->base, &r->gen, &r->block);
  if (st != WALLOC_OK) {
    wl_free(r);
    wl_fail(st, st == WALLOC_ERR_BUDGET ? NULL : "walloc_ring_create: the tier has no room for the ring");
    return NULL;
  }
  wl_lock_init(&r->lock, WL_LEVEL_LIFETIMES);
  r->magic = RING_MAGIC;
  wl_fetch_add(&ring_stats.created, 1);
  wl_fetch_add(&ring_stats.live, 1);
  wl_fetch_add(&ring_stats.bytes, r->size);
  return r;
}

WL_API walloc_status walloc_ring_begin_frame(walloc_ring *ring, uint64_t frame) {
  walloc_ring *r = ring_check(ring, "walloc_ring_begin_frame: not a ring");
  if (r == NULL) return WALLOC_ERR_INVALID;
  walloc_status st = WALLOC_OK;
  wl_lock(&r->lock);
  if (!ring_live(r)) {
    st = WALLOC_ERR_STALE;
  } else if (r->count != 0 && frame <= r->frames[(r->first + r->count - 1) % r->cap].frame) {
    st = WALLOC_ERR_INVALID; /* frames go forward */
  } else {
    if (r->count == r->cap) {
      uint32_t cap = r->cap ? r->cap * 2 : 8;
      ring_frame_t *f = wl_malloc(cap * sizeof *f);
      if (f == NULL) {
        st = WALLOC_ERR_NOMEM;
        goto out;
      }
      for (uint32_t i = 0; i < r->count; i++) f[i] = r->frames[(r->first + i) % r->cap];
      wl_free(r->frames);
      r->frames = f;
      r->first = 0;
      r->cap = cap;
    }
    r->frames[(r->first + r->count) % r->cap] = (ring_frame_t){frame, r->head};
    r->count++;
    r->in_frame = true;
  }
out:
  wl_unlock(&r->lock);
  if (st != WALLOC_OK) wl_fail(st, "walloc_ring_begin_frame: refused (frames must increase; ring alive)");
  return st;
}

WL_API walloc_handle walloc_ring_allocate(walloc_ring *ring, size_t size) {
  walloc_ring *r = ring_check(ring, "walloc_ring_allocate: not a ring");
  if (r == NULL) return WALLOC_NULL_HANDLE;
  wl_tier_t *t = &wl_tiers.tier[r->tier];
  walloc_status st = WALLOC_OK;
  walloc_handle h = WALLOC_NULL_HANDLE;
  wl_lock(&r->lock);
  if (!r->in_frame) {
    st = WALLOC_ERR_INVALID;
  } else if (!ring_live(r)) {
    st = WALLOC_ERR_STALE;
  } else if (size > r->size) {
    st = WALLOC_ERR_NOMEM;
  } else {
    uint64_t g = wl_tier_granules(t, size);
    uint64_t step = wl_align_up(g << t->granule_shift, r->align);
    uint64_t pos = r->head % r->size;
    uint64_t skip = pos + step > r->size ? r->size - pos : 0;
    if (step > r->size || r->head + skip + step - r->tail > r->size) {
      st = WALLOC_ERR_NOMEM; /* would overrun a frame not yet retired */
    } else {
      r->head += skip;
      uint64_t off = r->base + r->head % r->size;
      r->head += step;
      h = wl_handle_make(t, off, r->gen, wl_slot_own(t, off, g));
    }
  }
  wl_unlock(&r->lock);
  if (h == WALLOC_NULL_HANDLE) {
    wl_fail(st, st == WALLOC_ERR_NOMEM ? NULL : "walloc_ring_allocate: outside a frame, or the ring is gone");
  }
  return h;
}

WL_API void walloc_ring_retire(walloc_ring *ring, uint64_t frame) {
  walloc_ring *r = ring_check(ring, "walloc_ring_retire: not a ring");
  if (r == NULL) return;
  wl_lock(&r->lock);
  uint64_t tail = r->tail;
  while (r->count != 0 && r->frames[r->first].frame <= frame) {
    r->first = (r->first + 1) % r->cap;
    r->count--;
  }
  uint64_t new_tail = r->count != 0 ? r->frames[r->first].start : r->head;
  if (r->count == 0) r->in_frame = false; /* the open frame was retired with the rest */
  if (ring_live(r)) ring_clear(r, tail, new_tail);
  r->tail = new_tail;
  wl_unlock(&r->lock);
}

WL_API void walloc_ring_destroy(walloc_ring *ring) {
  walloc_ring *r = ring_check(ring, "walloc_ring_destroy: not a ring");
  if (r == NULL) return;
  wl_lock(&r->lock);
  r->magic = 0;
  if (ring_live(r)) {
    ring_clear(r, r->tail, r->head);
    wl_tier_block_give(r->tier, r->block, r->base, r->gen);
  }
  wl_unlock(&r->lock);
  wl_fetch_sub(&ring_stats.live, 1);
  wl_fetch_sub(&ring_stats.bytes, r->size);
  wl_lock_fini(&r->lock);
  wl_free(r->frames);
  wl_free(r);
}

void wl_ring_stats(wl_ring_stats_t *out) {
  out->created = wl_load_relaxed(&ring_stats.created);
  out->live = wl_load_relaxed(&ring_stats.live);
  out->bytes = wl_load_relaxed(&ring_stats.bytes);
}
