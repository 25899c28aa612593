/* heap.c: thread heaps: creation, the thread-exit hand-over, collection,
 * and the repair a fork child needs.
 *
 * Owns: the thread-local heap pointer, the memory heaps themselves live in
 * (taken from the OS in chunks, recycled when threads exit, never from
 * malloc), and the delayed-free list each heap receives from other threads.
 *
 * A thread starts with wl_heap_tls pointing at wl_heap_empty, whose direct
 * slots all hold wl_page_empty, so its first malloc falls into the slow path
 * and creates the real heap here. At thread exit (a pthread key destructor)
 * the heap is abandoned: delayed frees are settled, empty pages returned, and
 * segments still holding live blocks go to the abandoned list for the next
 * thread that needs memory, or that frees their blocks (segment.c). The heap
 * struct is then recycled.
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

wl_page_t wl_page_empty;

wl_heap_t wl_heap_empty = {
  .pages_direct = {[0 ... WL_DIRECT_WSIZE] = &wl_page_empty},
};

__thread wl_heap_t *wl_heap_tls __attribute__((tls_model("initial-exec"))) = &wl_heap_empty;

WL_LOCK_STATIC(heaps_lock, WL_LEVEL_HEAP);
static wl_heap_t *heaps_recycled;   /* heaps of exited threads, ready for reuse (heaps_lock) */
#if !WL_OS_ONE_THREAD
static uint8_t *meta_chunk;
static size_t meta_left;
#endif
static _Atomic(int) os_hooks_done;  /* the thread-exit key and fork handlers are installed */

#define WL_META_CHUNK ((size_t)256 << 10)

/* A slot is counted before it is filled: readers skip one still NULL (its
   hooks are not in yet for them). Atomic: a thread may exit, or fork, while
   another adds hooks. */
static _Atomic(const wl_heap_hooks_t *) hooks[WL_HEAP_HOOKS];
static _Atomic(int) hooks_count;

bool wl_heap_hooks_add(const wl_heap_hooks_t *h) {
  int n = atomic_fetch_add(&hooks_count, 1);
  if (n >= WL_HEAP_HOOKS) {
    atomic_fetch_sub(&hooks_count, 1);
    return false;
  }
  wl_store_release(&hooks[n], h);
  return true;
}

#define FOR_EACH_HOOK(field)                                      \
  for (int i_ = 0; i_ < wl_load_acquire(&hooks_count); i_++) {    \
    const wl_heap_hooks_t *h_ = wl_load_acquire(&hooks[i_]);      \
    if (h_ != NULL && h_->field != NULL) h_->field();             \
  }

/* ------------------------------------------------------------------------
   Heap memory (under heaps_lock)
   ------------------------------------------------------------------------ */
#if WL_OS_ONE_THREAD
/* One thread, which never exits: its heap is a static one (no chunk of
   heap structures, nothing recycled). */
static wl_heap_t *heap_struct_alloc(void) {
  static wl_heap_t main_heap;
  return &main_heap;
}
#else
static wl_heap_t *heap_struct_alloc(void) {
  wl_heap_t *heap = heaps_recycled;
  if (heap != NULL) {
    heaps_recycled = heap->next;
    return heap;
  }
  size_t need = wl_align_up(sizeof(wl_heap_t), WL_CACHE_LINE);
  if (meta_left < need) {
    void *chunk = wl_osmem_map(WL_MEM_HEAP, WL_META_CHUNK, wl_os.page_size, 0, NULL);
    if (chunk == NULL) return NULL;
    meta_chunk = chunk;
    meta_left = WL_META_CHUNK;
  }
  heap = (wl_heap_t *)meta_chunk;
  meta_chunk += need;
  meta_left -= need;
  return heap;
}
#endif

/* wasm: the maintenance clock counts this heap's slow-path calls (one tick
   every WL_WASM_TICK calls) instead of reading the time. Nothing there
   waits for real time (no purge, no caches), but how often the retired
   pages went back depended on where the millisecond boundaries fell, and so
   did the peak: the same program's linear memory ended at 309 or 371 MiB
   from run to run (benchmarks/wasm). Counted, a program behaves the same in
   every run, and skips a JavaScript call to clock_gettime. Per heap, so
   threads (the pthreads variant) count their own calls. Of 1, 4, 16, 64
   and 256, only 256 kept both variants at 309 MiB on benchmarks/wasm's mix
   (the pthreads one ended at 371 MiB with the others; docs/wasm.md). */
#if defined(__wasm__)
#ifndef WL_WASM_TICK
#define WL_WASM_TICK 256
#endif
static int64_t heap_clock(wl_heap_t *heap) { return (int64_t)(heap->maintenance_calls / WL_WASM_TICK); }
#else
static int64_t heap_clock(wl_heap_t *heap) {
  WL_UNUSED(heap);
  return wl_os_clock_ms();
}
#endif

static void heap_init(wl_heap_t *heap) {
  memset(heap, 0, sizeof *heap);
  for (size_t w = 0; w <= WL_DIRECT_WSIZE; w++) heap->pages_direct[w] = &wl_page_empty;
  for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) heap->pages[bin].block_size = wl_bin_size(bin);
  heap->tid = wl_os_thread_id();
  heap->purge_due = INT64_MAX;
  heap->retired_min = UINT8_MAX;
  heap->now = heap_clock(heap);
  heap->in_use = true;
}

/* ------------------------------------------------------------------------
   Thread start and exit
   ------------------------------------------------------------------------ */
/* The platform installs them once, however many threads ask at the same
   time (and again in a child forked meanwhile); the C library may allocate
   there: this thread's heap already works. */
static void install_hooks(void) {
  wl_os_thread_hooks_init(wl_heap_thread_done, wl_heap_fork_child);
  wl_store_release(&os_hooks_done, 1);
}

bool wl_heap_thread_gone(void) { return wl_heap_tls == &wl_heap_empty; }

/* Set when this thread's heap is abandoned at its exit: a free from a
   thread-specific data destructor that runs later must not give the thread
   a new heap (wl_heap_for_reclaim). */
static __thread bool heap_exited __attribute__((tls_model("initial-exec")));

wl_heap_t *wl_heap_for_reclaim(void) {
  return heap_exited && wl_heap_thread_gone() ? NULL : wl_heap_get_or_init();
}

wl_heap_t *wl_heap_get_or_init(void) {
  wl_heap_t *heap = wl_heap_tls;
  if (heap != &wl_heap_empty) return heap;
  wl_process_init();
  wl_lock(&heaps_lock);
  heap = heap_struct_alloc();
  if (heap != NULL) heap_init(heap);
  wl_unlock(&heaps_lock);
  if (heap == NULL) return NULL;
  uint64_t n = wl_fetch_add(&wl_stats.threads, 1) + 1;
  wl_peak_raise(&wl_stats.threads_peak, n);
  wl_fetch_add(&wl_stats.heaps_created, 1);
  wl_heap_tls = heap;
  if (!WL_OS_ONE_THREAD && !wl_load_acquire(&os_hooks_done)) install_hooks(); /* one thread: no hooks */
  wl_os_thread_register(heap);
  return heap;
}

#if defined(__EMSCRIPTEN_PTHREADS__)
/* Emscripten with pthreads allocates each thread's TLS block with
   emscripten_builtin_memalign (emscripten_tls_init) before the thread's
   thread-locals exist: __tls_base is still 0 on a new worker, and on a worker
   reused for another thread it points at the previous thread's freed block.
   wl_heap_tls cannot be read there, so the runtime's own allocations come
   from one heap shared under a lock, reached without any thread-local. Its
   id is its own address, which no thread has: every free of its blocks takes
   the cross-thread path, and it collects them on its next allocation. */
WL_LOCK_STATIC(runtime_lock, WL_LEVEL_HEAP_RUNTIME);
static wl_heap_t *runtime_heap;

void *wl_heap_runtime_alloc(size_t align, size_t size) {
  if (size > WL_MAX_ALLOC || align > WL_MAX_ALLOC / 2) {
    errno = ENOMEM;
    return NULL;
  }
  if (align < WL_MIN_ALIGN) align = WL_MIN_ALIGN;
  size_t rounded = wl_align_up(size == 0 ? 1 : size, align);
  wl_process_init();
  if (align > WL_ALIGN_MAX_PAGE || rounded > WL_LARGE_MAX) {
    void *p = wl_huge_alloc(size, align, false);
    if (p == NULL) errno = ENOMEM;
    return p;
  }
  void *p = NULL;
  wl_lock(&runtime_lock);
  wl_heap_t *heap = runtime_heap;
  if (heap == NULL) {
    wl_lock(&heaps_lock);
    heap = heap_struct_alloc();
    if (heap != NULL) heap_init(heap);
    wl_unlock(&heaps_lock);
    if (heap != NULL) {
      heap->tid = (uintptr_t)heap;
      runtime_heap = heap;
    }
  }
  if (heap != NULL) p = wl_malloc_slow(rounded, heap, false);
  wl_unlock(&runtime_lock);
  if (p == NULL) errno = ENOMEM;
  return p;
}
#endif

void wl_heap_thread_done(void *value) {
  wl_heap_t *heap = value;
  if (heap == NULL || heap == &wl_heap_empty || !heap->in_use) return;
  /* newest first: a module's hook may still call the modules it was
     added after (scopes give chunks back to the tiers), never the reverse */
  for (int i = wl_load_acquire(&hooks_count) - 1; i >= 0; i--) {
    const wl_heap_hooks_t *h = wl_load_acquire(&hooks[i]);
    if (h != NULL && h->thread_exit != NULL) h->thread_exit();
  }
  if (wl_heap_tls == heap) wl_heap_tls = &wl_heap_empty;
  heap_exited = true;
  wl_heap_abandon(heap);
}

/* ------------------------------------------------------------------------
   Delayed frees and collection
   ------------------------------------------------------------------------ */
void wl_heap_delayed_free_all(wl_heap_t *heap) {
  if (WL_OS_ONE_THREAD) return; /* only foreign frees fill the list */
  if (wl_load_relaxed(&heap->thread_delayed_free) == NULL) return;
  wl_block_t *block = wl_exchange(&heap->thread_delayed_free, NULL);
  while (block != NULL) {
    wl_block_t *next = block->next;
    wl_page_t *page = wl_page_of(wl_segment_of(block), block);
    /* the notifying thread still touches the page until it leaves FREEING */
    while (wl_delayed_state(wl_load_acquire(&page->xthread_free)) == WL_DELAYED_FREEING) {
      wl_os_yield();
    }
    wl_free_local(heap, page, block);
    block = next;
  }
}

/* Visit every page of a heap; fn may move or free the page it is given. */
static void heap_foreach_page(wl_heap_t *heap, void (*fn)(wl_heap_t *, wl_page_t *, void *), void *arg) {
  for (size_t bin = 0; bin < WL_BINS; bin++) {
    for (wl_page_t *page = heap->pages[bin].first, *next; page != NULL; page = next) {
      next = page->next;
      fn(heap, page, arg);
    }
  }
}

static void page_collect_fn(wl_heap_t *heap, wl_page_t *page, void *arg) {
  bool force = *(bool *)arg;
  uint32_t used = page->used;
  wl_page_collect(page, force);
  wl_page_stats_sync(heap, page);
  if (page->used == 0) {
    if (force) wl_page_free(heap, page);
    else if (used != 0) wl_page_retire(heap, page); /* just emptied: its delay starts now */
  }
}

void wl_heap_collect(wl_heap_t *heap, bool force) {
  if (heap == &wl_heap_empty) return;
  wl_heap_delayed_free_all(heap);
  if (force) {
    while (wl_segment_reclaim_one(heap)) {}
  }
  heap_foreach_page(heap, page_collect_fn, &force);
  int64_t now = heap->now = heap_clock(heap);
  wl_pages_retired_collect(heap, force);
  wl_large_cache_trim(heap, force);
  wl_heap_stats_flush(heap);
  wl_segments_purge(heap, now, force);
  wl_large_collect(now, force);
  wl_segment_abandoned_collect(now, force);
  wl_segment_cache_collect(now, force);
  wl_huge_cache_collect(now, force);
}

/* Pages of size classes this thread no longer allocates are never searched,
   so frees other threads made into them would stay uncollected and their
   memory held: every WL_SWEEP_MS the slow path collects every page and
   returns the empty ones. */
#define WL_SWEEP_MS 100

void wl_heap_maintenance(wl_heap_t *heap) {
  wl_heap_delayed_free_all(heap);
#if defined(__wasm__)
  heap->maintenance_calls++;
#endif
  int64_t now = heap_clock(heap);
  if (now == heap->now) return; /* the rest runs at most once per clock tick */
  heap->now = now;
  wl_heap_stats_flush(heap);
  if (heap->large_free != NULL) wl_large_cache_trim(heap, false);
  wl_pages_retired_collect(heap, false);
  if (heap->sweep_due <= now) {
    bool force = false;
    heap->sweep_due = now + WL_SWEEP_MS;
    for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) {
      for (wl_page_t *page = heap->pages[bin].first, *next; page != NULL; page = next) {
        next = page->next;
        page_collect_fn(heap, page, &force);
      }
    }
  }
  if (heap->purge_due <= now) wl_segments_purge(heap, now, false);
  wl_large_collect(now, false);
  wl_segment_abandoned_collect(now, false);
  wl_segment_cache_collect(now, false);
  wl_huge_cache_collect(now, false);
}

/* ------------------------------------------------------------------------
   Abandoning and adopting
   ------------------------------------------------------------------------ */
static void page_never_delayed_fn(wl_heap_t *heap, wl_page_t *page, void *arg) {
  WL_UNUSED(heap);
  WL_UNUSED(arg);
  wl_page_set_delayed(page, WL_DELAYED_NEVER, true);
}

static void page_abandon_fn(wl_heap_t *heap, wl_page_t *page, void *arg) {
  WL_UNUSED(arg);
  wl_page_collect(page, true);
  wl_page_stats_sync(heap, page);
  if (page->used == 0) {
    wl_page_free(heap, page);
    return;
  }
  page->next = page->prev = NULL; /* queues are dropped as a whole below */
  wl_page_set_owner(page, 0, page->flags);
  wl_store_release(&page->heap, NULL);
}

void wl_heap_abandon(wl_heap_t *heap) {
  heap_foreach_page(heap, page_never_delayed_fn, NULL);
  wl_heap_delayed_free_all(heap);
  heap_foreach_page(heap, page_abandon_fn, NULL);
  for (size_t bin = 0; bin < WL_BINS; bin++) heap->pages[bin].first = heap->pages[bin].last = NULL;
  wl_large_cache_trim(heap, true);
  wl_heap_stats_flush(heap);
  wl_segments_purge(heap, heap_clock(heap), false); /* what is due; the rest on its schedule (wl_segment_abandoned_collect) */
  while (heap->segments != NULL) wl_segment_abandon(heap, heap->segments);
  heap->in_use = false;
  wl_fetch_sub(&wl_stats.threads, 1);
  wl_lock(&heaps_lock);
  heap->next = heaps_recycled;
  heaps_recycled = heap;
  wl_unlock(&heaps_lock);
}

void wl_heap_adopt_page(wl_heap_t *heap, wl_page_t *page) {
  wl_store_release(&page->heap, heap);
  page->next = page->prev = NULL;
  wl_page_set_owner(page, heap->tid, page->flags & (uint8_t)~WL_PAGE_IN_FULL);
  wl_page_set_delayed(page, WL_DELAYED_NORMAL, true);
  wl_page_collect(page, false);
  wl_page_stats_sync(heap, page);
  if (page->used == 0) {
    wl_segment_page_free(heap, page);
    return;
  }
  wl_page_queue_push(heap, &heap->pages[page->bin], page);
}

/* ------------------------------------------------------------------------
   fork: the child keeps only the forking thread. Every lock was taken
   before fork (platform.h), so the global lists are whole. The other
   threads' heaps may have been in the middle of an operation when fork
   copied them, so the child never touches them: their memory stays where
   it is (copy-on-write, so it costs the child nothing unless touched), and
   the child frees their blocks onto the pages' atomic lists, which is safe
   whatever state the heap was in.
   One lock-free hand-over can leave the forking thread waiting: a foreign
   free that found one of its full pages parks the page in FREEING while it
   pushes the block onto the owner's delayed list (free.c). The owner waits
   for FREEING to end before it touches the page again; in the child the
   freeing thread is gone, so the repair ends it as that thread would have:
   the block is on the delayed list already (collected as usual), or the
   push never happened (that block is lost to the child, one block).
   ------------------------------------------------------------------------ */
static void page_fork_repair_fn(wl_heap_t *heap, wl_page_t *page, void *arg) {
  WL_UNUSED(heap);
  WL_UNUSED(arg);
  uintptr_t tf = wl_load_relaxed(&page->xthread_free);
  if (wl_delayed_state(tf) == WL_DELAYED_FREEING) {
    wl_store_relaxed(&page->xthread_free, wl_delayed_make(wl_delayed_ptr(tf), WL_DELAYED_NORMAL));
  }
}

void wl_heap_fork_child(void) {
  wl_heap_t *heap = wl_heap_tls;
  if (!WL_OS_ONE_THREAD && heap != &wl_heap_empty) heap_foreach_page(heap, page_fork_repair_fn, NULL);
  uint64_t threads = heap != &wl_heap_empty ? 1 : 0;
  if (wl_load_relaxed(&wl_stats.threads) != threads) wl_store_relaxed(&wl_stats.threads, threads); /* no write, no fault, when it is so */
  FOR_EACH_HOOK(fork_child);
}
