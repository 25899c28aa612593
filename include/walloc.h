/* walloc.h: the public interface of walloc, a memory allocator for Linux
 * programs, game engines and WebAssembly.
 *
 * Linking libwalloc (or preloading it) also replaces malloc, free and the rest
 * of the C and C++ allocation family; the walloc_ names below reach the same
 * heap directly and add what the C library has no names for.
 * Every function is thread-safe. See docs/ for the design and the options.
 */
#ifndef WALLOC_H
#define WALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define WALLOC_EXPORT __attribute__((visibility("default")))
#define WALLOC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define WALLOC_EXPORT
#define WALLOC_MALLOC_ATTR
#endif

/* ------------------------------------------------------------------------
   Version
   ------------------------------------------------------------------------ */
#define WALLOC_VERSION_MAJOR 0
#define WALLOC_VERSION_MINOR 1
#define WALLOC_VERSION_PATCH 0
#define WALLOC_VERSION_STRING "0.1.0"

WALLOC_EXPORT const char *walloc_version(void);  /* "0.1.0" */

/* ------------------------------------------------------------------------
   The general heap (what malloc uses). Same contracts as the C library:
   NULL with errno ENOMEM when a size cannot be served, every block 16-byte
   aligned, free(NULL) does nothing.
   ------------------------------------------------------------------------ */
WALLOC_EXPORT WALLOC_MALLOC_ATTR void *walloc_malloc(size_t size);             /* like malloc */
WALLOC_EXPORT WALLOC_MALLOC_ATTR void *walloc_calloc(size_t count, size_t size); /* zeroed; ENOMEM on overflow */
WALLOC_EXPORT void *walloc_realloc(void *ptr, size_t size);                    /* like glibc realloc */
WALLOC_EXPORT void walloc_free(void *ptr);                                     /* ignores pointers it does not own */
WALLOC_EXPORT WALLOC_MALLOC_ATTR void *walloc_aligned_alloc(size_t alignment, size_t size); /* EINVAL unless a power of two */
WALLOC_EXPORT size_t walloc_usable_size(const void *ptr);                      /* 0 for NULL or foreign pointers */
WALLOC_EXPORT bool walloc_owns(const void *ptr);                               /* O(1): is ptr a live walloc block? */

/* Give free memory back to the operating system now (force), or only what is
   due (purge delay elapsed). Also settles other threads' pending frees to the
   caller's heap and adopts the memory of exited threads. */
WALLOC_EXPORT void walloc_collect(bool force);

/* ------------------------------------------------------------------------
   Statistics
   ------------------------------------------------------------------------ */
#define WALLOC_HEAP_STATS_VERSION 1

/* Set .size = sizeof(walloc_heap_stats) before the call; newer versions only
   append fields, so older callers keep working. */
typedef struct walloc_heap_stats {
  size_t size;                 /* in: sizeof the caller's struct */
  uint32_t version;            /* out: WALLOC_HEAP_STATS_VERSION */
  uint64_t allocations;        /* blocks ever handed out */
  uint64_t frees;              /* blocks ever given back */
  uint64_t live_blocks;
  uint64_t live_bytes;         /* bytes in live blocks (usable sizes) */
  uint64_t peak_bytes;
  uint64_t mapped_bytes;       /* address space walloc holds from the OS */
  uint64_t peak_mapped_bytes;
  uint64_t purged_bytes;       /* physical memory given back, range kept */
  uint64_t released_bytes;     /* address space unmapped */
  size_t rss_bytes;            /* the process's resident set now */
  size_t peak_rss_bytes;
  uint64_t segments, segments_cached, segments_abandoned, segments_reclaimed;
  uint64_t large_allocations, huge_allocations, huge_cache_hits;
  uint64_t threads, threads_peak;
  uint64_t foreign_frees;      /* frees of pointers walloc does not own (ignored) */
} walloc_heap_stats;

WALLOC_EXPORT void walloc_heap_stats_get(walloc_heap_stats *out);
WALLOC_EXPORT void walloc_stats_print(int fd);  /* the WALLOC_STATS table, to fd */

#ifdef __cplusplus
}
#endif

#endif
