/* wasm.c: the platform layer on WebAssembly (wasm32, Emscripten).
 *
 * Design: what differs from Linux.
 * - One linear memory, addressed from 0, that only grows (memory.grow, in
 *   pages of 64 KiB) up to 4 GiB and never shrinks or unmaps. There is no
 *   virtual address space to reserve apart from memory: reserving is
 *   allocating, committing always succeeds, and every address below the
 *   memory's size is readable and writable.
 * - Memory is handed out by a bump pointer over grown memory, starting at the
 *   linker's __heap_base (above the static data and the stack). Growing goes
 *   through emscripten_resize_heap, so Emscripten's JavaScript views
 *   (HEAPU8...) follow the new buffer. Fresh memory reads as zero.
 * - Nothing returns to the host (can_release is false). A released range is
 *   kept here on an address-ordered free list, merged with its neighbours,
 *   and served again by later allocations (then not known to be zero). The
 *   list lives in the released memory itself: no allocation, no table.
 * - No decommit, no purge (both report that nothing was done, so walloc
 *   clears memory itself where it must read as zero), no huge pages, no
 *   remap: huge reallocs grow in place when the block is at the top of the
 *   bump or followed by a free range, else copy.
 * - Handles can be plain addresses: the tiers count handle offsets from 0.
 * - Threads: without -pthread, one thread (id 1), thread-exit hooks never
 *   run. With -pthread (__EMSCRIPTEN_PTHREADS__) a pthread key runs the exit
 *   hook, and the thread id is a thread-local's address. There is no fork.
 * - Output is write(2) (Emscripten's fd_write), the clock CLOCK_MONOTONIC,
 *   the environment Emscripten's (mostly empty under node and browsers).
 * Every function keeps errno as it found it.
 */
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __EMSCRIPTEN__
#include <emscripten/heap.h>
#endif

#define WASM_PAGE ((size_t)64 << 10)

extern unsigned char __heap_base;

void wl_os_init(wl_os_info_t *info) {
  info->page_size = WASM_PAGE;
  info->huge_page_size = 0;
  info->purge_zeroes = false;
  info->can_release = false;
  info->reserve_commits = true;
  info->can_remap = false;
  info->handles_are_addresses = true;
}

/* ------------------------------------------------------------------------
   The bump over grown memory and the free list of released ranges
   ------------------------------------------------------------------------ */
typedef struct free_range_s {
  size_t size;
  struct free_range_s *next; /* higher address */
} free_range_t;

WL_LOCK_STATIC(mem_lock, WL_LEVEL_PLATFORM);
static uintptr_t bump;         /* first address never handed out; 0 before the first call */
static free_range_t *free_first;

static uint64_t memory_bytes(void) { return (uint64_t)__builtin_wasm_memory_size(0) * WASM_PAGE; }

/* Make [0, end) addressable. */
static bool memory_cover(uint64_t end) {
  if (end <= memory_bytes()) return true;
#ifdef __EMSCRIPTEN__
  if (end > (uint64_t)SIZE_MAX) return false;
  return emscripten_resize_heap((size_t)end) && end <= memory_bytes();
#else
  uint64_t pages = (end - memory_bytes() + WASM_PAGE - 1) / WASM_PAGE;
  return __builtin_wasm_memory_grow(0, (size_t)pages) != SIZE_MAX;
#endif
}

/* Put [addr, addr+size) on the free list, merged with its neighbours. */
static void range_free(uintptr_t addr, size_t size) {
  if (size == 0) return;
  free_range_t **link = &free_first;
  free_range_t *prev = NULL;
  while (*link != NULL && (uintptr_t)*link < addr) {
    prev = *link;
    link = &(*link)->next;
  }
  free_range_t *next = *link;
  free_range_t *r = (free_range_t *)addr;
  r->size = size;
  r->next = next;
  if (next != NULL && addr + size == (uintptr_t)next) { /* merge with the one above */
    r->size += next->size;
    r->next = next->next;
  }
  if (prev != NULL && (uintptr_t)prev + prev->size == addr) { /* and the one below */
    prev->size += r->size;
    prev->next = r->next;
  } else {
    *link = r;
  }
}

/* Where in [start, start+avail) a block of `size` bytes with (p + offset)
   aligned to `align` fits, or 0. */
static uintptr_t place(uintptr_t start, uint64_t avail, size_t size, size_t align, size_t offset) {
  uint64_t p = (((uint64_t)start + offset + align - 1) & ~(uint64_t)(align - 1)) - offset;
  if (p < start) p += align;
  if (p - start + size > avail) return 0;
  return (uintptr_t)p;
}

static void *range_alloc(size_t size, size_t align, size_t offset, bool *is_zero) {
  /* best fit on the free list (the smallest range that holds the block, the
     lowest of equals): first fit let big blocks split the big holes that
     later big blocks needed, and memory grew past 1.2 times the live bytes
     on benchmarks/wasm; the head and tail around the block stay free */
  free_range_t **best = NULL, **last = NULL;
  uintptr_t best_p = 0;
  for (free_range_t **link = &free_first; *link != NULL; link = &(*link)->next) {
    free_range_t *r = *link;
    last = link;
    uintptr_t p = place((uintptr_t)r, r->size, size, align, offset);
    if (p != 0 && (best == NULL || r->size < (*best)->size)) {
      best = link;
      best_p = p;
    }
  }
  if (best != NULL) {
    free_range_t *r = *best;
    uintptr_t start = (uintptr_t)r, end = start + r->size;
    *best = r->next;
    range_free(start, best_p - start);
    range_free(best_p + size, end - (best_p + size));
    *is_zero = false;
    return (void *)best_p;
  }
  /* else the bump, starting inside the highest free range when that range
     reaches the bump (the way a top chunk grows): memory above the bump was
     never handed out, so it reads as zero */
  uintptr_t from = bump;
  free_range_t *top = last != NULL ? *last : NULL;
  if (top != NULL && (uintptr_t)top + top->size == bump) from = (uintptr_t)top;
  uintptr_t p = place(from, ((uint64_t)1 << 32) - from, size, align, offset);
  if (p == 0 || !memory_cover((uint64_t)p + size)) return NULL;
  if (from != bump) *last = NULL; /* the top range is the list's last */
  range_free(from, p - from); /* the alignment gap is free for smaller requests */
  *is_zero = from == bump;
  bump = p + size;
  return (void *)p;
}

void *wl_os_alloc(size_t size, size_t align, size_t offset, bool *is_zero) {
  int saved = errno;
  bool zero = false;
  void *p = NULL;
  if (size != 0 && (size & (WASM_PAGE - 1)) == 0 && wl_is_pow2(align) && offset < align) {
    wl_lock(&mem_lock);
    if (bump == 0) bump = wl_align_up((uintptr_t)&__heap_base, WASM_PAGE);
    p = range_alloc(size, wl_max(align, WASM_PAGE), offset, &zero);
    wl_unlock(&mem_lock);
  }
  if (is_zero != NULL) *is_zero = zero;
  errno = saved;
  return p;
}

void *wl_os_reserve(size_t size, size_t align) { return wl_os_alloc(size, align, 0, NULL); }

bool wl_os_commit(void *addr, size_t size) {
  WL_UNUSED(addr); WL_UNUSED(size);
  return true; /* all of memory is accessible */
}

bool wl_os_purge(void *addr, size_t size) {
  WL_UNUSED(addr); WL_UNUSED(size);
  return false; /* nothing done: contents unchanged, so not known to be zero */
}

void wl_os_release(void *addr, size_t size) {
  wl_lock(&mem_lock);
  range_free((uintptr_t)addr, size);
  wl_unlock(&mem_lock);
}

bool wl_os_advise_huge(void *addr, size_t size) {
  WL_UNUSED(addr); WL_UNUSED(size);
  return false;
}

/* Take [from, to) for a growing mapping: from the top of the bump or from a
   free range starting exactly at `from`. */
static bool range_take(uintptr_t from, uintptr_t to) {
  if (from == bump) {
    if (!memory_cover(to)) return false;
    bump = to;
    return true;
  }
  for (free_range_t **link = &free_first; *link != NULL; link = &(*link)->next) {
    free_range_t *r = *link;
    if ((uintptr_t)r > from) return false;
    if ((uintptr_t)r < from) continue;
    uintptr_t end = from + r->size;
    if (end >= to) {
      *link = r->next;
      range_free(to, end - to);
      return true;
    }
    if (end != bump || !memory_cover(to)) return false;
    *link = r->next; /* the free range reaches the bump: take both */
    bump = to;
    return true;
  }
  return false;
}

bool wl_os_resize(void *addr, size_t old_size, size_t new_size) {
  if ((old_size | new_size) & (WASM_PAGE - 1)) return false;
  uintptr_t a = (uintptr_t)addr;
  if ((uint64_t)a + new_size > ((uint64_t)1 << 32)) return false;
  int saved = errno;
  wl_lock(&mem_lock);
  bool ok = true;
  if (new_size < old_size) range_free(a + new_size, old_size - new_size);
  else if (new_size > old_size) ok = range_take(a + old_size, a + new_size);
  wl_unlock(&mem_lock);
  errno = saved;
  return ok;
}

bool wl_os_remap(void *old, size_t old_size, void *dst, size_t new_size) {
  WL_UNUSED(old); WL_UNUSED(old_size); WL_UNUSED(dst); WL_UNUSED(new_size);
  return false; /* no page tables to move pages with */
}

/* ------------------------------------------------------------------------
   Time, threads, process
   ------------------------------------------------------------------------ */
int64_t wl_os_clock_ms(void) {
  int saved = errno;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  errno = saved;
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wl_os_yield(void) { sched_yield(); }

bool wl_os_heavy_barrier(void) { return false; } /* none: callers keep their locks */

#ifdef __EMSCRIPTEN_PTHREADS__
static pthread_key_t thread_key;
static bool thread_key_ok;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static void (*_Atomic thread_exit_hook)(void *);

static void hooks_install(void) {
  thread_key_ok = pthread_key_create(&thread_key, wl_load_acquire(&thread_exit_hook)) == 0;
}

bool wl_os_thread_hooks_init(void (*on_thread_exit)(void *), void (*on_fork_child)(void)) {
  WL_UNUSED(on_fork_child); /* no fork on wasm */
  int saved = errno;
  wl_store_release(&thread_exit_hook, on_thread_exit);
  pthread_once(&hooks_once, hooks_install);
  errno = saved;
  return thread_key_ok;
}

void wl_os_thread_register(void *value) {
  if (thread_key_ok) pthread_setspecific(thread_key, value);
}
#else
/* One thread, which never exits before the program: nothing to hook
   (wl_os_thread_hooks_init is an inline no-op, platform.h). */
void wl_os_thread_register(void *value) { WL_UNUSED(value); }
#endif


/* No exec, so no close-on-exec copy is needed: callers write to fd itself. */
int wl_os_dup(int fd, int min) {
  WL_UNUSED(fd); WL_UNUSED(min);
  return -1;
}

/* Every byte of linear memory is resident as far as anyone can tell, and
   memory never shrinks: both figures are its size. */
size_t wl_os_rss(size_t *peak) {
  uint64_t bytes = memory_bytes();
  size_t rss = bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
  if (peak != NULL) *peak = rss;
  return rss;
}

/* No process table to ask: every module is "wasm". */
void wl_os_program_name(char *buf, size_t len) {
  const char *name = "wasm";
  size_t n = 0;
  for (; name[n] != 0 && n + 1 < len; n++) buf[n] = name[n];
  buf[n] = 0;
}

void wl_os_abort(void) { abort(); }
