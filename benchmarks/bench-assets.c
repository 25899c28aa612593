/* bench-assets: load COUNT assets of 4 KiB to 4 MiB (fixed pseudo-random
 * sizes, log-uniform) from BASE (tests/asset_server.py's /data/<n>.bin):
 *
 *   batch   walloc_load_assets_batch, CONNECTIONS transfers at once
 *   single  walloc_load_asset, one after the other
 *   curl    a plain sequential libcurl easy loop (one handle, reused) into
 *           malloc'd buffers grown with realloc: the baseline
 *
 * Prints wall time, MB/s and (walloc modes) bytes copied per byte received.
 * Every body is checked (byte i = i % 251) after the timed part.
 * Linked with libwalloc.a (malloc stays the C library's).
 *
 * usage: bench-assets batch|single|curl BASE [COUNT=1000] [CONNECTIONS=8] [SEED=1]
 */
#include "walloc.h"

#include <curl/curl.h>
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

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench-assets batch|single|curl BASE [COUNT] [CONNECTIONS] [SEED]\n");
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
