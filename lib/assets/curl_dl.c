/* curl_dl.c: opens libcurl on the first asset load (see curl_dl.h for why).
 *
 * Owns: the dlopen of libcurl (WALLOC_LIBCURL when set, a path or a file
 * name; else libcurl.so.4, Debian's OpenSSL flavour, then the GnuTLS one),
 * the table of its entry points, and curl_global_init. The library stays
 * loaded for the life of the process. */
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

wl_curl_api_t wl_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded;
static const char *load_why = "libcurl was not loaded";
static char why_buf[384]; /* written once, inside the pthread_once */

static const char *const sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};

/* Each entry of wl_curl with its symbol, in one list so none is forgotten. */
#define WL_CURL_SYMBOLS(X)                                              \
  X(global_init) X(easy_init) X(easy_setopt) X(easy_getinfo)            \
  X(easy_cleanup) X(easy_strerror) X(multi_init) X(multi_setopt)        \
  X(multi_add_handle) X(multi_remove_handle) X(multi_perform)           \
  X(multi_poll) X(multi_info_read) X(multi_cleanup)

static bool bind_all(void *lib) {
  void *sym;
#define WL_CURL_BIND(name)                              \
  if ((sym = dlsym(lib, "curl_" #name)) == NULL) return false; \
  *(void **)&wl_curl.name = sym;
  WL_CURL_SYMBOLS(WL_CURL_BIND)
#undef WL_CURL_BIND
  return true;
}

static void load(void) {
  void *lib = NULL;
  const char *forced = getenv("WALLOC_LIBCURL");
  if (forced != NULL && forced[0] != '\0') {
    lib = dlopen(forced, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      const char *err = dlerror();
      snprintf(why_buf, sizeof why_buf, "WALLOC_LIBCURL=%.160s could not be opened: %.180s", forced,
               err ? err : "no reason given");
      load_why = why_buf;
      return;
    }
  }
  for (size_t i = 0; i < sizeof sonames / sizeof sonames[0] && lib == NULL; i++)
    lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    load_why = "libcurl.so.4 could not be opened (install the libcurl4 package)";
    return;
  }
  if (!bind_all(lib)) {
    load_why = "libcurl.so.4 lacks an entry point walloc needs (libcurl 7.66 or later is required)";
    dlclose(lib);
    return;
  }
  CURLcode rc = wl_curl.global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    load_why = wl_curl.easy_strerror(rc);
    return;  /* stays open: libcurl may hold on to what it set up */
  }
  loaded = true;
  load_why = NULL;
}

bool wl_curl_load(const char **why) {
  pthread_once(&load_once, load);
  if (!loaded && why) *why = load_why;
  return loaded;
}
