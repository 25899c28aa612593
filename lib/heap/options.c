/* options.c: run-time options, one table, one environment variable each.
 *
 * Every option has a default and is read once, at process initialisation, from
 * WALLOC_<NAME> (for example WALLOC_PURGE_DELAY=100). Values are integers;
 * "yes"/"true"/"on" read as 1 and "no"/"false"/"off" as 0. docs/options.md
 * lists them. Reading options never allocates. On wasm the options are fixed
 * to their defaults at compile time (WL_OPTIONS_FIXED, heap.h).
 */
#include "heap.h"

#if !WL_OPTIONS_FIXED
/* Current values, read by wl_option() (inline, heap.h). */
long wl_option_values[WL_OPT_COUNT] = WL_OPTION_DEFAULTS;

static const char *const option_names[WL_OPT_COUNT] = { /* WALLOC_ + upper case name */
  [WL_OPT_STATS] = "WALLOC_STATS",
  [WL_OPT_VERBOSE] = "WALLOC_VERBOSE",
  [WL_OPT_PURGE_DELAY] = "WALLOC_PURGE_DELAY",
  [WL_OPT_SEGMENT_CACHE] = "WALLOC_SEGMENT_CACHE",
  [WL_OPT_HUGE_CACHE] = "WALLOC_HUGE_CACHE",
  [WL_OPT_HUGE_CACHE_DELAY] = "WALLOC_HUGE_CACHE_DELAY",
  [WL_OPT_HUGE_PAGES] = "WALLOC_HUGE_PAGES",
  [WL_OPT_MISUSE_ABORT] = "WALLOC_MISUSE_ABORT",
};
#endif

static bool streq_nocase(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
    if (x != *b) return false;
  }
  return *a == *b;
}

/* Parse "123", "-1", "64M" (K, M, G: powers of 1024), "yes"/"on"/"true" (1),
   "no"/"off"/"false" (no_value). Returns false when the text is not a value. */
bool wl_option_parse(const char *s, long no_value, long *out) {
  if (streq_nocase(s, "yes") || streq_nocase(s, "true") || streq_nocase(s, "on")) { *out = 1; return true; }
  if (streq_nocase(s, "no") || streq_nocase(s, "false") || streq_nocase(s, "off")) { *out = no_value; return true; }
  bool neg = *s == '-';
  if (neg) s++;
  if (*s < '0' || *s > '9') return false;
  long v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (__LONG_MAX__ - 9) / 10) return false;
    v = v * 10 + (*s - '0');
  }
  int shift = *s == 'K' || *s == 'k' ? 10 : *s == 'M' || *s == 'm' ? 20 : *s == 'G' || *s == 'g' ? 30 : 0;
  if (shift != 0) s++;
  if (*s != 0 || v > (__LONG_MAX__ >> shift)) return false;
  v <<= shift;
  *out = neg ? -v : v;
  return true;
}

void wl_options_init(void) {
#if !WL_OPTIONS_FIXED
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    const char *s = wl_os_getenv(option_names[i]);
    long v;
    if (s != NULL && *s != 0 && wl_option_parse(s, 0, &v)) wl_option_values[i] = v;
    else if (i == WL_OPT_STATS && s != NULL && streq_nocase(s, "json")) wl_option_values[i] = WL_STATS_JSON;
  }
#endif
}

