/* curl_dl.c: opens libcurl on the first asset load (see curl_dl.h for why).
 *
 * Owns: the dlopen of libcurl (WALLOC_LIBCURL when set, a path or a file
 * name; else libcurl.so.4, Debian's OpenSSL flavour, then the GnuTLS one),
 * the table of its entry points, and curl_global_init. The library stays
 * loaded for the life of the process. */
#include "assets.h"
#include "curl_dl.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

wl_curl_api_t wl_curl;

static walloc_status load_status = WALLOC_ERR_UNSUPPORTED;
static char why[384]; /* written once, inside the once */

static const char *const sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};

static void fail(walloc_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(walloc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  load_status = st;
}

/* Each entry of wl_curl with its symbol, in one list so none is forgotten.
   Returns the first missing symbol, NULL when all are bound. */
#define WL_CURL_SYMBOLS(X)                                              \
  X(global_init) X(easy_init) X(easy_setopt) X(easy_getinfo)            \
  X(easy_cleanup) X(easy_strerror) X(multi_init) X(multi_setopt)        \
  X(multi_add_handle) X(multi_remove_handle) X(multi_perform)           \
  X(multi_poll) X(multi_info_read) X(multi_cleanup)                    \
  X(url) X(url_set) X(url_get) X(url_cleanup) X(free)

static const char *bind_all(void *lib) {
  void *sym;
#define WL_CURL_BIND(name)                                              \
  if ((sym = dlsym(lib, "curl_" #name)) == NULL) return "curl_" #name; \
  *(void **)&wl_curl.name = sym;
  WL_CURL_SYMBOLS(WL_CURL_BIND)
#undef WL_CURL_BIND
  return NULL;
}

/* The libcurl option (WALLOC_LIBCURL), when set, is the only library
   tried: the user asked for it. */
static void load(void) {
  const char *forced = walloc_option_text("libcurl");
  const char *name = NULL;
  void *lib = NULL;
  if (forced != NULL && forced[0] != '\0') {
    lib = dlopen(name = forced, RTLD_NOW | RTLD_LOCAL);
  } else {
    for (size_t i = 0; i < sizeof sonames / sizeof sonames[0] && lib == NULL; i++)
      lib = dlopen(name = sonames[i], RTLD_NOW | RTLD_LOCAL);
  }
  if (lib == NULL) {
    const char *err = dlerror();
    if (forced != NULL && forced[0] != '\0')
      fail(WALLOC_ERR_UNSUPPORTED, "WALLOC_LIBCURL=%.160s could not be opened: %.180s", forced,
           err ? err : "no reason given");
    else
      fail(WALLOC_ERR_UNSUPPORTED, "libcurl.so.4 could not be opened (install the libcurl4 package)");
    return;
  }
  const char *missing = bind_all(lib);
  if (missing != NULL) {
    fail(WALLOC_ERR_UNSUPPORTED, "%.200s lacks %s, which walloc needs (libcurl 7.66 or later)", name, missing);
    dlclose(lib);
    return;
  }
  CURLcode rc = wl_curl.global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) { /* stays open: libcurl may hold on to what it set up */
    fail(WALLOC_ERR_IO, "libcurl could not be initialised: %.200s", wl_curl.easy_strerror(rc));
    return;
  }
  load_status = WALLOC_OK;
}

/* A wl_once (core.h): a fork child whose parent had another thread inside
   load() finds it done or not begun (pthread_once would leave it waiting). */
WL_ONCE_STATIC(load_once, WL_LEVEL_ASSETS);

walloc_status wl_curl_load(const char **reason) {
  wl_once(&load_once, load);
  if (load_status != WALLOC_OK && reason != NULL) *reason = why;
  return load_status;
}
