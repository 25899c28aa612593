/* stats_json.c: every layer's statistics as one JSON document
 * (walloc_stats_json, and the exit report of WALLOC_STATS=json).
 *
 * Owns: the document's shape, nothing else. It sits on top of every layer
 * and only calls down, each layer's own getter: the heap (walloc_heap_stats
 * and the size classes), the tiers, scopes and frames (the calling
 * thread's), pools and rings (the process's), assets. Keys are snake_case,
 * numbers integers; "version" numbers the shape (WL_STATS_JSON_VERSION):
 * keys are only ever added, so a reader checks that it is at least the one
 * it knows. docs/stats.md lists every key.
 * Written with the platform's formatter into the caller's buffer (or, at
 * exit, a descriptor): nothing is allocated, and the tiers are not set up
 * just to be reported (their figures read 0 until a tier call sets them up).
 * Thread-safe: each getter is; the figures of different sections are read
 * one after another, not as one snapshot.
 */
#include "lifetimes/lifetimes.h"
#include "walloc.h"

#define WL_STATS_JSON_VERSION 1

typedef struct json_s {
  wl_out_t o;
  bool first;      /* no member written yet in the object or array open now */
} json_t;

static void key(json_t *j, const char *name) {
  if (!j->first) wl_out_char(&j->o, ',');
  j->first = false;
  if (name == NULL) return; /* an array element */
  wl_out_char(&j->o, '"');
  wl_out_str(&j->o, name);
  wl_out_str(&j->o, "\":");
}

static void num(json_t *j, const char *name, uint64_t v) {
  key(j, name);
  wl_out_u64(&j->o, v, 0);
}

static void snum(json_t *j, const char *name, int64_t v) {
  key(j, name);
  if (v < 0) wl_out_char(&j->o, '-');
  wl_out_u64(&j->o, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 0);
}

/* A string value: quotes, backslashes and control characters escaped. */
static void str(json_t *j, const char *name, const char *s) {
  key(j, name);
  wl_out_char(&j->o, '"');
  for (; *s != 0; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      wl_out_char(&j->o, '\\');
      wl_out_char(&j->o, (char)c);
    } else if (c < 0x20) {
      wl_out_str(&j->o, "\\u00");
      wl_out_char(&j->o, "0123456789abcdef"[c >> 4]);
      wl_out_char(&j->o, "0123456789abcdef"[c & 15]);
    } else {
      wl_out_char(&j->o, (char)c);
    }
  }
  wl_out_char(&j->o, '"');
}

static void begin(json_t *j, const char *name, char bracket) {
  key(j, name);
  wl_out_char(&j->o, bracket);
  j->first = true;
}

static void end(json_t *j, char bracket) {
  wl_out_char(&j->o, bracket);
  j->first = false;
}

/* Each section's fields, named as in its C struct. */
#define HEAP_FIELDS(X)                                                                                        \
  X(allocations) X(frees) X(live_blocks) X(live_bytes) X(peak_bytes) X(mapped_bytes) X(peak_mapped_bytes)    \
  X(purged_bytes) X(released_bytes) X(rss_bytes) X(peak_rss_bytes) X(segments) X(segments_cached)            \
  X(segments_abandoned) X(segments_reclaimed) X(large_allocations) X(huge_allocations) X(huge_cache_hits)    \
  X(threads) X(threads_peak) X(foreign_frees) X(double_frees) X(invalid_frees)
#define TIER_FIELDS(X) \
  X(capacity) X(used) X(peak) X(free_list_bytes) X(allocations) X(deallocations) X(resets) X(generation)
#define SCOPE_FIELDS(X) X(entered) X(open) X(used_bytes)
#define FRAME_FIELDS(X) X(bytes) X(peak_bytes) X(allocations) X(chunks)
#define POOL_FIELDS(X) X(pools) X(objects) X(slab_bytes) X(magazines_taken)
#define RING_FIELDS(X) X(created) X(live) X(bytes)
#define ASSET_FIELDS(X) \
  X(requests) X(loaded) X(failed) X(retries) X(cache_hits) X(bytes_received) X(bytes_copied)
/* One object "name": {...} of the fields of struct s. */
#define NUM_FIELD(f) num(j, #f, (uint64_t)s.f);
#define SECTION(name, fields)  \
  do {                         \
    begin(j, name, '{');        \
    fields(NUM_FIELD)          \
    end(j, '}');             \
  } while (0)

static void heap_section(json_t *j) {
  walloc_heap_stats s;
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
  begin(j, "heap", '{');
  HEAP_FIELDS(NUM_FIELD)
  snum(j, "purge_delay_ms", s.purge_delay_ms); /* signed: -1 is never */
  end(j, '}');
  begin(j, "size_classes", '[');
  for (size_t bin = 1; bin <= WL_BIN_MAX; bin++) {
    wl_class_stats_t c;
    if (!wl_stats_class(bin, &c)) continue;
    begin(j, NULL, '{');
    num(j, "block_size", c.block_size);
    num(j, "allocations", c.allocations);
    num(j, "live_blocks", c.live_blocks);
    num(j, "peak_blocks", c.peak_blocks);
    num(j, "live_bytes", c.live_blocks * c.block_size);
    end(j, '}');
  }
  end(j, ']');
  uint64_t large_live, huge_live;
  wl_stats_big_live(&large_live, &huge_live);
  begin(j, "large", '{');
  num(j, "allocations", s.large_allocations);
  num(j, "live_blocks", large_live);
  end(j, '}');
  begin(j, "huge", '{');
  num(j, "allocations", s.huge_allocations);
  num(j, "live_blocks", huge_live);
  end(j, '}');
}

static void tiers_section(json_t *j) {
  static const char *const names[WALLOC_TIER_COUNT] = {"render", "scene", "entity", "fallback"};
  bool ready = wl_tiers_ready();
  begin(j, "tiers", '{');
  num(j, "set_up", ready);
  for (unsigned t = 0; t < WALLOC_TIER_COUNT; t++) {
    walloc_tier_stats s = {0};
    if (ready || t == WALLOC_TIER_FALLBACK) walloc_tier_stats_get((walloc_tier)t, &s);
    SECTION(names[t], TIER_FIELDS);
  }
  end(j, '}');
}

static void lifetimes_sections(json_t *j) {
  {
    wl_scope_stats_t s;
    wl_scope_stats(&s);
    SECTION("scopes", SCOPE_FIELDS);
  }
  {
    walloc_frame_stats s;
    walloc_frame_stats_get(&s);
    SECTION("frames", FRAME_FIELDS);
  }
  {
    wl_pools_stats_t s;
    wl_pools_stats(&s);
    SECTION("pools", POOL_FIELDS);
  }
  {
    wl_ring_stats_t s;
    wl_ring_stats(&s);
    SECTION("rings", RING_FIELDS);
  }
}

static void compose(json_t *j) {
  char name[64];
  wl_os_program_name(name, sizeof name);
  j->first = true;
  begin(j, NULL, '{');
  num(j, "version", WL_STATS_JSON_VERSION);
  str(j, "walloc", WALLOC_VERSION_STRING);
  num(j, "pid", (uint64_t)wl_os_pid());
  str(j, "program", name);
  heap_section(j);
  tiers_section(j);
  lifetimes_sections(j);
  {
    walloc_asset_stats s;
    walloc_asset_stats_get(&s);
    SECTION("assets", ASSET_FIELDS);
  }
  end(j, '}');
}

WL_API size_t walloc_stats_json(char *buf, size_t len) {
  json_t j;
  wl_out_init_mem(&j.o, buf, len);
  compose(&j);
  return wl_out_end_mem(&j.o);
}

#if !WL_OPTIONS_FIXED /* wasm: no exit report (WALLOC_STATS is fixed at 0) */
/* WALLOC_STATS=json: the heap's exit report calls this (it cannot call up). */
static void write_at_exit(int fd) {
  json_t j;
  wl_out_init(&j.o, fd);
  compose(&j);
  wl_out_char(&j.o, '\n');
  wl_out_flush(&j.o);
}

__attribute__((constructor)) static void stats_json_register(void) { wl_stats_exit_json_set(write_at_exit); }
#endif
