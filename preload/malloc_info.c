/* malloc_info.c: glibc's malloc_info(3), answered with walloc's figures.
 *
 * The XML has glibc's shape (<malloc version="1">, one <heap nr="0">, then
 * the totals), so tools that parse glibc's keep working; what the elements
 * hold is walloc's (docs/stats.md): walloc keeps its figures for the whole
 * process, not per arena, so there is one heap; <sizes> lists each size
 * class that ever served a block with the blocks and bytes in use now
 * (glibc lists free chunks, which walloc does not count by class); "fast"
 * is 0 (no fastbins), "rest" the blocks in use, "mmap" the live huge blocks
 * (their bytes are not counted apart: size 0); system and aspace are the
 * bytes mapped from the OS now and at the peak.
 * The document is formatted on the stack with the platform's formatter and
 * handed to the stream in one fwrite: nothing here calls malloc, and the
 * figures are read before the stream (which may allocate its buffer) is
 * touched. glibc only (Emscripten's libc has no malloc_info).
 */
#define _GNU_SOURCE
#include "../lib/heap/heap.h"
#include "walloc.h"

#include <errno.h>
#include <malloc.h>  /* glibc's prototype, to keep this one's in step */
#include <stdio.h>

#ifdef __GLIBC__
static void attr(wl_out_t *o, const char *name, uint64_t v) {
  wl_out_char(o, ' ');
  wl_out_str(o, name);
  wl_out_str(o, "=\"");
  wl_out_u64(o, v, 0);
  wl_out_char(o, '"');
}

/* <total .../> or <system .../> or <aspace .../> */
static void elem(wl_out_t *o, const char *tag, const char *type, const uint64_t *count, uint64_t size) {
  wl_out_char(o, '<');
  wl_out_str(o, tag);
  wl_out_str(o, " type=\"");
  wl_out_str(o, type);
  wl_out_char(o, '"');
  if (count != NULL) attr(o, "count", *count);
  attr(o, "size", size);
  wl_out_str(o, "/>\n");
}

static void totals(wl_out_t *o, const walloc_heap_stats *s, const uint64_t *huge_live) {
  uint64_t zero = 0;
  elem(o, "total", "fast", &zero, 0);
  elem(o, "total", "rest", &s->live_blocks, s->live_bytes);
  if (huge_live != NULL) elem(o, "total", "mmap", huge_live, 0);
  elem(o, "system", "current", NULL, s->mapped_bytes);
  elem(o, "system", "max", NULL, s->peak_mapped_bytes);
  elem(o, "aspace", "total", NULL, s->mapped_bytes);
  elem(o, "aspace", "mprotect", NULL, s->mapped_bytes);
}

WL_API int malloc_info(int options, FILE *fp) {
  if (options != 0 || fp == NULL) {
    errno = EINVAL;
    return -1;
  }
  walloc_heap_stats s;
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
  uint64_t large_live, huge_live;
  wl_stats_big_live(&large_live, &huge_live);
  char buf[16384]; /* 64 classes of about 70 bytes, and the rest: a third of it */
  wl_out_t o;
  wl_out_init_mem(&o, buf, sizeof buf);
  wl_out_str(&o, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
  uint64_t from = 1;
  for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) {
    wl_class_stats_t c;
    bool used = wl_stats_class(bin, &c);
    if (used) {
      wl_out_str(&o, "<size");
      attr(&o, "from", from);
      attr(&o, "to", c.block_size);
      attr(&o, "total", c.live_blocks * c.block_size);
      attr(&o, "count", c.live_blocks);
      wl_out_str(&o, "/>\n");
    }
    from = c.block_size + 1;
  }
  wl_out_str(&o, "</sizes>\n");
  totals(&o, &s, NULL);
  wl_out_str(&o, "</heap>\n");
  totals(&o, &s, &huge_live);
  wl_out_str(&o, "</malloc>\n");
  size_t n = wl_out_end_mem(&o);
  if (n >= sizeof buf) n = sizeof buf - 1; /* cannot happen: the size above has room to spare */
  return fwrite(buf, 1, n, fp) == n ? 0 : -1;
}
#endif
