/* core.h: the services every layer above the platform shares, once.
 *
 * walloc's layers, bottom up: platform (the OS door, platform.h), core
 * (this), heap, tiers, lifetimes, assets. The core owns what would
 * otherwise be written once per layer:
 *   - once-only set-up (once.c): wl_once, fork-safe;
 *   - options (options.c): one table of every WALLOC_* setting;
 *   - errors (report.c): the per-thread status and message, the reports;
 *   - OS memory (osmem.c): every mapping, reservation, commit and purge of
 *     every layer, counted.
 * It calls only the platform layer. Nothing here allocates.
 */
#ifndef WL_CORE_H
#define WL_CORE_H

#include "../platform/platform.h"
#include "walloc.h"

/* Lock levels: the core's, then each layer's above it (heap.h and up). */
#define WL_LEVEL_CORE (WL_LEVEL_PLATFORM + 1)

/* ------------------------------------------------------------------------
   Once-only set-up (once.c)

   wl_once(&o, fn) runs fn exactly once in the process; every caller
   returns after it has finished (acquire: what fn wrote is visible). After
   the first run it costs one acquire load. fn runs under the once's own
   lock, of the level the once was defined with: fn may take only locks of
   lower levels, and must not reach the same once again. fork takes the
   lock like any other, so a child finds fn run or not run, never half run.
   ------------------------------------------------------------------------ */
typedef struct wl_once_s {
  _Atomic(int) done;
  wl_lock_t lock;
} wl_once_t;

#define WL_ONCE_INIT(level) { 0, WL_LOCK_INIT(level) }
/* A static once: WL_ONCE_STATIC(tiers_once, WL_LEVEL_TIERS); */
#define WL_ONCE_STATIC(name, level)              \
  static wl_once_t name = WL_ONCE_INIT(level);   \
  WL_LOCK_REGISTER(name##_register, &name.lock)

void wl_once_slow(wl_once_t *o, void (*fn)(void));
WL_INLINE void wl_once(wl_once_t *o, void (*fn)(void)) {
  if (WL_LIKELY(wl_load_acquire(&o->done) != 0)) return;
  wl_once_slow(o, fn);
}
WL_INLINE bool wl_once_done(wl_once_t *o) { return wl_load_acquire(&o->done) != 0; }

/* ------------------------------------------------------------------------
   Options (options.c)

   One table of every setting of every layer. Each option has a name
   ("purge_delay"), read from the environment variable WALLOC_<NAME>
   (WALLOC_PURGE_DELAY), else from the item name=value of WALLOC_OPTIONS
   ("purge_delay=50,stats=1,tiers=2G:60,30,10": an item without '=' goes on
   the value before it, so a value may hold commas), else its default. Some
   may be changed at run time (walloc_option_set). Options are read by group,
   each group once, when its layer starts: the heap's at process start, the
   tiers' when they are set up, the assets' at the first asset call; unknown
   WALLOC_* names and WALLOC_OPTIONS items are reported with the heap's group.
   A malformed, unknown or out-of-range setting is reported, always, in one
   line naming the variable, the value and what is used instead, and the
   program goes on. Reading and reporting never allocate.

   On wasm the options are their wasm defaults, fixed at compile time (the
   environment there is empty, or not yet built when walloc first runs): as
   constants they compile out whatever they turn off.

   The table: X(ID, name, kind, native default, wasm default, min, max,
   group, run-time settable, extra, description). kind: BOOL (0/1, yes/no,
   true/false, on/off), INT (a number; yes/no read as 1/0), SIZE (a number
   with an optional K, M or G suffix: powers of 1024), CHOICE (one of the
   comma-separated names in extra, or its index), TEXT (a string of at most
   max bytes; extra is its default as shown in the documentation, the value
   is NULL when unset), TIERS (TEXT of the form wl_option_tiers reads).
   The description is the line docs/options.md shows (the test
   options-doc checks the two agree).
   ------------------------------------------------------------------------ */
/* wasm: nothing caches (memory never goes back to the host and nothing
   faults in: a cached segment or huge block only keeps memory from the rest
   of the program, while a released range goes on the platform layer's free
   list, where any later segment or huge block reuses it), and nothing is
   purged (the platform cannot give pages back). */
#define WL_PURGE_DELAY_WASM (-1)
/* The tiers' default layout (their memory, lib/tiers/tier.c, says the same). */
#if defined(__wasm__)
#define WL_TIERS_DEFAULT_TEXT "32M:50,30,20"
#elif UINTPTR_MAX > 0xFFFFFFFFu
#define WL_TIERS_DEFAULT_TEXT "1G:50,30,20"
#else
#define WL_TIERS_DEFAULT_TEXT "256M:50,30,20"
#endif
#define WL_OPTION_TABLE(X)                                                                                \
  X(STATS, "stats", CHOICE, 0, 0, 0, 2, HEAP, 1, "no,yes,json",                                          \
    "report the statistics when the process exits: `yes`, the table (`walloc-run --stats`); `json`, the "  \
    "JSON document of every layer (`walloc-run --stats-json`); headed by the pid and program name, on "   \
    "stderr unless `WALLOC_STATS_FILE` is set ([stats.md](stats.md))")                                    \
  X(STATS_FILE, "stats_file", TEXT, 0, 0, 0, 1023, HEAP, 0, "unset",                                     \
    "the exit report goes to this file instead of stderr, `%p` replaced by the process id (one file per "  \
    "process: `stats.%p`), created or truncated at exit; if it cannot be opened, one line on stderr says " \
    "so and the report goes there (`walloc-run --stats-file PATH`)")                                      \
  X(VERBOSE, "verbose", BOOL, WL_DEBUG > 0, WL_DEBUG > 0, 0, 1, HEAP, 1, NULL,                           \
    "report other errors on stderr: misuse of the tier and lifetime APIs, calls that fail (1 in debug "    \
    "builds)")                                                                                             \
  X(MISUSE_ABORT, "misuse_abort", BOOL, 1, 1, 0, 1, HEAP, 1, NULL,                                        \
    "a double free, or a free or realloc of an interior pointer or of a pointer walloc never handed out, " \
    "is always reported on stderr; 1: then abort (as glibc does), 0: ignore the call and go on (a "        \
    "damaged free list aborts in any case)")                                                               \
  X(PURGE_DELAY, "purge_delay", INT, 10, WL_PURGE_DELAY_WASM, -1, 3600000, HEAP, 1, NULL,                                  \
    "milliseconds free memory waits at least before it is given back to the OS (doubled, up to 8x, "    \
    "while memory given back is soon needed again); 0: at once, -1: never")                              \
  X(SEGMENT_CACHE, "segment_cache", INT, 16, 0, 0, 4096, HEAP, 1, NULL,                                   \
    "empty 4 MiB segments kept (purged) for reuse before they are unmapped; all are unmapped when the OS " \
    "refuses memory, and by `malloc_trim`")                                                                \
  X(HUGE_CACHE, "huge_cache", INT, 8, 0, 0, 1024, HEAP, 1, NULL,                                          \
    "freed blocks over 2 MiB kept mapped for reuse (128 MiB at most together, none over 64 MiB); 0: "     \
    "unmap at once; all are unmapped when the OS refuses memory, and by `malloc_trim`")                   \
  X(HUGE_CACHE_DELAY, "huge_cache_delay", INT, 100, 100, 0, 3600000, HEAP, 1, NULL,                       \
    "milliseconds a freed huge block stays cached before it is unmapped")                                 \
  X(HUGE_PAGES, "huge_pages", BOOL, 0, 0, 0, 1, HEAP, 0, NULL,                                            \
    "ask for transparent huge pages on segments (more RSS, fewer TLB misses)")                             \
  X(TIERS, "tiers", TIERS, 0, 0, 0, 63, TIERS, 0, WL_TIERS_DEFAULT_TEXT,                                  \
    "tier memory (K/M/G suffix, 1M to 64G) and the render, scene and entity shares in percent (adding up " \
    "to 1..100, each non-zero one giving its tier at least 64K); fields a `walloc_config` sets win; the "  \
    "default on wasm is 32M:50,30,20")                                                                     \
  X(TIER_DECOMMIT, "tier_decommit", BOOL, 0, 0, 0, 1, TIERS, 1, NULL,                                     \
    "a tier reset gives the tier's memory back to the OS (no longer O(1))")                               \
  X(ASSET_CONNECT_TIMEOUT_MS, "asset_connect_timeout_ms", INT, 10000, 10000, 1, 86400000, ASSETS, 0, NULL, \
    "milliseconds connecting to a server may take")                                                       \
  X(ASSET_TIMEOUT_MS, "asset_timeout_ms", INT, 60000, 60000, 1, 86400000, ASSETS, 0, NULL,                \
    "milliseconds a whole transfer may take, body included")                                              \
  X(ASSET_MAX_SIZE, "asset_max_size", SIZE, 256 << 20, 256 << 20, 1, 1L << 30, ASSETS, 0, NULL,           \
    "larger assets are refused (before allocating when the length is announced)")                         \
  X(ASSET_RETRIES, "asset_retries", INT, 2, 2, 0, 100, ASSETS, 0, NULL,                                   \
    "retries of transient failures (connection refused or reset, timeout, HTTP 5xx; never 4xx); 0: none") \
  X(ASSET_RETRY_BACKOFF_MS, "asset_retry_backoff_ms", INT, 100, 100, 0, 600000, ASSETS, 0, NULL,          \
    "milliseconds before the first retry, doubled for each next one")                                     \
  X(ASSET_MAX_REDIRECTS, "asset_max_redirects", INT, 5, 5, 0, 50, ASSETS, 0, NULL,                        \
    "redirects followed (http and https only); 0: none")                                                  \
  X(ASSET_COMPRESSED, "asset_compressed", BOOL, 1, 1, 0, 1, ASSETS, 0, NULL,                              \
    "send `Accept-Encoding` (gzip, deflate, brotli as libcurl supports)")                                 \
  X(ASSET_VERIFY_TLS, "asset_verify_tls", BOOL, 1, 1, 0, 1, ASSETS, 0, NULL,                              \
    "verify the server's certificate and host name")                                                      \
  X(ASSET_USER_AGENT, "asset_user_agent", TEXT, 0, 0, 0, 127, ASSETS, 0, "walloc/<version>",              \
    "the User-Agent header")                                                                              \
  X(ASSET_CONNECTIONS, "asset_connections", INT, 8, 8, 1, 256, ASSETS, 0, NULL,                           \
    "transfers a batch runs at once")                                                                     \
  X(ASSET_REVALIDATE, "asset_revalidate", BOOL, 0, 0, 0, 1, ASSETS, 0, NULL,                              \
    "loading a registered path fetches it again")                                                         \
  X(ASSET_AUDIO_TIER, "asset_audio_tier", CHOICE, 1, 1, 0, 3, ASSETS, 0, "render,scene,entity,fallback",  \
    "the tier audio assets go to")                                                                        \
  X(LIBCURL, "libcurl", TEXT, 0, 0, 0, 4095, ASSETS, 0, "unset",                                          \
    "the libcurl to open at the first asset load (a path, or a name the dynamic linker finds) instead of " \
    "`libcurl.so.4`, then `libcurl-gnutls.so.4`; if it cannot be opened, loads return "                   \
    "`WALLOC_ERR_UNSUPPORTED` with the reason")

typedef enum wl_option_e {
#define WL_OPTION_ID_(id, ...) WL_OPT_##id,
  WL_OPTION_TABLE(WL_OPTION_ID_)
#undef WL_OPTION_ID_
  WL_OPT_COUNT
} wl_option_t;

typedef enum wl_option_kind_e {
  WL_OPTK_BOOL, WL_OPTK_INT, WL_OPTK_SIZE, WL_OPTK_CHOICE, WL_OPTK_TEXT, WL_OPTK_TIERS
} wl_option_kind_t;
typedef enum wl_option_group_e { WL_OPTG_HEAP, WL_OPTG_TIERS, WL_OPTG_ASSETS, WL_OPTG_COUNT } wl_option_group_t;

/* wasm: every option is its wasm default, fixed at compile time (the
   environment is not yet built when walloc first runs there, and a page
   has none): as constants they compile out what they turn off, and the
   module carries no option reading (walloc_init sets up the tiers there,
   walloc_set_asset_options the assets). */
#if defined(__wasm__)
#define WL_OPTIONS_FIXED 1
#else
#define WL_OPTIONS_FIXED 0
#endif
extern _Atomic(int64_t) wl_option_values[WL_OPT_COUNT];
extern const char *wl_option_texts[WL_OPT_COUNT];
/* The value in force (the group's, once wl_options_read has run for it). */
WL_INLINE int64_t wl_option(wl_option_t opt) {
#if WL_OPTIONS_FIXED
#define WL_OPTION_WASM_(id, name, kind, def, wdef, ...) [WL_OPT_##id] = (wdef),
  static const int64_t fixed[WL_OPT_COUNT] = {WL_OPTION_TABLE(WL_OPTION_WASM_)};
#undef WL_OPTION_WASM_
  return fixed[opt];
#else
  return wl_load_relaxed(&wl_option_values[opt]);
#endif
}
/* A TEXT option's value, NULL when unset (always on wasm). */
WL_INLINE const char *wl_option_text(wl_option_t opt) {
#if WL_OPTIONS_FIXED
  WL_UNUSED(opt);
  return NULL;
#else
  return wl_option_texts[opt];
#endif
}
/* Read the group's options (once; and the heap's group first, with the
   reports of unknown names). Every layer calls it where it starts. Inline,
   so that a call for the heap's group (every program's) does not link the
   reading of the others (wasm modules that only malloc leave it out). */
void wl_options_read_heap(void);
void wl_options_read_group(wl_option_group_t g);
WL_INLINE void wl_options_read(wl_option_group_t g) {
  if (g == WL_OPTG_HEAP) wl_options_read_heap();
  else wl_options_read_group(g);
}
/* A number as options write it: "123", "-1", "64M", "yes"/"true"/"on" (1),
   "no"/"false"/"off" (0). False when the text is not one (or overflows). */
bool wl_option_number(const char *s, int64_t *out);
/* The tiers option, "<memory>[:<render>,<scene>,<entity>]" (2G:60,30,10):
   NULL and *out when s is a layout the tiers can take (shares all 0 when s
   gives none), else why not. The limits are the tiers' (tiers.h asserts
   they agree): memory 1M to 64G (what a handle's offset addresses, and
   what size_t holds), shares adding up to 1..100 %, each non-zero one
   giving its tier at least its 64K window. */
#define WL_TIERS_MIN_MEMORY ((uint64_t)1 << 20)
#define WL_TIERS_MAX_MEMORY (SIZE_MAX < ((uint64_t)1 << 36) ? (uint64_t)SIZE_MAX : (uint64_t)1 << 36)
#define WL_TIERS_MIN_SHARE  ((uint64_t)64 << 10)
#define WL_TIERS_DEFAULT_SHARES {50, 30, 20} /* render, scene, entity, in percent */
/* The limits alone, for a layout from the option or from walloc_config:
   NULL when memory and the shares (render, scene, entity) are within
   them, else why not. */
const char *wl_tiers_shape_refusal(uint64_t memory, const unsigned percent[3]);
typedef struct wl_tiers_option_s {
  uint64_t memory;
  unsigned percent[3]; /* render, scene, entity */
} wl_tiers_option_t;
const char *wl_option_tiers(const char *s, wl_tiers_option_t *out);
/* Report a setting the option's layer refused after reading it (a TEXT
   option it parses itself): "walloc: warning: WALLOC_<NAME>=<value>
   refused (<why>); using <instead>". */
void wl_option_refused(wl_option_t opt, const char *value, const char *why, const char *instead);
/* For tests and the documentation check: the table, and a re-read of every
   group from the current environment (wl_options_reread). */
typedef struct wl_option_info_s {
  const char *name, *extra, *doc;
  wl_option_kind_t kind;
  wl_option_group_t group;
  int64_t def, wasm_def, min, max;
  bool runtime;
} wl_option_info_t;
extern const wl_option_info_t wl_option_info[WL_OPT_COUNT];
void wl_options_reread(void);

/* ------------------------------------------------------------------------
   Errors (report.c)

   One path for every layer. A call that fails records, for the calling
   thread, a status (walloc_last_status) and a message naming the call and
   the argument (walloc_last_error); only failures write them, so the fast
   paths pay nothing. Lines on stderr have one of two prefixes, "walloc:
   error: " and "walloc: warning: ", and a pointer only where it means
   something. What is printed when:
   - wl_fail / wl_failf: the thread's status and message; printed (as an
     error) when WALLOC_VERBOSE=1 or in debug builds;
   - wl_warn: a tolerated misuse or an odd state (a scope left twice);
     printed in debug builds or when verbose;
   - wl_error: a failure inside walloc the program did not cause (no room
     for a hook); printed when verbose;
   - wl_fatal: a broken invariant: aborts in debug builds, else as wl_error.
   Bad options are reported by options.c, always; misuse of the malloc
   family by the heap (heap.h, wl_misuse), always. With the options fixed
   and no debug checks (wasm release builds) verbose is off, so nothing is
   ever printed: the printing functions are empty inline functions there
   and their messages leave the module's data. Nothing here allocates.
   ------------------------------------------------------------------------ */
#if WL_OPTIONS_FIXED && WL_DEBUG == 0
#define WL_REPORTS 0
WL_INLINE void wl_error(const char *msg, const void *p) { WL_UNUSED(msg); WL_UNUSED(p); }
WL_INLINE void wl_warn(const char *msg, const void *p) { WL_UNUSED(msg); WL_UNUSED(p); }
WL_INLINE void wl_fatal(const char *msg, const void *p) { WL_UNUSED(msg); WL_UNUSED(p); }
#else
#define WL_REPORTS 1
void wl_error(const char *msg, const void *p);   /* p NULL: no pointer printed */
void wl_warn(const char *msg, const void *p);
void wl_fatal(const char *msg, const void *p);
#endif
/* A line on fd (2, or the statistics' own copy of stderr) begun with
   walloc's prefix for `kind` ("error", "warning", "fatal"): the caller adds
   the rest and flushes. */
void wl_report_begin(wl_out_t *o, int fd, const char *kind);
/* The calling thread's status and message (what: "walloc_scope_leave: the
   scope was already left"; NULL keeps the status's own words). */
void wl_fail(walloc_status status, const char *what);
/* The message alone, printf-style, for calls that return their status
   themselves (assets: the URL, the HTTP status). */
void wl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------------
   OS memory (osmem.c)

   The one door to the platform's memory functions for every layer above
   the core: no file outside lib/platform and osmem.c calls wl_os_alloc,
   wl_os_reserve, wl_os_commit, wl_os_purge, wl_os_release, wl_os_resize,
   wl_os_remap or wl_os_advise_huge (tests/meson.build checks it). Each
   call here is the platform's (same contract, platform.h) plus counters,
   process-wide relaxed atomics, so that walloc_heap_stats's mapped_bytes
   is every byte of address space walloc holds, whichever layer holds it:
     mapped     mappings and reservations, now (and its peak), also by user;
     committed  of those, the bytes readable and writable: mappings whole,
                reservations as far as committed (all of a reservation
                where reserving commits, wasm); a purge leaves it (the
                range stays usable);
     purged     bytes whose physical pages went back (the platform said so);
     released   address space given back (unmapped, or cut off a mapping).
   Only slow paths come here (each call is a system call or a lock on
   wasm); the counters cost a few relaxed atomic adds beside it.

   Who maps what: the heap its segments, huge blocks and heap structs
   (segment.c, huge.c, heap.c); the tiers their three reservations and
   commits inside them (tier.c); frames their chunks and pools their slabs
   and slab-map leaves (lifetimes), straight through this door: neither
   takes segments from the heap, which only adds the give-back retry
   (wl_give_back_map, pressure.c); assets the spool of a body of unknown
   length (http.c). Each says who it is, so the counts also come by user.
   ------------------------------------------------------------------------ */
/* The platform's facts, filled once by process set-up (wl_process_init)
   before any layer asks for memory. */
extern wl_os_info_t wl_os;

typedef enum wl_mem_user_e {
  WL_MEM_HEAP,    /* segments, huge blocks, heap structs */
  WL_MEM_TIERS,   /* the tiers' reservations */
  WL_MEM_FRAMES,  /* frame chunks */
  WL_MEM_POOLS,   /* pool slabs and the slab map's leaves */
  WL_MEM_ASSETS,  /* asset spools */
  WL_MEM_USERS
} wl_mem_user_t;

/* wl_os_alloc, counted as mapped and committed for `who`. */
void *wl_osmem_map(wl_mem_user_t who, size_t size, size_t align, size_t offset, bool *is_zero);
/* wl_os_release of a wl_osmem_map range (or a page-aligned piece at its
   start or end), counted as released. */
void wl_osmem_unmap(wl_mem_user_t who, void *addr, size_t size);
/* wl_os_reserve, counted as mapped (and committed where reserving commits). */
void *wl_osmem_reserve(wl_mem_user_t who, size_t size, size_t align);
/* wl_os_release of a whole wl_osmem_reserve range, `committed` bytes of
   which the caller had committed with wl_osmem_commit. */
void wl_osmem_unreserve(wl_mem_user_t who, void *addr, size_t size, size_t committed);
/* wl_os_commit of a range never committed before, counted as committed. */
bool wl_osmem_commit(void *addr, size_t size);
/* wl_os_purge, counted as purged when the platform purged. */
bool wl_osmem_purge(void *addr, size_t size);
/* wl_os_resize of a wl_osmem_map range, counted (a shrink as released). */
bool wl_osmem_resize(wl_mem_user_t who, void *addr, size_t old_size, size_t new_size);
/* wl_os_remap into `dst`, a wl_osmem_map range of new_size bytes (counted
   when mapped): the old range leaves the counts, as moved, not released. */
bool wl_osmem_remap(wl_mem_user_t who, void *old, size_t old_size, void *dst, size_t new_size);
/* wl_os_advise_huge: a hint, nothing to count. */
WL_INLINE bool wl_osmem_advise_huge(void *addr, size_t size) { return wl_os_advise_huge(addr, size); }

typedef struct wl_osmem_stats_s {
  uint64_t mapped, peak_mapped, committed, purged, released;
  uint64_t by_user[WL_MEM_USERS]; /* mapped, by who holds it */
} wl_osmem_stats_t;
void wl_osmem_stats(wl_osmem_stats_t *out);

#endif
