/* frame.c: per-thread frame arenas (walloc_frame_begin/alloc/end/stats_get).
 *
 * Owns: each thread's frame state (wl_frame_self, TLS) and the chunks it
 * holds. Chunks are mapped through the core's OS door (wl_osmem_map, so they
 * count in walloc_heap_stats mapped_bytes), never from malloc.
 *
 *   chunk: | header (64 B) | objects bumped upwards ...        |
 *   chunks of a thread, in creation order: 64 KiB, 128, 256, 512 KiB,
 *   then 1 MiB each; a frame fills them in that order.
 *
 * Allocation bumps a pointer inside the current chunk (inlined fast path:
 * align, add, compare, store). When the chunk is full the next held chunk is
 * taken, or a new one is mapped (64 KiB << chunks held, at most 1 MiB, or
 * larger up to 1 MiB to fit the request). A request that does not fit a
 * 1 MiB chunk gets a dedicated mapping, released at frame end.
 * walloc_frame_end keeps the regular chunks for the next frame: a steady
 * workload maps nothing after its first frame.
 *
 * Trimming: a chunk that no frame of the last WL_FRAME_TRIM_FRAMES (64)
 * frames allocated from is released at the end of a frame, so a one-off
 * spike does not pin memory forever. The first chunk is used by every frame
 * that allocates and so stays. All chunks go when the thread exits (heap
 * thread-exit hook), also in the middle of a frame.
 *
 * Memory pressure (lib/heap/pressure.c): when the OS refuses memory to this
 * thread, or walloc_collect(true) or malloc_trim runs on it, the chunks no
 * frame in progress uses go back to the OS (the give-back callback); a
 * refused chunk is mapped once more after that give-back. Other threads'
 * chunks are theirs (thread-local) and stay.
 *
 * Statistics: bytes (consumed, alignment padding included) and allocations
 * of the current frame, or of the last ended one between frames; peak_bytes
 * over all frames; chunks held now (dedicated ones included).
 *
 * Contract details: align 0 means 16, other non-powers of two fail with
 * WALLOC_ERR_INVALID; size 0 is served like size 1 (a distinct pointer);
 * impossible sizes fail with WALLOC_ERR_NOMEM; outside a frame every
 * allocation fails with WALLOC_ERR_INVALID. Frames do not nest: a second
 * walloc_frame_begin, and walloc_frame_end outside a frame, are reported
 * and ignored.
 *
 * Debug builds (WL_DEBUG > 0) fill the memory of an ended frame with a
 * poison pattern and check it at the next walloc_frame_begin ("frame memory
 * written after walloc_frame_end"). Under AddressSanitizer ended-frame
 * memory is poisoned and each allocation unpoisons its bytes, so any use
 * after the frame is an ASan error.
 *
 * Thread safety: everything here is the calling thread's own (TLS); no lock
 * and no atomic instruction except the once-only hook and callback
 * registrations.
 */
#include "lifetimes.h"

#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define WL_FRAME_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WL_FRAME_ASAN 1
#endif
#endif
#ifndef WL_FRAME_ASAN
#define WL_FRAME_ASAN 0
#endif

#if WL_FRAME_ASAN
#include <sanitizer/asan_interface.h>
#define WL_NO_ASAN __attribute__((no_sanitize("address")))
#else
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define WL_NO_ASAN
#endif

#define WL_FRAME_CHUNK_MIN   ((size_t)64 << 10)
#define WL_FRAME_CHUNK_MAX   ((size_t)1 << 20)
#define WL_FRAME_HEADER      ((size_t)64)
#define WL_FRAME_FAST_ALIGN  ((size_t)4096)  /* larger alignments take the slow path */
#define WL_FRAME_TRIM_FRAMES 64
#define WL_FRAME_POISON      ((uint64_t)0xF4A3E0F4A3E0F4A3ull)

typedef struct wl_frame_chunk_s {
  struct wl_frame_chunk_s *next;
  size_t size;          /* bytes mapped, header included */
  uint64_t last_frame;  /* the last frame that allocated here */
  uintptr_t used_end;   /* end of this frame's allocations (chunks left behind) */
  uintptr_t poison_end; /* debug builds: extent poisoned at the last frame end */
} wl_frame_chunk_t;
_Static_assert(sizeof(wl_frame_chunk_t) <= WL_FRAME_HEADER, "chunk header fits");

typedef struct wl_frame_thread_s {
  uintptr_t cur, end;         /* bump range; both 0 when no chunk is current */
  size_t allocations;         /* this frame */
  wl_frame_chunk_t *chunk;    /* current chunk (one of `chunks`), or NULL */
  wl_frame_chunk_t *chunks;   /* regular chunks, creation order */
  wl_frame_chunk_t *large;    /* dedicated chunks of this frame */
  size_t bytes_before;        /* this frame's bytes outside the current chunk */
  size_t peak_bytes;
  size_t last_bytes, last_allocations; /* the last ended frame */
  size_t regular, dedicated;  /* chunks held */
  uint64_t frame;             /* frames begun */
  bool in_frame;
  bool registered;
} wl_frame_thread_t;

static __thread wl_frame_thread_t wl_frame_self __attribute__((tls_model("initial-exec")));

WL_INLINE uintptr_t chunk_data(const wl_frame_chunk_t *c) { return (uintptr_t)c + WL_FRAME_HEADER; }
WL_INLINE uintptr_t chunk_end(const wl_frame_chunk_t *c) { return (uintptr_t)c + c->size; }

static void chunk_release(wl_frame_chunk_t *c) {
  size_t size = c->size;
  ASAN_UNPOISON_MEMORY_REGION(c, size);
  wl_osmem_unmap(WL_MEM_FRAMES, c, size);
}

/* ------------------------------------------------------------------------
   Thread exit: every chunk goes back to the OS
   ------------------------------------------------------------------------ */
static void frame_thread_exit(void) {
  wl_frame_thread_t *t = &wl_frame_self;
  wl_frame_chunk_t *lists[2] = {t->chunks, t->large};
  for (int i = 0; i < 2; i++) {
    for (wl_frame_chunk_t *c = lists[i], *next; c != NULL; c = next) {
      next = c->next;
      chunk_release(c);
    }
  }
  memset(t, 0, sizeof *t);
}

static const wl_heap_hooks_t frame_hooks = {frame_thread_exit, NULL};

/* Memory pressure: the calling thread's regular chunks that the frame in
   progress has not allocated from (all of them between frames). No lock,
   no allocation: the thread's own state, consistent wherever the thread
   asks for memory (frame_alloc_slow maps a chunk only between its steps). */
static void frame_give_back(void) {
  wl_frame_thread_t *t = &wl_frame_self;
  wl_frame_chunk_t **link = &t->chunks;
  while (*link != NULL) {
    wl_frame_chunk_t *c = *link;
    if (c == t->chunk || (t->in_frame && c->last_frame == t->frame)) { /* in use */
      link = &c->next;
      continue;
    }
    *link = c->next;
    chunk_release(c);
    t->regular--;
  }
}

static void hooks_add(void) {
  if (!wl_heap_hooks_add(&frame_hooks)) wl_error("frame: no room for the thread-exit hook", NULL);
  if (!wl_give_back_add(frame_give_back)) wl_error("frame: no room for the give-back callback", NULL);
}
WL_ONCE_STATIC(hooks_added, WL_LEVEL_HEAP);

static WL_NOINLINE void frame_register(wl_frame_thread_t *t) {
  wl_process_init();
  wl_heap_get_or_init(); /* the heap's thread-exit hook is what releases this thread's chunks */
  wl_once(&hooks_added, hooks_add);
  t->registered = true;
}

/* ------------------------------------------------------------------------
   Debug poison: written at frame end, checked at the next frame begin
   ------------------------------------------------------------------------ */
/* Also writes the padding between allocations, which ASan holds poisoned:
   not instrumented, and volatile so it stays a loop (not an intercepted memset). */
WL_NO_ASAN static void poison_fill(wl_frame_chunk_t *c, uintptr_t end) {
  uintptr_t p = chunk_data(c);
  end = wl_align_up(end, 8);
  if (end > chunk_end(c)) end = chunk_end(c);
  for (volatile uint64_t *w = (uint64_t *)p; (uintptr_t)w < end; w++) *w = WL_FRAME_POISON;
  c->poison_end = end;
}

/* Reads memory ASan may have poisoned on purpose: not instrumented. */
WL_NO_ASAN static uintptr_t poison_check(const wl_frame_chunk_t *c) {
  for (const volatile uint64_t *w = (const uint64_t *)chunk_data(c); (uintptr_t)w < c->poison_end; w++) {
    if (*w != WL_FRAME_POISON) return (uintptr_t)w;
  }
  return 0;
}

/* ------------------------------------------------------------------------
   Frames
   ------------------------------------------------------------------------ */
WL_API void walloc_frame_begin(void) {
  wl_frame_thread_t *t = &wl_frame_self;
  if (WL_UNLIKELY(t->in_frame)) {
    wl_warn("walloc_frame_begin inside a frame (frames do not nest; ignored)", NULL);
    return;
  }
  if (WL_UNLIKELY(!t->registered)) frame_register(t);
  t->frame++;
  t->in_frame = true;
  t->allocations = 0;
  t->bytes_before = 0;
  if (WL_DEBUG > 0) {
    for (wl_frame_chunk_t *c = t->chunks; c != NULL; c = c->next) {
      uintptr_t bad = poison_check(c);
      if (bad != 0) {
        wl_warn("frame memory written after walloc_frame_end", (const void *)bad);
        break;
      }
    }
  }
  wl_frame_chunk_t *c = t->chunks;
  if (c != NULL) {
    c->last_frame = t->frame;
    t->chunk = c;
    t->cur = chunk_data(c);
    t->end = chunk_end(c);
  }
}

static size_t frame_bytes(const wl_frame_thread_t *t) {
  size_t b = t->bytes_before;
  if (t->chunk != NULL) b += t->cur - chunk_data(t->chunk);
  return b;
}

WL_API void walloc_frame_end(void) {
  wl_frame_thread_t *t = &wl_frame_self;
  if (WL_UNLIKELY(!t->in_frame)) {
    wl_warn("walloc_frame_end outside a frame (ignored)", NULL);
    return;
  }
  size_t bytes = frame_bytes(t);
  if (bytes > t->peak_bytes) t->peak_bytes = bytes;
  t->last_bytes = bytes;
  t->last_allocations = t->allocations;
  if (t->chunk != NULL) t->chunk->used_end = t->cur;
  for (wl_frame_chunk_t *c = t->large, *next; c != NULL; c = next) {
    next = c->next;
    chunk_release(c);
    t->dedicated--;
  }
  t->large = NULL;
  wl_frame_chunk_t **link = &t->chunks;
  while (*link != NULL) {
    wl_frame_chunk_t *c = *link;
    if (c->last_frame == t->frame) {
      uintptr_t used = c->used_end > chunk_data(c) ? c->used_end : chunk_data(c);
      if (WL_DEBUG > 0) poison_fill(c, used);
      ASAN_POISON_MEMORY_REGION((void *)chunk_data(c), used - chunk_data(c));
      c->used_end = chunk_data(c);
    } else if (t->frame - c->last_frame >= WL_FRAME_TRIM_FRAMES) {
      *link = c->next; /* idle for too long: give it back */
      chunk_release(c);
      t->regular--;
      continue;
    }
    link = &c->next;
  }
  t->chunk = NULL;
  t->cur = t->end = 0;
  t->in_frame = false;
}

/* Bump inside [cur, end) if the request fits; 0 if not. */
WL_INLINE uintptr_t bump(uintptr_t cur, uintptr_t end, size_t size, size_t align) {
  uintptr_t p = (cur + (align - 1)) & ~(uintptr_t)(align - 1);
  uintptr_t np = p + size;
  if (p < cur || np <= p || np > end) return 0;
  return p;
}

static wl_frame_chunk_t *chunk_map(size_t size) {
  wl_frame_chunk_t *c = wl_give_back_map(WL_MEM_FRAMES, size, wl_os.page_size, NULL);
  if (c == NULL) return NULL;
  c->next = NULL;
  c->size = size;
  c->last_frame = 0;
  c->used_end = c->poison_end = chunk_data(c);
  ASAN_POISON_MEMORY_REGION((void *)chunk_data(c), size - WL_FRAME_HEADER);
  return c;
}

static WL_NOINLINE void *frame_alloc_slow(size_t size, size_t align) {
  wl_frame_thread_t *t = &wl_frame_self;
  if (WL_UNLIKELY(!t->in_frame)) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_frame_alloc outside a frame");
    return NULL;
  }
  if (align == 0) align = 16;
  if (WL_UNLIKELY(!wl_is_pow2(align))) {
    wl_fail(WALLOC_ERR_INVALID, "walloc_frame_alloc: alignment is not a power of two");
    return NULL;
  }
  if (size == 0) size = 1;
  if (WL_UNLIKELY(size > WL_MAX_ALLOC || align > WL_MAX_ALLOC / 2)) {
    wl_fail(WALLOC_ERR_NOMEM, "walloc_frame_alloc: size or alignment too large");
    return NULL;
  }
  uintptr_t p = t->chunk != NULL ? bump(t->cur, t->end, size, align) : 0;
  if (p != 0) {
    t->cur = p + size;
    goto done;
  }
  size_t need = size + align - 1 + WL_FRAME_HEADER; /* no overflow: both below WL_MAX_ALLOC */
  if (need > WL_FRAME_CHUNK_MAX) {
    /* a dedicated chunk, released at frame end */
    size_t map = wl_align_up(need, wl_os.page_size);
    wl_frame_chunk_t *c = map >= need ? chunk_map(map) : NULL;
    if (c == NULL) {
      wl_fail(WALLOC_ERR_NOMEM, "walloc_frame_alloc: no memory for a large request");
      return NULL;
    }
    c->next = t->large;
    t->large = c;
    t->dedicated++;
    p = wl_align_up(chunk_data(c), align);
    t->bytes_before += size;
    goto done;
  }
  /* leave the current chunk; take the next held one that fits, else map one */
  wl_frame_chunk_t *c;
  for (c = t->chunk != NULL ? t->chunk->next : t->chunks; c != NULL; c = c->next) {
    p = bump(chunk_data(c), chunk_end(c), size, align);
    if (p != 0) break;
  }
  if (c == NULL) {
    size_t grow = t->regular < 5 ? WL_FRAME_CHUNK_MIN << t->regular : WL_FRAME_CHUNK_MAX;
    while (grow < need) grow <<= 1; /* need <= WL_FRAME_CHUNK_MAX here */
    c = chunk_map(grow);
    if (c == NULL) { /* the current chunk stays current */
      wl_fail(WALLOC_ERR_NOMEM, "walloc_frame_alloc: no memory for a chunk");
      return NULL;
    }
    wl_frame_chunk_t **link = &t->chunks; /* append: creation order */
    while (*link != NULL) link = &(*link)->next;
    *link = c;
    t->regular++;
    p = bump(chunk_data(c), chunk_end(c), size, align);
  }
  if (t->chunk != NULL) {
    t->chunk->used_end = t->cur;
    t->bytes_before += t->cur - chunk_data(t->chunk);
  }
  c->last_frame = t->frame;
  t->chunk = c;
  t->cur = p + size;
  t->end = chunk_end(c);
done:
  t->allocations++;
  ASAN_UNPOISON_MEMORY_REGION((void *)p, size);
  return (void *)p;
}

/* The fast path: align 0 becomes 16 without a branch; power-of-two
   alignments up to 4 KiB bump inside the current chunk. Everything else
   (outside a frame, a full chunk, bad arguments) is the slow path's. */
WL_API void *walloc_frame_alloc(size_t size, size_t align) {
  wl_frame_thread_t *t = &wl_frame_self;
  size_t a = align | ((size_t)(align == 0) << 4);
  size_t mask = a - 1;
  if (WL_LIKELY((a & mask) == 0 && mask < WL_FRAME_FAST_ALIGN)) {
    uintptr_t p = (t->cur + mask) & ~(uintptr_t)mask;
    uintptr_t np = p + size;
    if (WL_LIKELY(np > p && np <= t->end)) {
      t->cur = np;
      t->allocations++;
      ASAN_UNPOISON_MEMORY_REGION((void *)p, size);
      return (void *)p;
    }
  }
  return frame_alloc_slow(size, align);
}

WL_API void walloc_frame_stats_get(walloc_frame_stats *out) {
  if (out == NULL) return;
  const wl_frame_thread_t *t = &wl_frame_self;
  size_t bytes = t->in_frame ? frame_bytes(t) : t->last_bytes;
  out->bytes = bytes;
  out->peak_bytes = bytes > t->peak_bytes ? bytes : t->peak_bytes;
  out->allocations = t->in_frame ? t->allocations : t->last_allocations;
  out->chunks = t->regular + t->dedicated;
}
