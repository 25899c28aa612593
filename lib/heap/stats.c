/* stats.c: process-wide statistics and the table WALLOC_STATS prints.
 *
 * Counters live in one global struct of relaxed atomics. Small and medium
 * blocks are counted per page and published on the owner's slow paths (page
 * found, filled, retired), so the malloc and free fast paths pay only one
 * increment; the figures are exact once every thread's pages have been
 * published, and otherwise lag by at most the blocks of one page per size
 * class per thread. Large and huge blocks are counted exactly. Printing uses
 * the allocation-free formatter of the platform layer.
 */
#include "heap.h"
#include "walloc.h"

#include <string.h>

wl_stats_t wl_stats;

static void peak_update(_Atomic(uint64_t) *peak, int64_t value) {
  if (value > 0) wl_peak_raise(peak, (uint64_t)value);
}

void wl_stats_live_add(int64_t bytes) {
  int64_t live = atomic_fetch_add_explicit(&wl_stats.live_bytes, bytes, memory_order_relaxed) + bytes;
  peak_update(&wl_stats.peak_bytes, live);
}

void wl_heap_stats_flush(wl_heap_t *heap) {
  if (heap->stat_large_allocs != 0) wl_fetch_add(&wl_stats.large_allocs, heap->stat_large_allocs);
  if (heap->stat_large_live != 0) {
    atomic_fetch_add_explicit(&wl_stats.large_live, heap->stat_large_live, memory_order_relaxed);
  }
  if (heap->stat_live != 0) wl_stats_live_add(heap->stat_live);
  heap->stat_large_allocs = 0;
  heap->stat_large_live = 0;
  heap->stat_live = 0;
}

/* Publish the calling thread's pages so its figures are exact. */
static void sync_own_heap(void) {
  wl_heap_t *heap = wl_heap_tls;
  if (heap == &wl_heap_empty) return;
  for (size_t bin = 0; bin < WL_BINS; bin++) {
    for (wl_page_t *page = heap->pages[bin].first; page != NULL; page = page->next) wl_page_stats_sync(heap, page);
  }
  wl_heap_stats_flush(heap);
}

static uint64_t u(int64_t v) { return v < 0 ? 0 : (uint64_t)v; }

void walloc_heap_stats_get(walloc_heap_stats *out) {
  if (out == NULL) return;
  size_t size = out->size < sizeof *out && out->size != 0 ? out->size : sizeof *out;
  walloc_heap_stats s;
  memset(&s, 0, sizeof s);
  sync_own_heap();
  uint64_t allocs = 0, live_blocks = 0;
  for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) {
    allocs += wl_load_relaxed(&wl_stats.bins[bin].allocs);
    live_blocks += u(wl_load_relaxed(&wl_stats.bins[bin].live_blocks));
  }
  allocs += wl_load_relaxed(&wl_stats.large_allocs) + wl_load_relaxed(&wl_stats.huge_allocs);
  live_blocks += u(wl_load_relaxed(&wl_stats.large_live)) + u(wl_load_relaxed(&wl_stats.huge_live));
  s.size = size;
  s.version = WALLOC_HEAP_STATS_VERSION;
  s.allocations = allocs;
  s.frees = allocs >= live_blocks ? allocs - live_blocks : 0;
  s.live_blocks = live_blocks;
  s.live_bytes = u(wl_load_relaxed(&wl_stats.live_bytes));
  s.peak_bytes = wl_load_relaxed(&wl_stats.peak_bytes);
  wl_osmem_stats_t os; /* every layer's OS memory (core.h) */
  wl_osmem_stats(&os);
  s.mapped_bytes = os.mapped;
  s.peak_mapped_bytes = os.peak_mapped;
  s.purged_bytes = os.purged;
  s.released_bytes = os.released;
  s.rss_bytes = wl_os_rss(&s.peak_rss_bytes);
  if (s.peak_rss_bytes < s.rss_bytes) s.peak_rss_bytes = s.rss_bytes; /* two kernel sources, read apart */
  s.segments = wl_load_relaxed(&wl_stats.segments);
  s.segments_cached = wl_load_relaxed(&wl_stats.segments_cached);
  s.segments_abandoned = wl_load_relaxed(&wl_stats.segments_abandoned);
  s.segments_reclaimed = wl_load_relaxed(&wl_stats.segments_reclaimed);
  s.large_allocations = wl_load_relaxed(&wl_stats.large_allocs);
  s.huge_allocations = wl_load_relaxed(&wl_stats.huge_allocs);
  s.huge_cache_hits = wl_load_relaxed(&wl_stats.huge_cache_hits);
  s.threads = wl_load_relaxed(&wl_stats.threads);
  s.threads_peak = wl_load_relaxed(&wl_stats.threads_peak);
  s.foreign_frees = wl_load_relaxed(&wl_stats.foreign_frees);
  s.double_frees = wl_load_relaxed(&wl_stats.double_frees);
  s.invalid_frees = wl_load_relaxed(&wl_stats.invalid_frees);
  s.purge_delay_ms = wl_purge_delay();
  memcpy(out, &s, size);
}

static void row(wl_out_t *o, const char *label, uint64_t a, const char *label2, uint64_t b, bool bytes) {
  wl_out_str(o, "  ");
  wl_out_pad(o, label, 16);
  if (bytes) wl_out_size(o, a, 12);
  else wl_out_u64(o, a, 12);
  if (label2 != NULL) {
    wl_out_str(o, "    ");
    wl_out_pad(o, label2, 16);
    if (bytes) wl_out_size(o, b, 12);
    else wl_out_u64(o, b, 12);
  }
  wl_out_char(o, '\n');
}

bool wl_stats_class(size_t bin, wl_class_stats_t *out) {
  out->block_size = wl_bin_size(bin);
  out->allocations = wl_load_relaxed(&wl_stats.bins[bin].allocs);
  out->live_blocks = u(wl_load_relaxed(&wl_stats.bins[bin].live_blocks));
  out->peak_blocks = wl_load_relaxed(&wl_stats.bins[bin].peak_blocks);
  return out->allocations != 0;
}

void wl_stats_big_live(uint64_t *large, uint64_t *huge) {
  *large = u(wl_load_relaxed(&wl_stats.large_live));
  *huge = u(wl_load_relaxed(&wl_stats.huge_live));
}

void wl_stats_print(int fd) {
  walloc_heap_stats s;
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
  char name[64];
  wl_os_program_name(name, sizeof name);
  wl_out_t o;
  wl_out_init(&o, fd);
  wl_out_str(&o, "walloc " WALLOC_VERSION_STRING " statistics: pid ");
  wl_out_u64(&o, (uint64_t)wl_os_pid(), 0);
  wl_out_str(&o, " (");
  wl_out_str(&o, name);
  wl_out_str(&o, ")\n");
  row(&o, "allocations", s.allocations, "frees", s.frees, false);
  row(&o, "live blocks", s.live_blocks, "threads (peak)", s.threads_peak, false);
  row(&o, "in use", s.live_bytes, "peak in use", s.peak_bytes, true);
  row(&o, "mapped", s.mapped_bytes, "peak mapped", s.peak_mapped_bytes, true);
  row(&o, "RSS", s.rss_bytes, "peak RSS", s.peak_rss_bytes, true);
  row(&o, "given back", s.purged_bytes + s.released_bytes, "of it unmapped", s.released_bytes, true);
  if (s.purge_delay_ms >= 0) row(&o, "purge delay ms", (uint64_t)s.purge_delay_ms, "floor ms", (uint64_t)wl_option(WL_OPT_PURGE_DELAY), false);
  row(&o, "segments", s.segments, "cached", s.segments_cached, false);
  row(&o, "abandoned", s.segments_abandoned, "reclaimed", s.segments_reclaimed, false);
  row(&o, "double frees", s.double_frees, "invalid frees", s.invalid_frees, false);
  row(&o, "foreign frees", s.foreign_frees, "huge cache hits", s.huge_cache_hits, false);
  wl_out_str(&o, "  size class    allocations   live blocks   peak blocks    live bytes\n");
  for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) {
    wl_class_stats_t c;
    if (!wl_stats_class(bin, &c)) continue;
    wl_out_size(&o, c.block_size, 12);
    wl_out_u64(&o, c.allocations, 15);
    wl_out_u64(&o, c.live_blocks, 14);
    wl_out_u64(&o, c.peak_blocks, 14);
    wl_out_size(&o, c.live_blocks * c.block_size, 14);
    wl_out_char(&o, '\n');
  }
  uint64_t large_live, huge_live;
  wl_stats_big_live(&large_live, &huge_live);
  wl_out_pad(&o, "  large", 12);
  wl_out_u64(&o, s.large_allocations, 15);
  wl_out_u64(&o, large_live, 14);
  wl_out_str(&o, "             -   (32 KiB - 2 MiB, one span each)\n");
  wl_out_pad(&o, "  huge", 12);
  wl_out_u64(&o, s.huge_allocations, 15);
  wl_out_u64(&o, huge_live, 14);
  wl_out_str(&o, "             -   (over 2 MiB, one mapping each)\n");
  wl_out_flush(&o);
}
