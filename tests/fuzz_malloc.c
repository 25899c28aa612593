/* fuzz_malloc.c: random sequences of the malloc family, checked against a
 * model of the live blocks.
 *
 * Owns: a model of SLOTS blocks (pointer, request, usable size, alignment,
 * pattern). Every live block holds, over its whole usable size, a stretch of
 * one pseudo-random reference sequence starting at its own offset, so a byte
 * lost, moved or overwritten by another block shows. Each input runs its
 * operations on an empty model and frees everything it allocated.
 *
 * Which names it calls (WL_FUZZ_LIBC_NAMES, set by tests/meson.build):
 *  - built with the standalone driver against libwalloc.so with the malloc
 *    override (the release and debug builds of CI): malloc, free, calloc,
 *    realloc, posix_memalign, aligned_alloc, memalign and malloc_usable_size
 *    themselves, linked as tests/test_malloc.c links them; it checks first
 *    that malloc really is walloc's.
 *  - otherwise walloc_malloc, walloc_free, walloc_calloc, walloc_realloc,
 *    walloc_aligned_alloc and walloc_usable_size. A libFuzzer binary links a
 *    copy of walloc's core built for coverage (tests/meson.build) and no
 *    override: overriding malloc there would run libFuzzer's own allocations
 *    (its corpus, its mutations, its reports) through the allocator under
 *    test, so that a walloc bug would break the fuzzer before the harness
 *    could say what broke; and in the ASan+UBSan build, where libFuzzer runs
 *    in CI, ASan defines malloc in the executable itself, so a call to malloc
 *    reaches ASan's allocator whatever library is linked (that build has
 *    -Doverride=false for this reason). posix_memalign and memalign have no
 *    walloc_ name: those binaries print that they skip them, and the builds
 *    with the override fuzz them.
 *
 * Invariants checked:
 *  - every block is 16-byte aligned, an aligned one at its alignment
 *    (memalign: the next power of two), and its usable size is at least the
 *    request and does not change while it lives; calloc's bytes are zero;
 *  - every live block keeps its pattern: the bytes a realloc keeps (the
 *    smaller of the old and new request) right after each realloc, a block
 *    left alone by an impossible realloc, each block when it is freed, all
 *    of them on request (OP_CHECK) and at the end of each input;
 *  - no two live blocks overlap (each new block against every live one);
 *  - impossible sizes give NULL with errno ENOMEM (posix_memalign: returns
 *    ENOMEM), bad alignments EINVAL, and allocate nothing; a foreign pointer
 *    is ignored by free and refused by realloc, and counted;
 *  - walloc_heap_stats: live blocks and bytes are exactly the model's above
 *    what was live before the input (nothing else allocates meanwhile).
 *  - with WL_FUZZ_MISUSE (below): after each double free, free of an
 *    interior pointer, free of a pointer walloc never handed out and realloc
 *    of a freed block, ignored because WALLOC_MISUSE_ABORT=0, every live
 *    block still holds its pattern, new blocks overlap no live one, the
 *    statistics still match the model and the heap counted the misuse.
 * Thread safety: single-threaded (libFuzzer and the driver run one input at a time).
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "walloc.h"

#if WL_FUZZ_LIBC_NAMES
#define F_MALLOC malloc
#define F_FREE free
#define F_CALLOC calloc
#define F_REALLOC realloc
#define F_ALIGNED_ALLOC aligned_alloc
#define F_USABLE malloc_usable_size
#define F_NAMES "malloc, free, calloc, realloc, posix_memalign, aligned_alloc, memalign, malloc_usable_size"
#else
#define F_MALLOC walloc_malloc
#define F_FREE walloc_free
#define F_CALLOC walloc_calloc
#define F_REALLOC walloc_realloc
#define F_ALIGNED_ALLOC walloc_aligned_alloc
#define F_USABLE walloc_usable_size
#define F_NAMES "walloc_malloc, walloc_free, walloc_calloc, walloc_realloc, walloc_aligned_alloc, walloc_usable_size"
#endif

#define SLOTS 32
#define MAX_REQUEST ((size_t)4 << 20)        /* small, medium, large (to 2 MiB) and huge blocks */
#define MAX_ALIGN_SHIFT 22                   /* alignments up to 4 MiB */
#define PATTERN_SPAN ((size_t)16 << 20)      /* patterns cover usable sizes up to 16 MiB */
#define PATTERN_OFFSETS ((size_t)1 << 16)

typedef struct block {
  uint8_t *p;       /* NULL: the slot is empty */
  size_t request;
  size_t usable;    /* as the allocator said when it handed the block out */
  size_t align;     /* 16, or what an aligned allocation asked for */
  size_t pattern;   /* offset of the block's bytes in `reference` */
} block;

static block model[SLOTS];
static uint8_t reference[PATTERN_SPAN + PATTERN_OFFSETS];
static uint64_t next_pattern;
static int64_t base_blocks, base_bytes; /* the heap's figures before the input */

static void fail(const char *what, int slot, const void *p, size_t at) {
  fprintf(stderr, "fuzz-malloc: invariant broken: %s (slot %d, block %p, byte %zu)\n", what, slot, p, at);
  abort();
}

static walloc_heap_stats heap_stats(void) {
  walloc_heap_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
  return s;
}

static size_t fill_size(const block *b) { return b->usable < PATTERN_SPAN ? b->usable : PATTERN_SPAN; }

/* Pattern bytes [from, fill_size) of block b. */
static void fill(block *b, size_t from) {
  size_t n = fill_size(b);
  if (from < n) memcpy(b->p + from, reference + b->pattern + from, n - from);
}

/* The first mismatch of b's pattern in [0, n), or SIZE_MAX. */
static size_t mismatch(const block *b, size_t n) {
  if (memcmp(b->p, reference + b->pattern, n) == 0) return SIZE_MAX;
  for (size_t i = 0;; i++) {
    if (b->p[i] != reference[b->pattern + i]) return i;
  }
}

/* memcmp by chunks, not a loop of byte compares: a libFuzzer binary traces
   every compare the harness makes (4 MiB of them made it 50 times slower). */
static size_t first_nonzero(const uint8_t *p, size_t n) {
  static const uint8_t zero[1 << 16];
  for (size_t at = 0; at < n; at += sizeof zero) {
    size_t len = n - at < sizeof zero ? n - at : sizeof zero;
    if (memcmp(p + at, zero, len) == 0) continue;
    for (size_t i = at;; i++) {
      if (p[i] != 0) return i;
    }
  }
  return SIZE_MAX;
}

static void check_block(int i) {
  block *b = &model[i];
  size_t usable = F_USABLE(b->p);
  if (usable != b->usable) fail("the usable size of a live block changed", i, b->p, usable);
  size_t at = mismatch(b, fill_size(b));
  if (at != SIZE_MAX) fail("a live block lost its contents", i, b->p, at);
}

static void check_all(void) {
  int64_t blocks = 0, bytes = 0;
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].p == NULL) continue;
    check_block(i);
    blocks++;
    bytes += (int64_t)model[i].usable;
  }
  walloc_heap_stats s = heap_stats();
  if ((int64_t)s.live_blocks - base_blocks != blocks) fail("the heap counts other live blocks than the model", -1, NULL, (size_t)blocks);
  if ((int64_t)s.live_bytes - base_bytes != bytes) fail("the heap counts other live bytes than the model", -1, NULL, (size_t)bytes);
}

/* A new block from the allocator for slot i (empty): check it and fill it. */
static void adopt(int i, void *p, size_t request, size_t align, const char *call) {
  if (p == NULL) fail(call, i, NULL, request); /* "malloc returned NULL" and so on */
  uint8_t *q = p;
  block *b = &model[i];
  *b = (block){q, request, F_USABLE(q), align < 16 ? 16 : align, (size_t)(next_pattern++ * 40503u) % PATTERN_OFFSETS};
  if ((uintptr_t)q % b->align != 0) fail("a block is not aligned", i, q, b->align);
  if (b->usable < request) fail("usable size below the request", i, q, b->usable);
  for (int j = 0; j < SLOTS; j++) {
    if (j != i && model[j].p != NULL && q < model[j].p + model[j].usable && model[j].p < q + b->usable) {
      fail("a new block overlaps a live block", i, q, (size_t)j);
    }
  }
}

/* Free slot i's block, checking first that it is still as it was. */
static void release(int i) {
  check_block(i);
  F_FREE(model[i].p);
  model[i].p = NULL;
}

/* Mostly small sizes: 3 in 4 to 1 KiB, 3 in 16 to 16 KiB, 3 in 64 to 256 KiB,
   1 in 64 to 4 MiB (large blocks to 2 MiB, huge ones above). */
static size_t take_size(fuzz_reader *r) {
  unsigned range = (unsigned)fuzz_take(r, 1) % 64;
  size_t limit = range == 0 ? MAX_REQUEST : range < 4 ? 256 << 10 : range < 16 ? 16 << 10 : 1 << 10;
  return (size_t)fuzz_take(r, 3) % (limit + 1);
}

static size_t take_align(fuzz_reader *r) { return (size_t)1 << (fuzz_take(r, 1) % (MAX_ALIGN_SHIFT + 1)); }

#if WL_FUZZ_LIBC_NAMES
/* posix_memalign's: a power of two and at least sizeof(void *) */
static size_t take_posix_align(fuzz_reader *r) {
  size_t align = take_align(r);
  return align < sizeof(void *) ? sizeof(void *) : align;
}
#endif

/* Sizes no allocator can serve: past PTRDIFF_MAX, or beyond the 47-bit address space. */
static size_t take_impossible(fuzz_reader *r) {
  static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1,
                                 (size_t)1 << 47, ((size_t)1 << 47) + 4096, (size_t)1 << 52, (size_t)1 << 62};
  size_t v = sizes[fuzz_take(r, 1) % (sizeof sizes / sizeof sizes[0])];
  return v - (size_t)(fuzz_take(r, 1) * 16) * (v > ((size_t)1 << 48));
}

static void expect_refused(void *p, int err, const char *call) {
  if (p != NULL) fail(call, -1, p, 0); /* "...: an impossible request was served" */
  if (errno != err) fail(call, -1, NULL, (size_t)errno);
}

/* One impossible request; none may allocate, none may touch a live block. */
static void impossible(fuzz_reader *r, int i) {
  unsigned kind = (unsigned)fuzz_take(r, 1) % 8;
  size_t big = take_impossible(r);
  errno = 0;
  switch (kind) {
    case 0: expect_refused(F_MALLOC(big), ENOMEM, "malloc of an impossible size"); break;
    case 1: { /* count * size overflows */
      size_t size = 2 + (size_t)fuzz_take(r, 2);
      expect_refused(F_CALLOC(SIZE_MAX / size + 1 + (size_t)fuzz_take(r, 1), size), ENOMEM, "calloc overflowing");
      break;
    }
    case 2: expect_refused(F_CALLOC(big >> 20 | 1, (size_t)1 << 20), ENOMEM, "calloc of an impossible size"); break;
    case 3: /* realloc: NULL, and the block is left as it was */
      expect_refused(F_REALLOC(model[i].p, big), ENOMEM, "realloc to an impossible size");
      if (model[i].p != NULL) check_block(i);
      break;
    case 4: { /* an alignment that is not a power of two */
      size_t align = (size_t)fuzz_take(r, 2) | 3;
      expect_refused(F_ALIGNED_ALLOC(align, take_size(r)), EINVAL, "aligned_alloc, alignment not a power of two");
      break;
    }
    case 5: /* a fine alignment and an impossible size, or an impossible alignment */
      expect_refused(F_ALIGNED_ALLOC(take_align(r), big), ENOMEM, "aligned_alloc of an impossible size");
      errno = 0;
      expect_refused(F_ALIGNED_ALLOC((size_t)1 << 62, 16), ENOMEM, "aligned_alloc at 2^62");
      break;
#if WL_FUZZ_LIBC_NAMES
    case 6: { /* posix_memalign returns the error and leaves *out alone */
      void *out = &model[i];
      size_t bad = fuzz_take(r, 1) % 2 ? (size_t)1 << (fuzz_take(r, 1) % 3) : (size_t)fuzz_take(r, 2) | 3;
      if (posix_memalign(&out, bad, take_size(r)) != EINVAL || out != &model[i]) fail("posix_memalign, bad alignment", i, out, bad);
      if (posix_memalign(&out, take_posix_align(r), big) != ENOMEM || out != &model[i]) {
        fail("posix_memalign of an impossible size", i, out, 0);
      }
      break;
    }
    case 7: /* memalign: alignments beyond 2^63 cannot be rounded up to a power of two */
      expect_refused(memalign(((size_t)1 << 63) + 1 + (size_t)fuzz_take(r, 2), 16), EINVAL, "memalign beyond 2^63");
      errno = 0;
      expect_refused(memalign(take_align(r), big), ENOMEM, "memalign of an impossible size");
      break;
#endif
    default: break;
  }
}

/* Pointers walloc never saw: free ignores them, realloc refuses them, both count them. */
static void foreign(fuzz_reader *r) {
  static _Alignas(64) uint8_t outside[256];
  uint8_t *p = outside + (fuzz_take(r, 1) & 0xf0);
  uint64_t before = heap_stats().foreign_frees;
  F_FREE(NULL);
  F_FREE(p);
  if (heap_stats().foreign_frees != before + 1) fail("a foreign free is not counted", -1, p, 0);
  errno = 0;
  if (F_REALLOC(p, 1 + (size_t)fuzz_take(r, 1)) != NULL || errno != EINVAL) fail("realloc of a foreign pointer", -1, p, 0);
  if (F_USABLE(p) != 0 || F_USABLE(NULL) != 0) fail("usable size of a foreign pointer", -1, p, 0);
}

#ifdef WL_FUZZ_MISUSE
/* Misuse the heap promises to catch (issue 15): compiled with
   WL_FUZZ_MISUSE (tests/meson.build: fuzz_misuse). It needs
   WALLOC_MISUSE_ABORT=0 (report and ignore), which tests/meson.build sets
   for the fuzz test. */

/* Bad frees the heap has noticed (foreign frees, of pointers just before or
   past a block that lie outside walloc's memory, are among invalid_frees). */
static uint64_t misuse_count(void) {
  walloc_heap_stats s = heap_stats();
  return s.double_frees + s.invalid_frees;
}

static void misuse_op(fuzz_reader *r, int i, uint8_t *p);

/* walloc reports every misuse on stderr: tens of thousands of lines in one
   run, so stderr goes to /dev/null for the misusing call alone (the counters
   say whether it was seen). */
static void misuse(fuzz_reader *r, int i) {
  block *b = &model[i];
  if (b->p == NULL) return;
  uint64_t before = misuse_count();
  uint8_t *p = b->p;
  fflush(stderr);
  int saved = dup(2), null = open("/dev/null", O_WRONLY);
  if (saved >= 0 && null >= 0) dup2(null, 2);
  misuse_op(r, i, p);
  if (saved >= 0 && null >= 0) dup2(saved, 2);
  if (saved >= 0) close(saved);
  if (null >= 0) close(null);
  if (misuse_count() <= before) fail("misuse went undetected", i, p, 0);
  check_all();
}

static void misuse_op(fuzz_reader *r, int i, uint8_t *p) {
  block *b = &model[i];
  switch (fuzz_take(r, 1) % 4) {
    case 0: /* double free of a block just freed */
      release(i);
      F_FREE(p);
      break;
    case 1: /* an interior pointer of a live block, on or off the 16-byte grid */
      if (b->usable < 2) return;
      F_FREE(p + 1 + (size_t)fuzz_take(r, 3) % (b->usable - 1));
      break;
    case 2: /* a pointer into the block's page that walloc never handed out:
               8 bytes off the grid every block starts on, just past the block
               (the next slot of the page, free or not) or just before it */
      F_FREE(fuzz_take(r, 1) % 2 ? p + b->usable + 8 : p - 8);
      break;
    default: { /* realloc of a freed block: refused (or, if served, a new block) */
      release(i);
      size_t n = 1 + (size_t)fuzz_take(r, 2);
      void *q = F_REALLOC(p, n);
      if (q != NULL) {
        adopt(i, q, n, 16, "");
        fill(b, 0);
      }
      break;
    }
  }
}
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  uint64_t state = 0x5eed;
  for (size_t i = 0; i < sizeof reference; i++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    reference[i] = (uint8_t)(state >> 56);
  }
  printf("fuzz-malloc: fuzzing %s\n", F_NAMES);
#if !WL_FUZZ_LIBC_NAMES
  printf("fuzz-malloc: skipped: posix_memalign and memalign (no walloc_ names; the builds with the "
         "malloc override fuzz them)\n");
#else
  void *p = malloc(24);
  bool ours = walloc_owns(p);
  free(p);
  if (!ours) fail("malloc is not walloc's (is libwalloc.so linked with the override?)", -1, p, 0);
#endif
#ifdef WL_FUZZ_MISUSE
  const char *abort_env = getenv("WALLOC_MISUSE_ABORT");
  if (abort_env == NULL || strcmp(abort_env, "0") != 0) {
    fprintf(stderr, "fuzz-malloc: built with WL_FUZZ_MISUSE: run it with WALLOC_MISUSE_ABORT=0\n");
    exit(2);
  }
  printf("fuzz-malloc: with misuse: double frees, interior and never-handed-out pointers, realloc of freed blocks\n");
#else
  printf("fuzz-malloc: skipped: misuse (double free, interior free, realloc of a freed block): "
         "built without WL_FUZZ_MISUSE\n");
#endif
  fflush(stdout);
  return 0;
}

/* The operations, and how often an input's op byte picks each (in 32nds).
   Without the names or the misuse they need, their share goes to the nearest. */
typedef enum op {
  OP_MALLOC, OP_CALLOC, OP_ALIGNED_ALLOC, OP_POSIX_MEMALIGN, OP_MEMALIGN, OP_REALLOC, OP_FREE,
  OP_REWRITE, OP_IMPOSSIBLE, OP_FOREIGN, OP_CHECK, OP_MISUSE,
} op;
#if !WL_FUZZ_LIBC_NAMES
#define OP_POSIX_MEMALIGN OP_ALIGNED_ALLOC
#define OP_MEMALIGN OP_ALIGNED_ALLOC
#endif
#ifndef WL_FUZZ_MISUSE
#define OP_MISUSE OP_CHECK
#endif
static const uint8_t ops[32] = {
  OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_CALLOC, OP_CALLOC,
  OP_ALIGNED_ALLOC, OP_ALIGNED_ALLOC, OP_ALIGNED_ALLOC, OP_POSIX_MEMALIGN, OP_POSIX_MEMALIGN, OP_MEMALIGN, OP_MEMALIGN,
  OP_REALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOC,
  OP_FREE, OP_FREE, OP_FREE, OP_FREE, OP_FREE,
  OP_REWRITE, OP_IMPOSSIBLE, OP_IMPOSSIBLE, OP_FOREIGN, OP_CHECK, OP_MISUSE,
};

/* realloc of slot i (or of NULL) to a new size, or to 0 (which frees). */
static void reallocate(fuzz_reader *r, int i) {
  block *b = &model[i], old = *b;
  size_t n = fuzz_take(r, 1) % 8 == 0 ? 0 : take_size(r);
  void *q = F_REALLOC(old.p, n);
  b->p = NULL;
  if (n == 0 && old.p != NULL) { /* glibc: frees and returns NULL */
    if (q != NULL) fail("realloc to 0 returned a block", i, q, 0);
    return;
  }
  adopt(i, q, n, 16, "realloc returned NULL");
  if (old.p == NULL) {
    fill(b, 0);
    return;
  }
  b->pattern = old.pattern;
  size_t kept = old.request < n ? old.request : n;
  size_t at = mismatch(b, kept < fill_size(b) ? kept : fill_size(b));
  if (at != SIZE_MAX) fail("realloc did not keep the contents", i, q, at);
  fill(b, kept);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_reader r = {data, size};
  walloc_heap_stats s = heap_stats();
  base_blocks = (int64_t)s.live_blocks;
  base_bytes = (int64_t)s.live_bytes;
  while (r.n > 0) {
    op o = (op)ops[fuzz_take(&r, 1) % 32];
    int i = (int)(fuzz_take(&r, 1) % SLOTS);
    block *b = &model[i];
    if (o <= OP_MEMALIGN && b->p != NULL) release(i); /* the allocating ops need an empty slot */
    switch (o) {
      case OP_MALLOC: {
        size_t n = take_size(&r);
        adopt(i, F_MALLOC(n), n, 16, "malloc returned NULL");
        fill(b, 0);
        break;
      }
      case OP_CALLOC: {
        size_t total = take_size(&r), count = 1 + (size_t)fuzz_take(&r, 1) % 64;
        adopt(i, F_CALLOC(count, total / count), count * (total / count), 16, "calloc returned NULL");
        size_t at = first_nonzero(b->p, b->request);
        if (at != SIZE_MAX) fail("calloc's block is not zeroed", i, b->p, at);
        fill(b, 0);
        break;
      }
      case OP_ALIGNED_ALLOC: {
        size_t align = take_align(&r), n = take_size(&r);
        adopt(i, F_ALIGNED_ALLOC(align, n), n, align, "aligned_alloc returned NULL");
        fill(b, 0);
        break;
      }
#if WL_FUZZ_LIBC_NAMES
      case OP_POSIX_MEMALIGN: {
        void *q = NULL;
        size_t align = take_posix_align(&r), n = take_size(&r);
        int err = posix_memalign(&q, align, n);
        if (err != 0) fail("posix_memalign failed", i, NULL, (size_t)err);
        adopt(i, q, n, align, "posix_memalign gave NULL");
        fill(b, 0);
        break;
      }
      case OP_MEMALIGN: { /* glibc's memalign: any alignment, rounded up to a power of two */
        size_t align = (size_t)fuzz_take(&r, 3) & ((1u << MAX_ALIGN_SHIFT) - 1), n = take_size(&r);
        size_t pow2 = 1;
        while (pow2 < align) pow2 <<= 1;
        adopt(i, memalign(align, n), n, pow2, "memalign returned NULL");
        fill(b, 0);
        break;
      }
#endif
      case OP_REALLOC:
        reallocate(&r, i);
        break;
      case OP_FREE:
        if (b->p != NULL) release(i);
        break;
      case OP_REWRITE:
        if (b->p != NULL) {
          b->pattern = (size_t)fuzz_take(&r, 2);
          fill(b, 0);
        }
        break;
      case OP_IMPOSSIBLE:
        impossible(&r, i);
        break;
      case OP_FOREIGN:
        foreign(&r);
        break;
#ifdef WL_FUZZ_MISUSE
      case OP_MISUSE:
        misuse(&r, i);
        break;
#endif
      default:
        check_all();
        break;
    }
  }
  check_all();
  for (int i = 0; i < SLOTS; i++) {
    if (model[i].p != NULL) release(i);
  }
  s = heap_stats();
  if ((int64_t)s.live_blocks != base_blocks || (int64_t)s.live_bytes != base_bytes) {
    fail("freeing every block did not bring the heap back to where the input began", -1, NULL, 0);
  }
  return 0;
}
