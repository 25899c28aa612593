/* assets.h: the asset layer's cross-file interface (include/walloc.h, "Assets").
 *
 *   options.c   settings (defaults, WALLOC_ASSET_* environment, walloc_set_asset_options),
 *               the base URL, statistics and the per-thread error message
 *   registry.c  the map from key (the path as given) to metadata, and zero-copy placement
 *   http.c      loads through libcurl's multi interface (built with libcurl's headers)
 *   curl_dl.c   opens libcurl on the first load (libwalloc.so does not link it)
 *   nocurl.c    the same entry points answering WALLOC_ERR_UNSUPPORTED (built without)
 *
 * The layer sits on top of the tiers: asset bytes live in tier blocks
 * (walloc_allocate), the layer's own bookkeeping in the internal heap
 * (wl_malloc), never in the public malloc, which the program may replace.
 * Every function here is thread-safe.
 */
#ifndef WL_ASSETS_H
#define WL_ASSETS_H

#include "../simd/copy.h"
#include "../tiers/tiers.h"

#ifndef WL_HAVE_CURL
#define WL_HAVE_CURL 0
#endif

/* Lock level (platform.h): the registry, the settings and the connection
   pool call only the tiers and the heap while held, never each other. */
#define WL_LEVEL_ASSETS (WL_LEVEL_TIERS_TOP + 1)
_Static_assert(WL_LEVEL_ASSETS < WL_LOCK_LEVELS, "a level for the assets");

#define WL_ASSET_ERROR_MAX 512  /* bytes of a load's message (walloc_last_error holds as many) */
#define WL_ASSET_UA_MAX    128

/* ------------------------------------------------------------------------
   options.c
   ------------------------------------------------------------------------ */

/* A snapshot of the settings in force, taken at the start of each load. */
typedef struct wl_asset_opts_s {
  long connect_timeout_ms, timeout_ms;
  size_t max_size;
  int retries;              /* 0 = none */
  long retry_backoff_ms;
  int max_redirects;        /* -1 = do not follow */
  bool compressed, verify_tls, revalidate;
  int connections;
  unsigned audio_tier;      /* a walloc_tier */
  char user_agent[WL_ASSET_UA_MAX];
  walloc_asset_progress_fn progress;
  void *progress_arg;
} wl_asset_opts_t;

void wl_asset_opts(wl_asset_opts_t *out);

/* The base URL joined with path into a fresh wl_malloc'd string (the
   caller wl_frees it), or NULL with *st and the error message set: paths
   that are not URLs without a base, that escape the base (a `..` segment,
   plain or percent-encoded; an absolute URL or `//` with a base set), or
   whose scheme is not http, https or file. */
char *wl_asset_url(const char *path, walloc_status *st);

/* The tier for an asset type under the given settings. */
unsigned wl_asset_tier(const wl_asset_opts_t *o, walloc_asset_type type);


/* Counters of walloc_asset_stats_get. */
typedef struct wl_asset_counters_s {
  _Atomic(uint64_t) requests, loaded, failed, retries, cache_hits, bytes_received, bytes_copied;
} wl_asset_counters_t;
extern wl_asset_counters_t wl_asset_counters;
WL_INLINE void wl_asset_count(_Atomic(uint64_t) *c, uint64_t n) { wl_fetch_add(c, n); }

/* ------------------------------------------------------------------------
   registry.c
   ------------------------------------------------------------------------ */

/* Is h a live block (not null, not stale)? */
bool wl_asset_handle_live(walloc_handle h);

/* If key is registered with a live handle, copy its metadata to *out. */
bool wl_registry_live(const char *key, walloc_asset_metadata *out);

/* Register a loaded asset under key. When key is present already: with
   `replace`, or when the present handle is not live, the entry takes the
   new metadata and the old block is released; otherwise the new block is
   released and *md becomes the registered metadata (two loads raced). The
   caller's block is always either registered or released. Returns false
   (block released) only when the registry cannot allocate. */
bool wl_registry_store(const char *key, walloc_asset_metadata *md, bool replace);

#endif
