/* fuzz_tiers.c: drives random sequences of the tiered API and checks its
 * invariants against a model.
 *
 * Built as a libFuzzer target when the compiler has libFuzzer (clang), and
 * otherwise with the standalone driver (tests/fuzz_driver.c), which feeds it
 * pseudo-random inputs from a seed: `fuzz-tiers RUNS [SEED]`. Either way
 * the test suite runs it for a bounded time (tests/meson.build).
 *
 * Invariants checked:
 *  - a handle the model says is live reads back exactly what was last
 *    written through it, has at least its requested size, and converts to
 *    a pointer and back to the same block;
 *  - after a reset (or a compaction keeping nothing), every handle of that
 *    tier is stale: reads, writes and deallocations say WALLOC_ERR_STALE;
 *  - deallocating twice says WALLOC_ERR_STALE;
 *  - after a compaction keeping a random prefix, every handle either still
 *    reads its data or is stale: no call ever returns someone else's bytes;
 *  - forged handles and out-of-bounds ranges never succeed and never crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "walloc.h"

#define SLOTS 64

typedef struct model_slot {
  walloc_handle h;
  size_t size;
  uint8_t fill;   /* every byte of the block's first `size` bytes */
  int tier;
  bool live;      /* certainly live */
  bool maybe;     /* live unless a compaction reclaimed it */
} model_slot;

static model_slot model[SLOTS];

/* Handles deallocated lately: they must stay stale, even when their block is
   handed out again (until its 6-bit version could wrap: 60 allocations). */
#define GRAVES 16
static struct { walloc_handle h; unsigned long at; } graves[GRAVES];
static unsigned long allocations;

static void bury(walloc_handle h) {
  static unsigned next;
  graves[next % GRAVES].h = h;
  graves[next % GRAVES].at = allocations;
  next++;
}

static void fail(const char *what, int i) {
  fprintf(stderr, "fuzz-tiers: invariant broken: %s (slot %d, handle %llx)\n", what, i,
          (unsigned long long)(i >= 0 ? model[i].h : 0));
  abort();
}

static bool block_holds(walloc_handle h, size_t size, uint8_t fill) {
  static uint8_t buf[1 << 16];
  size_t n = size < sizeof buf ? size : sizeof buf;
  if (walloc_read_data(h, 0, buf, n) != WALLOC_OK) return false;
  for (size_t i = 0; i < n; i++) {
    if (buf[i] != fill) return false;
  }
  return true;
}

static void check_live(int i) {
  model_slot *m = &model[i];
  if (walloc_handle_size(m->h) < m->size) fail("live handle lost its size", i);
  if (!block_holds(m->h, m->size, m->fill)) fail("live handle does not read back its data", i);
  void *p = walloc_handle_to_ptr(m->h);
  if (p == NULL || walloc_ptr_to_handle(p) == WALLOC_NULL_HANDLE) fail("pointer round trip", i);
  if (walloc_handle_to_ptr(walloc_ptr_to_handle(p)) != p) fail("pointer round trip lands elsewhere", i);
}

static void check_stale(int i) {
  uint8_t b = 0;
  if (walloc_handle_to_ptr(model[i].h) != NULL) fail("stale handle gives a pointer", i);
  if (walloc_read_data(model[i].h, 0, &b, 1) != WALLOC_ERR_STALE) fail("stale handle is not stale", i);
  if (walloc_write_data(model[i].h, 0, &b, 1) != WALLOC_ERR_STALE) fail("stale handle accepts a write", i);
}

static void forget(int i) { memset(&model[i], 0, sizeof model[i]); }

static void check_graves(void) {
  uint8_t b = 0;
  for (int g = 0; g < GRAVES; g++) {
    if (graves[g].h == 0 || allocations - graves[g].at > 60) continue;
    if (walloc_read_data(graves[g].h, 0, &b, 1) != WALLOC_ERR_STALE || walloc_handle_to_ptr(graves[g].h) != NULL ||
        walloc_deallocate(graves[g].h) != WALLOC_ERR_STALE) {
      fprintf(stderr, "fuzz-tiers: invariant broken: a deallocated handle is usable again (%llx)\n",
              (unsigned long long)graves[g].h);
      abort();
    }
  }
}

static void tier_reclaimed(int tier, bool all) {
  for (int i = 0; i < SLOTS; i++) {
    if (!model[i].h || model[i].tier != tier || !(model[i].live || model[i].maybe)) continue;
    if (all) {
      check_stale(i);
      forget(i);
    } else {
      model[i].live = false;
      model[i].maybe = true;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_reader r = {data, size};
  /* every input starts from empty tiers */
  for (int t = 0; t < 3; t++) walloc_reset_tier((walloc_tier)t);
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].h && model[i].tier == WALLOC_TIER_FALLBACK && model[i].live) walloc_deallocate(model[i].h);
    forget(i);
  }
  memset(graves, 0, sizeof graves);
  while (r.n > 0) {
    unsigned op = (unsigned)fuzz_take(&r, 1) % 10;
    int i = (int)(fuzz_take(&r, 1) % SLOTS);
    model_slot *m = &model[i];
    if (op == 6) memset(graves, 0, sizeof graves); /* a reset may legitimately hand their blocks out again */
    switch (op) {
      case 0:
      case 1: { /* allocate into slot i */
        if (m->h && m->live) {
          if (walloc_deallocate(m->h) != WALLOC_OK) fail("deallocating a live block", i);
          bury(m->h);
        }
        forget(i);
        int tier = (int)(fuzz_take(&r, 1) % 4);
        size_t n = (size_t)fuzz_take(&r, 2) << (fuzz_take(&r, 1) % 6); /* up to ~2 MiB */
        walloc_handle h = walloc_allocate(n, (walloc_tier)tier);
        if (h == WALLOC_NULL_HANDLE) break; /* a full tier is allowed */
        allocations++;
        uint8_t fill = (uint8_t)fuzz_take(&r, 1);
        void *p = walloc_handle_to_ptr(h);
        if (p == NULL) fail("fresh handle has no pointer", -1);
        memset(p, fill, n);
        *m = (model_slot){h, n, fill, tier, true, false};
        break;
      }
      case 2: /* deallocate */
        if (!m->h) break;
        if (m->live) {
          if (walloc_deallocate(m->h) != WALLOC_OK) fail("deallocating a live block", i);
          if (walloc_deallocate(m->h) != WALLOC_ERR_STALE) fail("second deallocation", i);
          bury(m->h);
          forget(i);
        } else if (m->maybe) {
          walloc_status st = walloc_deallocate(m->h);
          if (st != WALLOC_OK && st != WALLOC_ERR_STALE) fail("deallocating a maybe-live block", i);
          forget(i);
        }
        break;
      case 3: { /* write a new fill through the API, in two bounded pieces */
        if (!m->h || !m->live || m->size == 0) break;
        uint8_t fill = (uint8_t)fuzz_take(&r, 1);
        uint8_t *buf = malloc(m->size);
        memset(buf, fill, m->size);
        size_t cut = (size_t)fuzz_take(&r, 2) % m->size;
        if (walloc_write_data(m->h, 0, buf, cut) != WALLOC_OK ||
            walloc_write_data(m->h, cut, buf + cut, m->size - cut) != WALLOC_OK) {
          fail("bounded write refused", i);
        }
        free(buf);
        m->fill = fill;
        break;
      }
      case 4: /* out of bounds, and overflowing ranges */
        if (!m->h || !m->live) break;
        {
          uint8_t b[2];
          size_t usable = walloc_handle_size(m->h);
          if (walloc_write_data(m->h, usable, b, 1) != WALLOC_ERR_BOUNDS) fail("write past the end", i);
          if (walloc_read_data(m->h, SIZE_MAX, b, 2) != WALLOC_ERR_BOUNDS) fail("overflowing read", i);
          if (walloc_read_data(m->h, 1, b, SIZE_MAX) != WALLOC_ERR_BOUNDS) fail("overflowing length", i);
        }
        break;
      case 5: /* check one, and the recently deallocated */
        check_graves();
        if (m->h && m->live) check_live(i);
        if (m->h && m->maybe) { /* compaction: its data or stale, nothing else */
          uint8_t b;
          walloc_status st = walloc_read_data(m->h, 0, &b, 1);
          if (st == WALLOC_OK && m->size > 0 && !block_holds(m->h, m->size, m->fill)) fail("compacted block changed", i);
          if (st != WALLOC_OK && st != WALLOC_ERR_STALE && m->size > 0) fail("compacted block neither", i);
        }
        break;
      case 6: { /* reset or compact a tier */
        int tier = (int)(fuzz_take(&r, 1) % 3);
        uint64_t how = fuzz_take(&r, 3);
        if (how % 4 == 0) {
          if (walloc_reset_tier((walloc_tier)tier) != WALLOC_OK) fail("reset", -1);
          tier_reclaimed(tier, true);
        } else if (how % 4 == 1) {
          if (walloc_fast_compact_tier((walloc_tier)tier, 0) != WALLOC_OK) fail("compact 0", -1);
          tier_reclaimed(tier, true);
        } else {
          if (walloc_fast_compact_tier((walloc_tier)tier, (size_t)how << 4) != WALLOC_OK) fail("compact", -1);
          tier_reclaimed(tier, false);
        }
        break;
      }
      case 7: { /* forged handles: a live one with bits flipped, or noise */
        walloc_handle forged = m->h ? m->h ^ ((uint64_t)1 << (fuzz_take(&r, 1) % 64)) : fuzz_take(&r, 8);
        uint8_t b[4];
        walloc_status st = walloc_read_data(forged, 0, b, sizeof b);
        if (st != WALLOC_OK && st != WALLOC_ERR_STALE && st != WALLOC_ERR_INVALID && st != WALLOC_ERR_BOUNDS) {
          fail("forged handle: unexpected status", i);
        }
        /* a flipped generation bit may name the same live block (still valid
           in that generation): only the offset and version identify it */
        walloc_deallocate(fuzz_take(&r, 8) | ((uint64_t)1 << 62)); /* noise: never a live handle here */
        break;
      }
      case 8: { /* bulk copy between two live blocks, then both hold the source fill */
        int j = (int)(fuzz_take(&r, 1) % SLOTS);
        if (i == j || !m->h || !m->live || !model[j].h || !model[j].live) break;
        size_t n = m->size < model[j].size ? m->size : model[j].size;
        walloc_copy_op op = {model[j].h, 0, m->h, 0, n};
        if (walloc_bulk_copy(&op, 1) != 1) fail("bulk copy between live blocks", i);
        if (n == model[j].size) model[j].fill = m->fill;
        else { /* partial: make the rest agree */
          uint8_t *p = walloc_handle_to_ptr(model[j].h);
          memset(p, m->fill, model[j].size);
          model[j].fill = m->fill;
        }
        break;
      }
      default: { /* statistics stay sane */
        walloc_tier_stats s;
        for (int t = 0; t < 4; t++) {
          if (walloc_tier_stats_get((walloc_tier)t, &s) != WALLOC_OK) fail("stats", -1);
          if (t < 3 && s.used > s.capacity) fail("used beyond capacity", -1);
        }
        break;
      }
    }
  }
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].h && model[i].live) check_live(i);
  }
  return 0;
}
