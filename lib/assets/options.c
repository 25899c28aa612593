/* options.c: the asset settings, the base URL, statistics and error messages.
 *
 * Owns: the settings in force (defaults, overridden once by the asset
 * options of the table, core.h, at the first asset call, then by
 * walloc_set_asset_options), the base URL and the joining of paths onto it,
 * and the asset counters (messages: the core's error path, core.h).
 * Thread safety: settings and the base URL sit behind one small lock; a load
 * works on a snapshot taken at its start. Counters are relaxed atomics.
 * Nothing here allocates except the joined URL
 * (internal heap).
 */
#include "assets.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

wl_asset_counters_t wl_asset_counters;

WL_LOCK_STATIC(opts_lock, WL_LEVEL_ASSETS);
static wl_asset_opts_t opts;       /* settings in force */
static wl_asset_opts_t env_opts;   /* defaults with the environment applied */
static char *base_url;             /* wl_malloc'd, with a trailing '/', or NULL */


/* ------------------------------------------------------------------------
   Defaults and the environment
   ------------------------------------------------------------------------ */

static void opts_defaults(wl_asset_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->connect_timeout_ms = 10000;
  o->timeout_ms = 60000;
  o->max_size = (size_t)256 << 20;
  o->retries = 2;
  o->retry_backoff_ms = 100;
  o->max_redirects = 5;
  o->compressed = true;
  o->verify_tls = true;
  o->revalidate = false;
  o->connections = 8;
  o->audio_tier = WALLOC_TIER_SCENE;
  snprintf(o->user_agent, sizeof o->user_agent, "walloc/%s", WALLOC_VERSION_STRING);
}

/* Fold the public struct (0 / NULL = keep) into o. */
static walloc_status opts_apply(wl_asset_opts_t *o, const walloc_asset_options *u) {
  if (u->connect_timeout_ms < 0 || u->timeout_ms < 0 || u->retry_backoff_ms < 0 || u->retries < -1 ||
      u->max_redirects < -1 || u->connections < 0 || u->connections > 256 || u->audio_tier < 0 ||
      u->audio_tier > WALLOC_TIER_COUNT || (u->user_agent != NULL && strlen(u->user_agent) >= WL_ASSET_UA_MAX))
    return WALLOC_ERR_INVALID;
  if (u->connect_timeout_ms) o->connect_timeout_ms = u->connect_timeout_ms;
  if (u->timeout_ms) o->timeout_ms = u->timeout_ms;
  if (u->max_size) o->max_size = u->max_size;
  if (u->retries) o->retries = u->retries < 0 ? 0 : u->retries;
  if (u->retry_backoff_ms) o->retry_backoff_ms = u->retry_backoff_ms;
  if (u->max_redirects) o->max_redirects = u->max_redirects;
  if (u->compressed) o->compressed = u->compressed > 0;
  if (u->verify_tls) o->verify_tls = u->verify_tls > 0;
  if (u->connections) o->connections = u->connections;
  if (u->revalidate) o->revalidate = u->revalidate > 0;
  if (u->audio_tier) o->audio_tier = (unsigned)u->audio_tier - 1;
  if (u->user_agent != NULL) snprintf(o->user_agent, sizeof o->user_agent, "%s", u->user_agent);
  o->progress = u->progress;
  o->progress_arg = u->progress_arg;
  return WALLOC_OK;
}

/* The asset options of the table (core.h), read at the first asset call,
   as the public struct (0 = keep, -1 = off). */
static void opts_init(void) {
  wl_options_read(WL_OPTG_ASSETS);
  walloc_asset_options u;
  memset(&u, 0, sizeof u);
  u.connect_timeout_ms = (long)wl_option(WL_OPT_ASSET_CONNECT_TIMEOUT_MS);
  u.timeout_ms = (long)wl_option(WL_OPT_ASSET_TIMEOUT_MS);
  u.max_size = (size_t)wl_option(WL_OPT_ASSET_MAX_SIZE);
  u.retries = wl_option(WL_OPT_ASSET_RETRIES) == 0 ? -1 : (int)wl_option(WL_OPT_ASSET_RETRIES);
  u.retry_backoff_ms = (long)wl_option(WL_OPT_ASSET_RETRY_BACKOFF_MS);
  u.max_redirects = wl_option(WL_OPT_ASSET_MAX_REDIRECTS) == 0 ? -1 : (int)wl_option(WL_OPT_ASSET_MAX_REDIRECTS);
  u.compressed = wl_option(WL_OPT_ASSET_COMPRESSED) ? 1 : -1;
  u.verify_tls = wl_option(WL_OPT_ASSET_VERIFY_TLS) ? 1 : -1;
  u.connections = (int)wl_option(WL_OPT_ASSET_CONNECTIONS);
  u.revalidate = wl_option(WL_OPT_ASSET_REVALIDATE) ? 1 : -1;
  u.audio_tier = (int)wl_option(WL_OPT_ASSET_AUDIO_TIER) + 1;
  u.user_agent = wl_option_text(WL_OPT_ASSET_USER_AGENT);
  opts_defaults(&env_opts);
  walloc_status st = opts_apply(&env_opts, &u);
  wl_assert(st == WALLOC_OK); /* the table's ranges are within opts_apply's */
  WL_UNUSED(st);
  opts = env_opts;
}

WL_ONCE_STATIC(opts_once, WL_LEVEL_ASSETS);

void wl_asset_opts(wl_asset_opts_t *out) {
  wl_once(&opts_once, opts_init);
  wl_lock(&opts_lock);
  *out = opts;
  wl_unlock(&opts_lock);
}

WL_API walloc_status walloc_set_asset_options(const walloc_asset_options *options) {
  wl_once(&opts_once, opts_init);
  wl_asset_opts_t o = env_opts;
  if (options != NULL && opts_apply(&o, options) != WALLOC_OK) {
    wl_note("walloc_set_asset_options: a field is out of range");
    return WALLOC_ERR_INVALID;
  }
  wl_lock(&opts_lock);
  opts = o;
  wl_unlock(&opts_lock);
  return WALLOC_OK;
}

unsigned wl_asset_tier(const wl_asset_opts_t *o, walloc_asset_type type) {
  switch (type) {
    case WALLOC_ASSET_TEXTURE:
    case WALLOC_ASSET_MESH:
    case WALLOC_ASSET_SHADER: return WALLOC_TIER_RENDER;
    case WALLOC_ASSET_AUDIO: return o->audio_tier;
    default: return WALLOC_TIER_SCENE;
  }
}

/* ------------------------------------------------------------------------
   Errors and statistics
   ------------------------------------------------------------------------ */

/* The asset calls' messages are the library's (core.h, "Errors"). */
WL_API const char *walloc_asset_last_error(void) { return walloc_last_error(); }

WL_API void walloc_asset_stats_get(walloc_asset_stats *out) {
  if (out == NULL) return;
  wl_asset_counters_t *c = &wl_asset_counters;
  out->requests = wl_load_relaxed(&c->requests);
  out->loaded = wl_load_relaxed(&c->loaded);
  out->failed = wl_load_relaxed(&c->failed);
  out->retries = wl_load_relaxed(&c->retries);
  out->cache_hits = wl_load_relaxed(&c->cache_hits);
  out->bytes_received = wl_load_relaxed(&c->bytes_received);
  out->bytes_copied = wl_load_relaxed(&c->bytes_copied);
}

/* ------------------------------------------------------------------------
   URLs
   ------------------------------------------------------------------------ */

static bool has_prefix_nocase(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++) {
    char x = (*s >= 'A' && *s <= 'Z') ? (char)(*s + 32) : *s;
    if (x != *prefix) return false;
  }
  return true;
}

static bool allowed_scheme(const char *url) {
  return has_prefix_nocase(url, "http://") || has_prefix_nocase(url, "https://") ||
         has_prefix_nocase(url, "file://");
}

/* "scheme:" at the start (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":") */
static bool has_scheme(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
  for (s++; *s; s++) {
    if (*s == ':') return true;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '+' ||
          *s == '-' || *s == '.'))
      return false;
  }
  return false;
}

static bool clean_chars(const char *s) {
  for (; *s; s++) {
    if ((unsigned char)*s <= ' ' || *s == 0x7f) return false;
  }
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Does the path part (before '?' or '#') hold a ".." segment? Dots and
   separators count in any spelling: '.', "%2e"; '/', '\\', "%2f", "%5c". */
static bool has_dotdot(const char *s) {
  int dots = 0;       /* dots in the current segment, -1 once it holds anything else */
  for (;; s++) {
    int c = (unsigned char)*s;
    size_t skip = 0;
    if (c == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
      c = hexval(s[1]) * 16 + hexval(s[2]);
      skip = 2;
    }
    bool end = *s == 0 || *s == '?' || *s == '#';
    if (end || c == '/' || c == '\\') {
      if (dots == 2) return true;
      if (end) return false;
      dots = 0;
    } else if (c == '.' && dots >= 0) {
      dots++;
    } else {
      dots = -1;
    }
    s += skip;
  }
}

char *wl_asset_url(const char *path, walloc_status *st) {
  *st = WALLOC_ERR_INVALID;
  if (!clean_chars(path)) {
    wl_note("invalid asset path \"%.200s\": spaces or control characters", path);
    return NULL;
  }
  wl_lock(&opts_lock);
  size_t blen = base_url != NULL ? strlen(base_url) : 0;
  char *url = NULL;
  bool refused = true;
  if (blen == 0) {
    if (!has_scheme(path)) {
      wl_note("invalid asset path \"%.200s\": not a URL, and no base URL is set", path);
    } else if (!allowed_scheme(path)) {
      wl_note("invalid asset URL \"%.200s\": only http, https and file URLs are loaded", path);
    } else {
      refused = false;
      if ((url = wl_malloc(strlen(path) + 1)) != NULL) strcpy(url, path);
    }
  } else if (has_scheme(path) || (path[0] == '/' && path[1] == '/') || path[0] == '\\') {
    wl_note("asset path \"%.200s\" escapes the base URL: absolute URLs are refused when a base is set",
                   path);
  } else if (has_dotdot(path)) {
    wl_note("asset path \"%.200s\" escapes the base URL: it has a \"..\" segment", path);
  } else {
    const char *rel = path[0] == '/' ? path + 1 : path;
    refused = false;
    url = wl_malloc(blen + strlen(rel) + 1);
    if (url != NULL) {
      memcpy(url, base_url, blen);
      strcpy(url + blen, rel);
    }
  }
  wl_unlock(&opts_lock);
  if (url != NULL) {
    *st = WALLOC_OK;
  } else if (!refused) {
    *st = WALLOC_ERR_NOMEM;
    wl_note("out of memory for the URL of \"%.200s\"", path);
  }
  return url;
}

WL_API walloc_status walloc_set_base_url(const char *url) {
  char *copy = NULL;
  if (url != NULL && *url != 0) {
    if (!clean_chars(url) || !allowed_scheme(url)) {
      wl_note("invalid base URL \"%.200s\": an http, https or file URL without spaces is expected", url);
      return WALLOC_ERR_INVALID;
    }
    size_t n = strlen(url);
    bool slash = url[n - 1] == '/';
    copy = wl_malloc(n + 2);
    if (copy == NULL) {
      wl_note("walloc_set_base_url: out of memory");
      return WALLOC_ERR_NOMEM;
    }
    memcpy(copy, url, n);
    if (!slash) copy[n++] = '/';
    copy[n] = 0;
  }
  wl_lock(&opts_lock);
  char *old = base_url;
  base_url = copy;
  wl_unlock(&opts_lock);
  wl_free(old);
  return WALLOC_OK;
}
