/* options.c: the one option table (core.h, "Options"), its three doors and
 * its reports.
 *
 * Owns: the values in force (wl_option_values, wl_option_texts), the copy
 * of WALLOC_OPTIONS split into items, the reports of bad settings, and the
 * public walloc_option_get/set.
 * Order: a variable WALLOC_<NAME> wins over an item of WALLOC_OPTIONS,
 * which wins over the default; walloc_option_set, for the options that
 * allow it, wins over all once called.
 * Thread safety: each group is read under its own once; values are relaxed
 * atomics, so a walloc_option_set is seen by later calls of other threads
 * without a lock. TEXT values point into the environment or into the copy
 * of WALLOC_OPTIONS, both kept for the life of the process.
 * Nothing here allocates: reports go through the platform's formatter.
 */
#include "core.h"
#include "walloc.h"

#include <string.h>

/* The descriptions are for docs/options.md (tests/options_table.c, native):
   wasm modules leave them out. */
#if defined(__wasm__)
#define WL_OPTION_DOC_(text) NULL
#else
#define WL_OPTION_DOC_(text) text
#endif
#define WL_OPTION_INFO_(id, nm, kd, d, wd, lo, hi, grp, rt, ex, text) \
  [WL_OPT_##id] = {.name = nm, .extra = ex, .doc = WL_OPTION_DOC_(text), .kind = WL_OPTK_##kd, .group = WL_OPTG_##grp, \
                   .def = (d), .wasm_def = (wd), .min = (lo), .max = (hi), .runtime = (rt) != 0},
const wl_option_info_t wl_option_info[WL_OPT_COUNT] = {WL_OPTION_TABLE(WL_OPTION_INFO_)};
#undef WL_OPTION_INFO_

/* ------------------------------------------------------------------------
   Reading a value
   ------------------------------------------------------------------------ */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }
static char upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 32) : c; }

/* a and b equal ignoring case, b of length n (a NUL-terminated) */
static bool same_word(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++, a++) {
    if (*a == 0 || lower(*a) != lower(b[i])) return false;
  }
  return *a == 0;
}

bool wl_option_number(const char *s, int64_t *out) {
  if (same_word(s, "yes", 3) || same_word(s, "true", 4) || same_word(s, "on", 2)) { *out = 1; return true; }
  if (same_word(s, "no", 2) || same_word(s, "false", 5) || same_word(s, "off", 3)) { *out = 0; return true; }
  bool neg = *s == '-';
  if (neg) s++;
  if (*s < '0' || *s > '9') return false;
  int64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (*s - '0');
  }
  int shift = lower(*s) == 'k' ? 10 : lower(*s) == 'm' ? 20 : lower(*s) == 'g' ? 30 : 0;
  if (shift != 0) s++;
  if (*s != 0 || v > (INT64_MAX >> shift)) return false;
  *out = neg ? -(v << shift) : v << shift;
  return true;
}

/* A CHOICE's value: the index of its name in extra ("no,yes,json"), else a
   number in range. -1 when it is neither. */
static int64_t choice_of(const wl_option_info_t *info, const char *s) {
  int64_t index = 0;
  for (const char *c = info->extra; *c != 0; index++) {
    size_t n = strcspn(c, ",");
    if (same_word(s, c, n)) return index;
    c += n + (c[n] == ',');
  }
  int64_t v;
  return wl_option_number(s, &v) && v >= info->min && v <= info->max ? v : -1;
}

/* The number at the start of s, up to the first of `ends` (or the end): the
   rest of s, or NULL when it is not a non-negative number. */
static const char *tiers_piece(const char *s, const char *ends, uint64_t *out) {
  char piece[24];
  size_t n = strcspn(s, ends);
  int64_t v;
  if (n == 0 || n >= sizeof piece || *s < '0' || *s > '9') return NULL;
  memcpy(piece, s, n);
  piece[n] = 0;
  if (!wl_option_number(piece, &v)) return NULL;
  *out = (uint64_t)v;
  return s + n;
}

const char *wl_tiers_shape_refusal(uint64_t memory, const unsigned percent[3]) {
  if (memory < WL_TIERS_MIN_MEMORY || memory > WL_TIERS_MAX_MEMORY) {
    return SIZE_MAX < ((uint64_t)1 << 36) ? "the memory must be from 1M to 4G-1" : "the memory must be from 1M to 64G";
  }
  unsigned sum = 0;
  for (int i = 0; i < 3; i++) {
    if (percent[i] > 100) return "a share is above 100 %";
    sum += percent[i];
  }
  if (sum == 0 || sum > 100) return "the shares must add up to 1..100 %";
  for (int i = 0; i < 3; i++) {
    if (percent[i] != 0 && memory / 100 * percent[i] < WL_TIERS_MIN_SHARE) return "a share gives its tier less than 64K";
  }
  return NULL;
}

const char *wl_option_tiers(const char *s, wl_tiers_option_t *out) {
  static const char *const syntax = "not <memory>[:<render>,<scene>,<entity>]";
  static const unsigned defaults[3] = WL_TIERS_DEFAULT_SHARES;
  wl_tiers_option_t e;
  memset(&e, 0, sizeof e);
  uint64_t v;
  if ((s = tiers_piece(s, ":", &v)) == NULL) return syntax;
  e.memory = v;
  if (*s != 0) {
    s++;
    for (int i = 0; i < 3; i++) {
      if ((s = tiers_piece(s, ",", &v)) == NULL) return syntax;
      e.percent[i] = v > 100 ? 101 : (unsigned)v;
      if (i < 2 && *s++ != ',') return syntax;
    }
    if (*s != 0) return syntax;
  }
  bool given = (e.percent[0] | e.percent[1] | e.percent[2]) != 0; /* else the defaults */
  const char *why = wl_tiers_shape_refusal(e.memory, given ? e.percent : defaults);
  if (why == NULL) *out = e;
  return why;
}

typedef enum { VALUE_OK, VALUE_MALFORMED, VALUE_RANGE } value_verdict_t;

/* Check s for the option; the number it means in *out (TEXT: its length). */
static value_verdict_t value_of(const wl_option_info_t *info, const char *s, int64_t *out) {
  switch (info->kind) {
    case WL_OPTK_TEXT:
      *out = (int64_t)strlen(s);
      return *out <= info->max ? VALUE_OK : VALUE_RANGE;
    case WL_OPTK_TIERS: {
      wl_tiers_option_t t;
      *out = (int64_t)strlen(s);
      return wl_option_tiers(s, &t) == NULL ? VALUE_OK : VALUE_MALFORMED;
    }
    case WL_OPTK_CHOICE:
      *out = choice_of(info, s);
      return *out >= 0 ? VALUE_OK : VALUE_MALFORMED;
    case WL_OPTK_BOOL:
    case WL_OPTK_INT:
    case WL_OPTK_SIZE:
      break;
  }
  if (!wl_option_number(s, out)) return VALUE_MALFORMED;
  if (info->kind != WL_OPTK_SIZE) { /* K, M, G only for sizes */
    size_t n = strlen(s);
    if (n > 0 && strchr("kKmMgG", s[n - 1]) != NULL) return VALUE_MALFORMED;
  }
  if (*out >= info->min && *out <= info->max) return VALUE_OK;
  return info->kind == WL_OPTK_BOOL ? VALUE_MALFORMED : VALUE_RANGE;
}

/* ------------------------------------------------------------------------
   Reports: one line each, on stderr, always
   ------------------------------------------------------------------------ */

static void out_i64(wl_out_t *o, int64_t v) {
  if (v < 0) wl_out_char(o, '-');
  wl_out_u64(o, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 0);
}

static void out_upper(wl_out_t *o, const char *s) {
  for (; *s != 0; s++) wl_out_char(o, upper(*s));
}

/* The value an option has when nothing sets it, as a user writes it. */
static void out_value(wl_out_t *o, const wl_option_info_t *info, int64_t v) {
  if (info->kind == WL_OPTK_CHOICE) {
    const char *c = info->extra;
    for (int64_t i = 0; i < v && *c != 0; i++) c += strcspn(c, ",") + 1;
    size_t n = strcspn(c, ",");
    for (size_t i = 0; i < n; i++) wl_out_char(o, c[i]);
  } else if (info->kind == WL_OPTK_BOOL) {
    wl_out_str(o, v ? "yes" : "no");
  } else if (info->kind == WL_OPTK_SIZE && v > 0 && (v & 1023) == 0) {
    int shift = (v & ((1 << 30) - 1)) == 0 ? 30 : (v & ((1 << 20) - 1)) == 0 ? 20 : 10;
    out_i64(o, v >> shift);
    wl_out_char(o, shift == 30 ? 'G' : shift == 20 ? 'M' : 'K');
  } else {
    out_i64(o, v);
  }
}

/* "walloc: warning: " then where the setting came from: WALLOC_NAME=value,
   or WALLOC_OPTIONS item name=value. */
static void report_head(wl_out_t *o, const wl_option_info_t *info, const char *name, size_t name_len,
                        const char *value, bool from_options) {
  wl_report_begin(o, 2, "warning");
  if (from_options) wl_out_str(o, "WALLOC_OPTIONS item ");
  else wl_out_str(o, "WALLOC_");
  for (size_t i = 0; i < name_len; i++) {
    char c = info != NULL ? info->name[i] : name[i];
    wl_out_char(o, from_options ? c : upper(c));
  }
  wl_out_char(o, '=');
  wl_out_str(o, value);
}

static int64_t default_of(const wl_option_info_t *info) { return WL_OPTIONS_FIXED ? info->wasm_def : info->def; }

static void report_value(const wl_option_info_t *info, const char *value, bool from_options, value_verdict_t v) {
  wl_out_t o;
  report_head(&o, info, NULL, strlen(info->name), value, from_options);
  wl_tiers_option_t t;
  if (info->kind == WL_OPTK_TIERS) {
    wl_out_str(&o, " refused (");
    wl_out_str(&o, wl_option_tiers(value, &t));
    wl_out_char(&o, ')');
  } else if (v == VALUE_RANGE && info->kind == WL_OPTK_TEXT) {
    wl_out_str(&o, " is longer than ");
    out_i64(&o, info->max);
    wl_out_str(&o, " bytes");
  } else if (v == VALUE_RANGE) {
    wl_out_str(&o, " is out of range (");
    out_value(&o, info, info->min);
    wl_out_str(&o, " to ");
    out_value(&o, info, info->max);
    wl_out_char(&o, ')');
  } else if (info->kind == WL_OPTK_CHOICE) {
    wl_out_str(&o, " is not one of ");
    wl_out_str(&o, info->extra);
  } else {
    wl_out_str(&o, info->kind == WL_OPTK_BOOL ? " is not yes or no" :
                   info->kind == WL_OPTK_SIZE ? " is not a size (a number, K, M or G)" : " is not a number");
  }
  wl_out_str(&o, "; using ");
  if (info->kind >= WL_OPTK_TEXT) wl_out_str(&o, info->extra);
  else out_value(&o, info, default_of(info));
  wl_out_char(&o, '\n');
  wl_out_flush(&o);
}

void wl_option_refused(wl_option_t opt, const char *value, const char *why, const char *instead) {
  const wl_option_info_t *info = &wl_option_info[opt];
  wl_out_t o;
  report_head(&o, info, NULL, strlen(info->name), value, false);
  wl_out_str(&o, " refused (");
  wl_out_str(&o, why);
  wl_out_str(&o, "); using ");
  wl_out_str(&o, instead);
  wl_out_char(&o, '\n');
  wl_out_flush(&o);
}

/* Edit distance between a (length n, any case) and b, capped at 9. */
static unsigned distance(const char *a, size_t n, const char *b) {
  enum { MAX = 48 };
  size_t m = strlen(b);
  if (n >= MAX || m >= MAX) return 9;
  unsigned row[MAX];
  for (size_t j = 0; j <= m; j++) row[j] = (unsigned)j;
  for (size_t i = 1; i <= n; i++) {
    unsigned diag = row[0];
    row[0] = (unsigned)i;
    for (size_t j = 1; j <= m; j++) {
      unsigned up = row[j];
      unsigned best = diag + (lower(a[i - 1]) != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[m] > 9 ? 9 : row[m];
}

static void report_unknown(const char *name, size_t n, const char *value, bool from_options) {
  const wl_option_info_t *near = NULL;
  unsigned best = 4; /* further than 3 edits is no suggestion */
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    unsigned d = distance(name, n, wl_option_info[i].name);
    if (d < best) best = d, near = &wl_option_info[i];
  }
  wl_out_t o;
  report_head(&o, NULL, name, n, value, from_options);
  wl_out_str(&o, " is not an option");
  if (near != NULL) {
    wl_out_str(&o, " (did you mean ");
    if (from_options) wl_out_str(&o, near->name);
    else wl_out_str(&o, "WALLOC_"), out_upper(&o, near->name);
    wl_out_str(&o, "?)");
  }
  wl_out_str(&o, "; ignored\n");
  wl_out_flush(&o);
}

/* ------------------------------------------------------------------------
   The values in force, and the three doors
   ------------------------------------------------------------------------ */

#define WL_OPTION_DEFAULT_(id, nm, kd, d, wd, ...) [WL_OPT_##id] = WL_OPTIONS_FIXED ? (wd) : (d),
_Atomic(int64_t) wl_option_values[WL_OPT_COUNT] = {WL_OPTION_TABLE(WL_OPTION_DEFAULT_)};
#undef WL_OPTION_DEFAULT_
const char *wl_option_texts[WL_OPT_COUNT];

/* WALLOC_OPTIONS, copied and split: items[i] is "name=value" cut at its
   end. A copy: the environment may change under a running program. */
enum { OPTIONS_MAX = 8192, ITEMS_MAX = 64 };
static char options_copy[OPTIONS_MAX];
static const char *items[ITEMS_MAX];
static int item_count;

static bool is_option_name(const char *name, size_t n) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    if (strlen(wl_option_info[i].name) == n && strncmp(wl_option_info[i].name, name, n) == 0) return true;
  }
  return false;
}

/* Split the copy at each comma that starts a new item (the next piece has
   a '=' before its own comma); other commas stay in the value. */
static void options_split(const char *env) {
  item_count = 0;
  if (env == NULL || *env == 0) return;
  size_t len = strlen(env);
  if (len >= OPTIONS_MAX) {
    wl_out_t o;
    wl_report_begin(&o, 2, "warning");
    wl_out_str(&o, "WALLOC_OPTIONS is longer than 8191 bytes; ignored\n");
    wl_out_flush(&o);
    return;
  }
  memcpy(options_copy, env, len + 1);
  char *p = options_copy;
  while (*p != 0 && item_count < ITEMS_MAX) {
    items[item_count++] = p;
    char *cut = NULL;
    for (char *c = strchr(p, ','); c != NULL; c = strchr(c + 1, ',')) {
      size_t piece = strcspn(c + 1, ",");
      if (memchr(c + 1, '=', piece) != NULL || piece == 0) { cut = c; break; }
    }
    if (cut == NULL) break;
    *cut = 0;
    p = cut + 1;
  }
  for (int i = 0; i < item_count; i++) { /* unknown names and items without a value: said once */
    size_t n = strcspn(items[i], "=");
    if (items[i][n] != '=') {
      wl_out_t o;
      wl_report_begin(&o, 2, "warning");
      wl_out_str(&o, "WALLOC_OPTIONS item ");
      wl_out_str(&o, items[i]);
      wl_out_str(&o, " is not name=value; ignored\n");
      wl_out_flush(&o);
    } else if (!is_option_name(items[i], n)) {
      report_unknown(items[i], n, items[i] + n + 1, true);
    }
  }
}

static const char *item_value(const char *name) {
  size_t n = strlen(name);
  const char *found = NULL; /* the last item of that name wins */
  for (int i = 0; i < item_count; i++) {
    if (strncmp(items[i], name, n) == 0 && items[i][n] == '=') found = items[i] + n + 1;
  }
  return found;
}

/* Variables WALLOC_* that name no option (WALLOC_OPTIONS aside). */
static void report_unknown_variables(void) {
  for (size_t i = 0;; i++) {
    const char *e = wl_os_env_at(i);
    if (e == NULL) break;
    if (strncmp(e, "WALLOC_", 7) != 0) continue;
    const char *name = e + 7;
    size_t n = strcspn(name, "=");
    if (name[n] != '=' || (n == 7 && strncmp(name, "OPTIONS", 7) == 0)) continue;
    bool known = false;
    for (int k = 0; k < WL_OPT_COUNT && !known; k++) {
      const char *o = wl_option_info[k].name;
      known = strlen(o) == n;
      for (size_t c = 0; known && c < n; c++) known = name[c] == upper(o[c]);
    }
    if (!known) report_unknown(name, n, name + n + 1, false);
  }
}

/* The text each option's bad setting had when it was reported: a later
   read of its group reports only a setting changed since. */
static const char *reported[WL_OPT_COUNT][2];

static bool said_before(wl_option_t opt, int source, const char *text) {
  const char *before = reported[opt][source];
  reported[opt][source] = text;
  return before != NULL && strcmp(before, text) == 0;
}

static void read_one(wl_option_t opt) {
  const wl_option_info_t *info = &wl_option_info[opt];
  char var[64] = "WALLOC_"; /* names are under 56 bytes (asserted by the options test) */
  size_t n = strlen(info->name);
  for (size_t i = 0; i <= n; i++) var[7 + i] = upper(info->name[i]);
  /* the variable first; if it is bad, the item if good, else the default */
  const char *sources[2] = {wl_os_getenv(var), item_value(info->name)};
  int64_t v = default_of(info);
  const char *text = NULL;
  for (int s = 0; s < 2; s++) {
    if (sources[s] == NULL || (*sources[s] == 0 && s == 0)) continue;
    int64_t got;
    value_verdict_t verdict = value_of(info, sources[s], &got);
    if (verdict != VALUE_OK) {
      if (!said_before(opt, s, sources[s])) report_value(info, sources[s], s == 1, verdict);
      continue;
    }
    if (info->kind >= WL_OPTK_TEXT) text = sources[s];
    else v = got;
    break;
  }
  wl_store_relaxed(&wl_option_values[opt], v);
  wl_option_texts[opt] = text;
}

static void read_group(wl_option_group_t g) {
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    if (wl_option_info[i].group == g) read_one((wl_option_t)i);
  }
}

/* At process start every option is read, so every bad setting is reported
   there, whether or not the program uses its layer; the tiers and the
   assets read their groups again when they start (a program may set their
   variables before), reporting only what changed. */
static void split(void) { options_split(wl_os_getenv("WALLOC_OPTIONS")); }

/* Under the heap group's once, which every other group's read runs first:
   WALLOC_OPTIONS is split once, before any group looks at its items. */
static void read_heap(void) {
  split();
  report_unknown_variables();
  for (int i = 0; i < WL_OPT_COUNT; i++) read_one((wl_option_t)i);
}
static void read_tiers(void) { read_group(WL_OPTG_TIERS); }
static void read_assets(void) { read_group(WL_OPTG_ASSETS); }

static wl_once_t group_once[WL_OPTG_COUNT] = {
  WL_ONCE_INIT(WL_LEVEL_CORE), WL_ONCE_INIT(WL_LEVEL_CORE), WL_ONCE_INIT(WL_LEVEL_CORE)};
WL_LOCK_REGISTER(group_once_register0, &group_once[0].lock);
WL_LOCK_REGISTER(group_once_register1, &group_once[1].lock);
WL_LOCK_REGISTER(group_once_register2, &group_once[2].lock);
static void (*const group_read[WL_OPTG_COUNT])(void) = {read_heap, read_tiers, read_assets};

/* wasm: nothing to read (core.h), and so nothing of the reading linked. */
void wl_options_read_heap(void) {
  if (!WL_OPTIONS_FIXED) wl_once(&group_once[WL_OPTG_HEAP], read_heap);
}

void wl_options_read_group(wl_option_group_t g) {
  if (WL_OPTIONS_FIXED) return;
  wl_options_read_heap();
  wl_once(&group_once[g], group_read[g]);
}

void wl_options_reread(void) {
  wl_options_read(WL_OPTG_ASSETS);
  wl_options_read(WL_OPTG_TIERS);
  if (WL_OPTIONS_FIXED) return;
  memset(reported, 0, sizeof reported);
  read_heap(); /* WALLOC_OPTIONS split again: the environment changed */
}

/* ------------------------------------------------------------------------
   walloc_option_get / walloc_option_set
   ------------------------------------------------------------------------ */

static const wl_option_info_t *find(const char *name) {
  if (name == NULL) return NULL;
  if (strncmp(name, "WALLOC_", 7) == 0) name += 7;
  for (int i = 0; i < WL_OPT_COUNT; i++) {
    if (same_word(name, wl_option_info[i].name, strlen(wl_option_info[i].name))) return &wl_option_info[i];
  }
  return NULL;
}

WL_API walloc_status walloc_option_get(const char *name, long *value) {
  const wl_option_info_t *info = find(name);
  if (info == NULL || value == NULL) return info == NULL ? WALLOC_ERR_NOT_FOUND : WALLOC_ERR_INVALID;
  wl_option_t opt = (wl_option_t)(info - wl_option_info);
  wl_options_read(info->group);
  if (info->kind >= WL_OPTK_TEXT) return WALLOC_ERR_UNSUPPORTED; /* text: walloc_option_text */
  *value = (long)wl_option(opt);
  return WALLOC_OK;
}

WL_API const char *walloc_option_text(const char *name) {
  const wl_option_info_t *info = find(name);
  if (info == NULL || info->kind < WL_OPTK_TEXT) return NULL;
  wl_options_read(info->group);
  return wl_option_text((wl_option_t)(info - wl_option_info));
}

WL_API walloc_status walloc_option_set(const char *name, long value) {
  const wl_option_info_t *info = find(name);
  if (info == NULL) return WALLOC_ERR_NOT_FOUND;
  wl_option_t opt = (wl_option_t)(info - wl_option_info);
  if (WL_OPTIONS_FIXED || !info->runtime || info->kind >= WL_OPTK_TEXT) return WALLOC_ERR_UNSUPPORTED;
  if (value < info->min || value > info->max) return WALLOC_ERR_INVALID;
  wl_options_read(info->group);
  wl_store_relaxed(&wl_option_values[opt], (int64_t)value);
  return WALLOC_OK;
}
