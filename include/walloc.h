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

/* ------------------------------------------------------------------------
   Tiers: memory grouped by use and lifetime, reached through handles.

   A handle is a 64-bit integer (store it, send it, hash it). For the render,
   scene and entity tiers it holds the block's offset from one global base,
   so it stays valid when memory grows; it also carries the tier's
   generation and the block's version, so a handle to a block that a reset,
   a compaction or a deallocation has reclaimed is refused with
   WALLOC_ERR_STALE instead of touching reused memory. docs/tiers.md has the
   details.
   ------------------------------------------------------------------------ */
typedef uint64_t walloc_handle;              /* a global offset, storable as an integer */
#define WALLOC_NULL_HANDLE UINT64_MAX        /* 0 is a valid offset, so null is all ones */

typedef enum walloc_tier {
  WALLOC_TIER_RENDER = 0,   /* GPU-bound data: default 50 % of tier memory, 128-byte aligned */
  WALLOC_TIER_SCENE = 1,    /* scene lifetime: default 30 %, 64-byte aligned */
  WALLOC_TIER_ENTITY = 2,   /* short-lived: default 20 %, 8-byte aligned */
  WALLOC_TIER_FALLBACK = 3, /* the general heap behind malloc */
  WALLOC_TIER_COUNT
} walloc_tier;

typedef enum walloc_status {
  WALLOC_OK = 0,
  WALLOC_ERR_NOMEM,         /* the tier (or the system) has no room */
  WALLOC_ERR_INVALID,       /* a bad argument: unknown tier, null or foreign handle, bad config */
  WALLOC_ERR_BOUNDS,        /* offset and length do not fit inside the block */
  WALLOC_ERR_STALE,         /* the handle's block was reclaimed (reset, compaction, deallocation) */
  WALLOC_ERR_BUDGET,        /* a budget refused the allocation */
  WALLOC_ERR_NOT_FOUND,     /* no such asset */
  WALLOC_ERR_IO,            /* loading failed */
  WALLOC_ERR_UNSUPPORTED    /* not available in this build or on this platform */
} walloc_status;

WALLOC_EXPORT const char *walloc_status_str(walloc_status s); /* "WALLOC_ERR_STALE: ..."; never NULL */

typedef struct walloc_config {
  size_t tier_memory;       /* bytes for the three tiers together; 0 = default */
  unsigned tier_percent[3]; /* render, scene, entity; 0,0,0 = 50,30,20 */
  size_t tier_alignment[3]; /* 0 = 128, 64, 8 */
} walloc_config;

/* Optional, before the first tier allocation; NULL = defaults (and WALLOC_TIERS). */
WALLOC_EXPORT walloc_status walloc_init(const walloc_config *config);

typedef struct walloc_tier_stats {
  size_t capacity, used, peak, free_list_bytes;
  uint64_t allocations, deallocations, resets, generation;
} walloc_tier_stats;

WALLOC_EXPORT walloc_handle walloc_allocate(size_t size, walloc_tier tier); /* WALLOC_NULL_HANDLE on failure */
typedef struct walloc_request {
  size_t size;
  walloc_tier tier;
} walloc_request;
WALLOC_EXPORT size_t walloc_allocate_batch(const walloc_request *requests, size_t count,
                                           walloc_handle *out); /* returns how many succeeded */
WALLOC_EXPORT walloc_status walloc_deallocate(walloc_handle handle);
WALLOC_EXPORT void *walloc_handle_to_ptr(walloc_handle handle);   /* NULL if null or stale */
WALLOC_EXPORT walloc_handle walloc_ptr_to_handle(const void *ptr); /* the block starting at ptr */
WALLOC_EXPORT size_t walloc_handle_size(walloc_handle handle);    /* usable bytes, 0 if invalid */
WALLOC_EXPORT walloc_status walloc_write_data(walloc_handle handle, size_t offset, const void *data,
                                              size_t length);
WALLOC_EXPORT walloc_status walloc_read_data(walloc_handle handle, size_t offset, void *out, size_t length);
typedef struct walloc_copy_op {
  walloc_handle dst;
  size_t dst_offset;
  walloc_handle src;
  size_t src_offset;
  size_t length;
} walloc_copy_op;
WALLOC_EXPORT size_t walloc_bulk_copy(const walloc_copy_op *ops, size_t count); /* how many succeeded */
WALLOC_EXPORT walloc_status walloc_reset_tier(walloc_tier tier);                /* O(1); not FALLBACK */
WALLOC_EXPORT walloc_status walloc_fast_compact_tier(walloc_tier tier, size_t preserve_bytes);
WALLOC_EXPORT walloc_status walloc_tier_stats_get(walloc_tier tier, walloc_tier_stats *out);

/* memcpy with kernels chosen once from the CPU's features (AVX2, SSE2, portable C). */
WALLOC_EXPORT void *walloc_memcpy(void *dst, const void *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif
