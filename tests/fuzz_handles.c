/* fuzz_handles.c: forges handles and pointers at random, mixed with real
 * allocations, and checks that walloc never trusts them.
 *
 * Built as a libFuzzer target when the compiler has libFuzzer (clang), and
 * otherwise with the standalone driver (tests/fuzz_driver.c), which feeds it
 * pseudo-random inputs from a seed: `fuzz-handles RUNS [SEED]`. Either way
 * the test suite runs it for a bounded time (tests/meson.build). Seeds:
 * tests/fuzz/corpus/handles (an allocation in every tier and each forging
 * recipe; forged headers; huge tails; stale handles around long churns).
 *
 * What is forged: random bits; fallback handles (bit 63) with random or
 * small entries and generations; the old fallback layout (bit 63, a nonce,
 * an address) over addresses of live heap blocks, huge blocks and the
 * unmapped tails of their 4 MiB map entries, freed blocks, canaries and the
 * stack; live handles with a bit flipped; tier handles near live ones;
 * stale handles (deallocated, and then thousands of allocations later);
 * headers written by the caller into ordinary blocks (the old fallback
 * header with a size of 2^40, a live handle, a stale one, noise).
 *
 * Invariants checked:
 *  - a handle either resolves to a block the model says is live, with that
 *    block's size and contents, or every call on it fails with a status
 *    (and handle_to_ptr is NULL, handle_size 0, deallocation refused);
 *  - a resolving fallback handle is exactly the block's own handle, and a
 *    deallocated fallback handle never resolves again, however many
 *    allocations follow (tier handles: within 60 allocations, their 6-bit
 *    version's documented reach);
 *  - walloc_ptr_to_handle answers the null handle except at the start of a
 *    live block, and there a handle of that block;
 *  - nothing outside a block is written: canary heap blocks, the ordinary
 *    blocks holding forged headers (beyond the header) and every live
 *    block keep their bytes.
 *
 * Debug builds report every refused call on stderr (millions here): the
 * calls expected to fail run with stderr on /dev/null, and this harness's
 * own messages and the sanitizers' reports go to the real stderr.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "walloc.h"

#define SLOTS 48
#define GRAVES 64
#define CANARIES 12
#define PLAIN 8
#define HUGE_SIZE ((size_t)3 << 20) /* a huge block: its 4 MiB map entry ends in unmapped space */
#define FB_BIT ((uint64_t)1 << 63)
#define ADDR47 (((uint64_t)1 << 47) - 1)

typedef struct model_block {
  walloc_handle h;
  uint8_t *p;
  size_t size; /* requested; every byte holds fill */
  uint8_t fill;
  int tier;
  bool live;
} model_block;

static model_block model[SLOTS];
static struct { walloc_handle h; unsigned long at; } graves[GRAVES]; /* deallocated handles */
static unsigned graves_next;
static unsigned long allocations;

/* Heap blocks walloc must never write through a handle: canaries (a
   pattern over every byte) and plain blocks (headers forged into their
   first 16 bytes, the pattern after). */
static struct { uint8_t *p; size_t size; uint8_t seed; } canary[CANARIES], plain[PLAIN];
static uint8_t *huge_block;  /* walloc_malloc(HUGE_SIZE), for its tail */
static uintptr_t freed_addr[4];

static uintptr_t stack_addr; /* a local of LLVMFuzzerTestOneInput's frame */
static uint8_t scratch[1 << 16];
static uint8_t poison[1 << 16]; /* what refused writes try to write: 0xA5 */

/* The real stderr, and /dev/null for the calls that are expected to fail. */
static int err_fd = 2, null_fd = -1;
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static void quiet(bool on) {
  if (null_fd >= 0) dup2(on ? null_fd : err_fd, 2);
}

static void fail(const char *what, walloc_handle h) {
  dprintf(err_fd, "fuzz-handles: invariant broken: %s (handle %016llx)\n", what, (unsigned long long)h);
  abort();
}

/* ------------------------------------------------------------------------
   The model's blocks, canaries and plain blocks
   ------------------------------------------------------------------------ */
static uint8_t pattern(size_t i, uint8_t seed) { return (uint8_t)(i * 167u + seed * 31u + (i >> 9)); }

/* Every byte, or for big blocks the first and last 4 KiB and one in 4093. */
static bool bytes_hold(const uint8_t *p, size_t n, size_t from, int fill, uint8_t seed) {
  for (size_t i = from; i < n; i += (i < 4096 || i + 4096 >= n) ? 1 : 4093) {
    if (p[i] != (fill >= 0 ? (uint8_t)fill : pattern(i, seed))) return false;
  }
  return true;
}

static void guards_check(void) {
  for (int i = 0; i < CANARIES; i++) {
    if (canary[i].p != NULL && !bytes_hold(canary[i].p, canary[i].size, 0, -1, canary[i].seed)) {
      fail("a canary block was written", 0);
    }
  }
  for (int i = 0; i < PLAIN; i++) {
    if (plain[i].p != NULL && !bytes_hold(plain[i].p, plain[i].size, 16, -1, plain[i].seed)) {
      fail("a plain block was written beyond its forged header", 0);
    }
  }
}

static model_block *live_at(const void *p) {
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].live && model[i].p == p) return &model[i];
  }
  return NULL;
}

static void check_block(model_block *m) {
  if (walloc_handle_to_ptr(m->h) != m->p) fail("a live handle lost its block", m->h);
  size_t usable = walloc_handle_size(m->h);
  if (usable < m->size || (m->tier == WALLOC_TIER_FALLBACK && usable != m->size)) fail("a live handle's size", m->h);
  if (walloc_write_data(m->h, usable, scratch, 1) != WALLOC_ERR_BOUNDS) fail("a write past a live block's end", m->h);
  if (!bytes_hold(m->p, m->size, 0, m->fill, 0)) fail("a live block's bytes changed", m->h);
  size_t n = m->size < 256 ? m->size : 256;
  if (walloc_read_data(m->h, 0, scratch, n) != WALLOC_OK || !bytes_hold(scratch, n, 0, m->fill, 0)) {
    fail("a live block does not read back", m->h);
  }
  walloc_handle back = walloc_ptr_to_handle(m->p);
  if (back == WALLOC_NULL_HANDLE || walloc_handle_to_ptr(back) != m->p) fail("pointer round trip", m->h);
  if (m->tier == WALLOC_TIER_FALLBACK && back != m->h) fail("a fallback block has another handle", m->h);
}

static void bury(walloc_handle h) {
  graves[graves_next % GRAVES].h = h;
  graves[graves_next % GRAVES].at = allocations;
  graves_next++;
}

static void release(model_block *m) {
  if (walloc_deallocate(m->h) != WALLOC_OK) fail("deallocating a live block", m->h);
  quiet(true);
  if (walloc_deallocate(m->h) != WALLOC_ERR_STALE) fail("a second deallocation", m->h);
  quiet(false);
  bury(m->h);
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------
   Probes
   ------------------------------------------------------------------------ */
static bool refused(walloc_status st) { return st == WALLOC_ERR_STALE || st == WALLOC_ERR_INVALID; }

/* Every call on h: either it names a live block of the model, with its
   size and contents, or each call fails. Returns the block, or NULL. */
static model_block *probe(walloc_handle h) {
  quiet(true);
  uint8_t *p = walloc_handle_to_ptr(h);
  size_t size = walloc_handle_size(h);
  if (p == NULL) {
    if (size != 0) fail("a refused handle has a size", h);
    if (!refused(walloc_read_data(h, 0, scratch, 1))) fail("a refused handle reads", h);
    if (!refused(walloc_write_data(h, 0, poison, sizeof poison))) fail("a refused handle writes 64 KiB", h);
    if (!refused(walloc_write_data(h, 16, poison, 16))) fail("a refused handle writes 16 bytes", h);
    walloc_copy_op op = {h, 0, h, 8, 8};
    if (walloc_bulk_copy(&op, 1) != 0) fail("a refused handle copies", h);
    if (walloc_deallocate(h) == WALLOC_OK) fail("a refused handle was deallocated", h);
    quiet(false);
    return NULL;
  }
  quiet(false);
  model_block *m = live_at(p);
  if (m == NULL) fail("a handle resolves to no live block", h);
  if (size != walloc_handle_size(m->h)) fail("an alias has another size", h);
  if ((h & FB_BIT) != (m->h & FB_BIT)) fail("a handle of one kind names a block of the other", h);
  if ((h & FB_BIT) && h != m->h) fail("a fallback block answers to a second handle", h);
  size_t n = m->size < sizeof scratch ? m->size : sizeof scratch;
  if (walloc_read_data(h, 0, scratch, n) != WALLOC_OK || !bytes_hold(scratch, n, 0, m->fill, 0)) {
    fail("an alias reads other bytes", h);
  }
  memset(scratch, m->fill, n); /* the same bytes back through the alias */
  if (walloc_write_data(h, 0, scratch, n) != WALLOC_OK) fail("an alias refuses a bounded write", h);
  if (walloc_write_data(h, size, scratch, 1) != WALLOC_ERR_BOUNDS) fail("a write past the end", h);
  if (walloc_read_data(h, 1, scratch, SIZE_MAX) != WALLOC_ERR_BOUNDS) fail("an overflowing read", h);
  return m;
}

/* A handle the model says is dead: it must not resolve (handle_to_ptr
   answers for every call, which probe checks on a sample: debug builds
   report each refused call on stderr). */
static bool grave_due(int g) {
  walloc_handle h = graves[g].h;
  /* fallback handles: never again; tier handles: until the block's 6-bit
     version could come round (60 allocations) */
  return h != 0 && ((h & FB_BIT) || allocations - graves[g].at <= 60);
}

static void check_graves(void) {
  quiet(true);
  for (int g = 0; g < GRAVES; g++) {
    if (grave_due(g) && walloc_handle_to_ptr(graves[g].h) != NULL) {
      fail("a deallocated handle resolves again", graves[g].h);
    }
  }
  quiet(false);
}

static void probe_grave(int g) {
  if (!grave_due(g)) return;
  quiet(true);
  void *p = walloc_handle_to_ptr(graves[g].h);
  quiet(false);
  if (p != NULL) fail("a deallocated handle resolves again", graves[g].h);
  probe(graves[g].h);
}

/* walloc_ptr_to_handle(p): null, or at a live block's start a handle of it. */
static void probe_pointer(const void *p) {
  walloc_handle h = walloc_ptr_to_handle(p);
  model_block *m = live_at(p);
  if (h == WALLOC_NULL_HANDLE) {
    if (m != NULL) fail("a live block's pointer has no handle", m->h);
    return;
  }
  if (m == NULL) fail("a pointer that starts no live block has a handle", h);
  if (walloc_handle_to_ptr(h) != p) fail("a pointer's handle names another block", h);
  if (m->tier == WALLOC_TIER_FALLBACK && h != m->h) fail("a fallback pointer's handle is not the block's", h);
}

/* An address of some kind, for old-layout handles and pointer probes. */
static uintptr_t some_address(fuzz_reader *r) {
  unsigned k = (unsigned)fuzz_take(r, 1);
  int i = (int)(fuzz_take(r, 1) % SLOTS);
  uintptr_t tail = ((uintptr_t)huge_block + HUGE_SIZE + 4095) & ~(uintptr_t)4095;
  uintptr_t granule_end = ((uintptr_t)huge_block & ~(uintptr_t)((4u << 20) - 1)) + (4u << 20);
  switch (k % 10) {
    case 0: return model[i].live ? (uintptr_t)model[i].p : (uintptr_t)huge_block;
    case 1: return model[i].live ? (uintptr_t)model[i].p - 16 : stack_addr;
    case 2: return model[i].live ? (uintptr_t)model[i].p + (fuzz_take(r, 2) % (model[i].size + 1)) : tail;
    case 3: return tail + (fuzz_take(r, 2) << 4) % (granule_end > tail ? granule_end - tail : 4096); /* unmapped */
    case 4: return (uintptr_t)huge_block + (fuzz_take(r, 3) % HUGE_SIZE);
    case 5: return freed_addr[fuzz_take(r, 1) % 4];
    case 6: return (uintptr_t)canary[fuzz_take(r, 1) % CANARIES].p + (fuzz_take(r, 1) & 0x30);
    case 7: return (uintptr_t)plain[fuzz_take(r, 1) % PLAIN].p + (fuzz_take(r, 1) & 0x30);
    case 8: return stack_addr;
    default: return (uintptr_t)fuzz_take(r, 6) & ~(uintptr_t)15; /* anywhere */
  }
}

/* A forged handle, by one of several recipes. */
static walloc_handle forge(fuzz_reader *r) {
  int i = (int)(fuzz_take(r, 1) % SLOTS);
  walloc_handle live = model[i].live ? model[i].h : (walloc_handle)fuzz_take(r, 8);
  switch (fuzz_take(r, 1) % 9) {
    case 0: return fuzz_take(r, 8);                                                   /* noise */
    case 1: return FB_BIT | fuzz_take(r, 8);                                          /* fallback noise */
    case 2: return FB_BIT | (fuzz_take(r, 1) % 8) << 28 | (fuzz_take(r, 1) % 64);          /* small entry and generation */
    case 3: return FB_BIT | (fuzz_take(r, 2) & 0xFFFF) << 47 | (some_address(r) & ADDR47); /* the old layout */
    case 4: return live ^ ((uint64_t)1 << (fuzz_take(r, 1) % 64));                    /* one bit off */
    case 5: return (live & ~(uint64_t)0xFFFF) | (fuzz_take(r, 2) & 0xFFF0);           /* near a live offset */
    case 6: return (walloc_handle)some_address(r) & ~FB_BIT;                     /* an address as a tier offset */
    case 7: return graves[fuzz_take(r, 1) % GRAVES].h;                               /* a stale one */
    default: return live + (fuzz_take(r, 1) % 3) - 1;                                 /* off by one */
  }
}

/* ------------------------------------------------------------------------
   Operations
   ------------------------------------------------------------------------ */
static void op_allocate(fuzz_reader *r, model_block *m) {
  if (m->live) release(m);
  int tier = (int)(fuzz_take(r, 1) % 4);
  size_t size = (size_t)fuzz_take(r, 2) >> (fuzz_take(r, 1) % 8); /* below 64 KiB, mostly small */
  if (tier == WALLOC_TIER_FALLBACK && fuzz_take(r, 1) % 32 == 0) size = HUGE_SIZE;
  walloc_handle h = walloc_allocate(size, (walloc_tier)tier);
  if (h == WALLOC_NULL_HANDLE) return; /* a full tier is allowed */
  allocations++;
  uint8_t *p = walloc_handle_to_ptr(h);
  if (p == NULL) fail("a fresh handle has no pointer", h);
  if (live_at(p) != NULL) fail("a fresh block overlaps a live one", h);
  *m = (model_block){h, p, size, (uint8_t)fuzz_take(r, 1), tier, true};
  memset(p, m->fill, size);
}

static void op_write(fuzz_reader *r, model_block *m) {
  if (!m->live || m->size == 0) return;
  uint8_t fill = (uint8_t)fuzz_take(r, 1);
  size_t n = m->size < sizeof scratch ? m->size : sizeof scratch;
  memset(scratch, fill, n);
  for (size_t off = 0; off < m->size; off += n) {
    size_t len = m->size - off < n ? m->size - off : n;
    if (walloc_write_data(m->h, off, scratch, len) != WALLOC_OK) fail("a bounded write refused", m->h);
  }
  m->fill = fill;
}

/* The caller writes 16 bytes at the start of a plain block; the block is
   still no fallback block, and no handle made from it reaches anything. */
static void op_forge_header(fuzz_reader *r) {
  int k = (int)(fuzz_take(r, 1) % PLAIN);
  uint8_t *p = plain[k].p;
  uint64_t words[2];
  int i = (int)(fuzz_take(r, 1) % SLOTS);
  switch (fuzz_take(r, 1) % 4) {
    case 0: { /* the old header: magic "WaLL", state nonce << 1 | 1, size 2^40 */
      uint32_t nonce = (uint32_t)fuzz_take(r, 2);
      uint32_t old[4] = {0x57614c4cu, nonce << 1 | 1u, 0, 1u << 8};
      memcpy(words, old, sizeof words);
      break;
    }
    case 1: words[0] = words[1] = model[i].live ? model[i].h : FB_BIT; break; /* a live handle */
    case 2: words[0] = words[1] = graves[fuzz_take(r, 1) % GRAVES].h; break;       /* a stale one */
    default: words[0] = fuzz_take(r, 8); words[1] = fuzz_take(r, 8); break;
  }
  memcpy(p, words, sizeof words);
  for (uint64_t nonce = 0; nonce < 2; nonce++) {
    probe(FB_BIT | (words[0] >> 1 & 0xFFFF) << 47 | ((uintptr_t)p & ADDR47));
    probe(FB_BIT | nonce << 47 | ((uintptr_t)p & ADDR47));
  }
  probe(words[0]);
  probe_pointer(p + 16);
  probe_pointer(p);
  probe_pointer(p + 32);
}

/* Many fallback allocations in a row: their entries' generations move on,
   and every fallback grave must still be stale. */
static void op_churn(fuzz_reader *r) {
  unsigned n = fuzz_take(r, 1) % 8 == 0 ? (unsigned)(fuzz_take(r, 2) % 2000) : (unsigned)fuzz_take(r, 1) % 32;
  size_t size = (size_t)fuzz_take(r, 1) * 8;
  for (unsigned k = 0; k < n; k++) {
    walloc_handle h = walloc_allocate(size, WALLOC_TIER_FALLBACK);
    if (h == WALLOC_NULL_HANDLE) fail("fallback allocation", h);
    allocations++;
    if (walloc_deallocate(h) != WALLOC_OK) fail("fallback deallocation", h);
    if (k % 256 == 0) bury(h);
  }
  /* and with one live again on a recycled entry */
  walloc_handle h = walloc_allocate(size, WALLOC_TIER_FALLBACK);
  if (h == WALLOC_NULL_HANDLE) fail("fallback allocation", h);
  check_graves();
  if (walloc_deallocate(h) != WALLOC_OK) fail("fallback deallocation", h);
  bury(h);
}

/* ------------------------------------------------------------------------
   One input
   ------------------------------------------------------------------------ */
/* Set up once for the whole run: the huge block (its tail stays unmapped),
   freed addresses, and the canary and plain blocks interleaved. */
static void run_begin(void) {
  err_fd = dup(2);
  null_fd = open("/dev/null", O_WRONLY);
  if (err_fd < 0) err_fd = 2;
  if (err_fd == 2 && null_fd >= 0) { /* no copy of stderr to come back to: stay loud */
    close(null_fd);
    null_fd = -1;
  }
  if (__sanitizer_set_report_fd != NULL) __sanitizer_set_report_fd((void *)(intptr_t)err_fd);
  memset(poison, 0xA5, sizeof poison);
  huge_block = walloc_malloc(HUGE_SIZE);
  if (huge_block == NULL) fail("no huge block", 0);
  for (int i = 0; i < 4; i++) {
    void *f = walloc_malloc((size_t)16 << (i * 4)); /* 16 B, 256 B, 4 KiB, 64 KiB */
    freed_addr[i] = (uintptr_t)f;
    walloc_free(f);
  }
  static const size_t sizes[] = {16, 32, 48, 64, 96, 128, 256, 1024, 4096, 16384, 100 << 10, 40};
  for (int i = 0; i < CANARIES; i++) {
    canary[i].size = sizes[i];
    canary[i].p = walloc_malloc(canary[i].size);
    canary[i].seed = (uint8_t)(i * 7 + 1);
    if (canary[i].p == NULL) fail("no canary", 0);
    for (size_t k = 0; k < canary[i].size; k++) canary[i].p[k] = pattern(k, canary[i].seed);
    if (i < PLAIN) {
      plain[i].size = sizes[i % 6];
      plain[i].p = walloc_malloc(plain[i].size);
      plain[i].seed = (uint8_t)(i * 13 + 5);
      if (plain[i].p == NULL) fail("no plain block", 0);
      for (size_t k = 0; k < plain[i].size; k++) plain[i].p[k] = pattern(k, plain[i].seed);
    }
  }
}

static void input_begin(void) {
  if (huge_block == NULL) run_begin();
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].live && model[i].tier == WALLOC_TIER_FALLBACK) walloc_deallocate(model[i].h);
    memset(&model[i], 0, sizeof model[i]);
  }
  for (int t = 0; t < 3; t++) walloc_reset_tier((walloc_tier)t); /* every tier handle so far goes stale */
  memset(graves, 0, sizeof graves);
}

static void input_end(void) {
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].live) check_block(&model[i]);
  }
  check_graves();
  guards_check();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_reader r = {data, size};
  volatile int local = 0;
  stack_addr = (uintptr_t)&local;
  input_begin();
  while (r.n > 0) {
    unsigned op = (unsigned)fuzz_take(&r, 1) % 10;
    model_block *m = &model[fuzz_take(&r, 1) % SLOTS];
    switch (op) {
      case 0:
      case 1: op_allocate(&r, m); break;
      case 2:
        if (m->live) release(m);
        break;
      case 3: op_write(&r, m); break;
      case 4:
      case 5: {
        model_block *named = probe(forge(&r));
        if (named != NULL && fuzz_take(&r, 1) % 8 == 0) release(named); /* through its own handle */
        break;
      }
      case 6: op_forge_header(&r); break;
      case 7: {
        uintptr_t a = some_address(&r);
        probe_pointer((const void *)a);
        probe(FB_BIT | (fuzz_take(&r, 2) & 0xFFFF) << 47 | (a & ADDR47));
        break;
      }
      case 8: op_churn(&r); break;
      default:
        if (m->live) check_block(m);
        probe_grave((int)(fuzz_take(&r, 1) % GRAVES));
        guards_check();
        break;
    }
  }
  input_end();
  return 0;
}
