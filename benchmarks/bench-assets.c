/* bench-assets: load COUNT assets of 4 KiB to 4 MiB (fixed pseudo-random
 * sizes, log-uniform) from BASE (tests/asset_server.py's /data/<n>.bin):
 *
 *   batch   walloc_load_assets_batch, CONNECTIONS transfers at once
 *   single  walloc_load_asset, one after the other
 *   curl    a plain sequential libcurl easy loop (one handle, reused) into
 *           malloc'd buffers grown with realloc: the baseline
 *
 * Prints wall time, MB/s and (walloc modes) bytes copied per byte received.
 *
 * A fourth mode loads one big body into the default tiers (no walloc_init)
 * and prints what it cost (run_assets.py --bodies):
 *
 *   body    BASE/ROUTE/SIZE.bin (ROUTE data: with a Content-Length; chunked
 *           or gzip: without) as TYPE (binary: the scene tier; texture: the
 *           render tier), after a small load that opens libcurl: status,
 *           time, and what the load added: bytes copied after receiving, the
 *           tier's peak (memory it has taken), what the tier then holds on
 *           free lists, its allocations, and the process's peak RSS over its
 *           RSS before
 *
 * Every body is checked (byte i = i % 251) after the timed part.
 * Linked with libwalloc.a (malloc stays the C library's).
 *
 * usage: bench-assets batch|single|curl BASE [COUNT=1000] [CONNECTIONS=8] [SEED=1]
 *        bench-assets body BASE ROUTE SIZE [binary|texture]
 */
#include "walloc.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static int check(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 997) {
    if (p[i] != (uint8_t)(i % 251)) return 0;
  }
  return n == 0 || p[n - 1] == (uint8_t)((n - 1) % 251);
}

typedef struct buf_s {
  uint8_t *p;
  size_t len, cap;
} buf_t;

static size_t on_write(char *data, size_t size, size_t n, void *arg) {
  buf_t *b = arg;
  size_t k = size * n;
  if (b->len + k > b->cap) {
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + k) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) return 0;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, k);
  b->len += k;
  return k;
}

/* A line of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), 0 if missing. */
static long status_kib(const char *name) {
  char line[256];
  long kib = 0;
  FILE *f = fopen("/proc/self/status", "r");
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, name, strlen(name)) == 0) kib = strtol(line + strlen(name), NULL, 10);
  }
  if (f != NULL) fclose(f);
  return kib;
}

/* Starts a new peak RSS (VmHWM) at the current RSS; false if Linux refuses. */
static bool peak_rss_restart(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f == NULL) return false;
  bool ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

/* One body into the default tiers. A refusal (the tier is full) is a
   result and exits 0; a body that reads back wrong exits 1. */
static int run_body(const char *base, const char *route, size_t size, const char *type) {
  walloc_asset_type t = strcmp(type, "texture") == 0 ? WALLOC_ASSET_TEXTURE : WALLOC_ASSET_BINARY;
  walloc_tier tier = t == WALLOC_ASSET_TEXTURE ? WALLOC_TIER_RENDER : WALLOC_TIER_SCENE;
  walloc_asset_options o = {0};
  o.timeout_ms = 600000;
  walloc_set_asset_options(&o);
  walloc_set_base_url(base);
  char path[64];
  walloc_handle h;
  if (walloc_load_asset("data/16.bin", t, &h) != WALLOC_OK) { /* opens libcurl, sets the tiers up */
    fprintf(stderr, "the first load failed: %s\n", walloc_asset_last_error());
    return 1;
  }
  snprintf(path, sizeof path, "%s/%zu.bin", route, size);
  walloc_asset_stats s0, s1;
  walloc_tier_stats t0, t1;
  walloc_asset_stats_get(&s0);
  walloc_tier_stats_get(tier, &t0);
  if (!peak_rss_restart()) fprintf(stderr, "/proc/self/clear_refs refused: the peak RSS is the process's\n");
  long rss_before = status_kib("VmRSS:");
  double start = now_s();
  walloc_status st = walloc_load_asset(path, t, &h);
  double secs = now_s() - start;
  long rss_peak = status_kib("VmHWM:");
  walloc_asset_stats_get(&s1);
  walloc_tier_stats_get(tier, &t1);
  printf("mode=body route=%s type=%s bytes=%zu status=%s seconds=%.3f copied=%llu tier_peak=%zu tier_free=%zu "
         "tier_allocations=%llu peak_rss_added_kib=%ld\n",
         route, type, size, st == WALLOC_OK ? "OK" : "refused", secs,
         (unsigned long long)(s1.bytes_copied - s0.bytes_copied), t1.peak - t0.peak,
         t1.free_list_bytes - t0.free_list_bytes, (unsigned long long)(t1.allocations - t0.allocations),
         rss_peak > rss_before ? rss_peak - rss_before : 0);
  if (st != WALLOC_OK) {
    fprintf(stderr, "%s\n", walloc_asset_last_error());
    return 0;
  }
  if (!check(walloc_handle_to_ptr(h), size)) {
    fprintf(stderr, "FAILED: the body is wrong\n");
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "body") == 0)
    return run_body(argv[2], argv[3], strtoull(argv[4], NULL, 10), argc > 5 ? argv[5] : "binary");
  if (argc < 3) {
    fprintf(stderr, "usage: bench-assets batch|single|curl BASE [COUNT] [CONNECTIONS] [SEED]\n"
                    "       bench-assets body BASE ROUTE SIZE [binary|texture]\n");
    return 2;
  }
  const char *mode = argv[1], *base = argv[2];
  size_t count = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
  int conns = argc > 4 ? atoi(argv[4]) : 8;
  uint64_t seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
  seed = seed * 0x9E3779B97F4A7C15ull | 1;

  size_t *sizes = malloc(count * sizeof *sizes);
  char **paths = malloc(count * sizeof *paths);
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    double u = (double)(rng(&seed) >> 11) / 9007199254740992.0;
    sizes[i] = (size_t)(4096.0 * pow(1024.0, u)); /* 4 KiB .. 4 MiB, log-uniform */
    paths[i] = malloc(64);
    snprintf(paths[i], 64, "data/%zu.bin?i=%zu", sizes[i], i);
    total += sizes[i];
  }

  walloc_config cfg = {0};
  cfg.tier_memory = total * 3 + ((size_t)1 << 30); /* blocks are powers of two */
  cfg.tier_percent[0] = 5;
  cfg.tier_percent[1] = 90;
  cfg.tier_percent[2] = 5;
  if (walloc_init(&cfg) != WALLOC_OK) {
    fprintf(stderr, "walloc_init failed\n");
    return 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  walloc_asset_options o = {0};
  o.connections = conns;
  walloc_set_asset_options(&o);
  walloc_set_base_url(base);

  int ok = 1;
  double t0 = now_s(), t1;
  if (strcmp(mode, "batch") == 0 || strcmp(mode, "single") == 0) {
    walloc_handle *h = malloc(count * sizeof *h);
    if (mode[0] == 'b') {
      walloc_asset_request *q = malloc(count * sizeof *q);
      walloc_asset_result *r = malloc(count * sizeof *r);
      for (size_t i = 0; i < count; i++) q[i] = (walloc_asset_request){paths[i], WALLOC_ASSET_BINARY};
      size_t loaded = walloc_load_assets_batch(q, count, r);
      t1 = now_s();
      ok = loaded == count;
      for (size_t i = 0; i < count; i++) h[i] = r[i].handle;
    } else {
      for (size_t i = 0; i < count && ok; i++) ok = walloc_load_asset(paths[i], WALLOC_ASSET_BINARY, &h[i]) == WALLOC_OK;
      t1 = now_s();
    }
    if (!ok) fprintf(stderr, "load failed: %s\n", walloc_asset_last_error());
    for (size_t i = 0; i < count && ok; i++) ok = check(walloc_handle_to_ptr(h[i]), sizes[i]);
  } else if (strcmp(mode, "curl") == 0) {
    buf_t *bufs = calloc(count, sizeof *bufs);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    char url[512];
    for (size_t i = 0; i < count && ok; i++) {
      snprintf(url, sizeof url, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", paths[i]);
      curl_easy_setopt(e, CURLOPT_URL, url);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &bufs[i]);
      ok = curl_easy_perform(e) == CURLE_OK;
    }
    t1 = now_s();
    curl_easy_cleanup(e);
    for (size_t i = 0; i < count && ok; i++) ok = bufs[i].len == sizes[i] && check(bufs[i].p, sizes[i]);
    for (size_t i = 0; i < count; i++) free(bufs[i].p);
    free(bufs);
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  if (!ok) {
    fprintf(stderr, "FAILED: a body is wrong or a load failed\n");
    return 1;
  }
  walloc_asset_stats s;
  walloc_asset_stats_get(&s);
  double secs = t1 - t0;
  printf("mode=%s assets=%zu bytes=%zu seconds=%.3f mb_per_s=%.1f copied_per_received=%.4f requests=%llu\n", mode,
         count, total, secs, (double)total / 1e6 / secs,
         s.bytes_received ? (double)s.bytes_copied / (double)s.bytes_received : 0.0,
         (unsigned long long)s.requests);
  return 0;
}
