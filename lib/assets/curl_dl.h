/* curl_dl.h: libcurl bound at run time (curl_dl.c).
 *
 * libwalloc.so is preloaded into every process a user starts; linking it
 * against libcurl would map libcurl and its thirty dependencies (TLS,
 * Kerberos, LDAP, IDN...) into each of them, and run their constructors:
 * 3 ms and ~460 page faults per process start, for programs that never load
 * an asset. So libcurl is opened with dlopen on the first asset load
 * instead, and http.c calls it through the table below. Its headers are
 * still needed at build time (the `curl` feature option).
 *
 * After this header, curl_easy_setopt and the other functions http.c uses
 * name the table's entries, so http.c reads as plain libcurl code. */
#ifndef WL_CURL_DL_H
#define WL_CURL_DL_H

#define CURL_DISABLE_TYPECHECK 1  /* its macros would wrap the names defined below */
#include <curl/curl.h>

#include "walloc.h"

typedef struct wl_curl_api_s {
  CURLcode (*global_init)(long flags);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  void (*easy_cleanup)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_perform)(CURLM *, int *running);
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int timeout_ms, int *numfds);
  CURLMsg *(*multi_info_read)(CURLM *, int *left);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLU *(*url)(void);
  CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int flags);
  CURLUcode (*url_get)(CURLU *, CURLUPart, char **, unsigned int flags);
  void (*url_cleanup)(CURLU *);
  void (*free)(void *);
} wl_curl_api_t;

extern wl_curl_api_t wl_curl;

/* Opens libcurl (once: later calls return the first answer) and runs
   curl_global_init. WALLOC_OK, or WALLOC_ERR_UNSUPPORTED when the library
   cannot be opened or lacks a function, WALLOC_ERR_IO when its set-up
   fails; then *reason says why (a string that stays valid). Thread-safe. */
walloc_status wl_curl_load(const char **reason);

/* curl.h wraps these three in same-name macros that check the argument count */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (wl_curl.global_init)
#define curl_easy_init (wl_curl.easy_init)
#define curl_easy_setopt (wl_curl.easy_setopt)
#define curl_easy_getinfo (wl_curl.easy_getinfo)
#define curl_easy_cleanup (wl_curl.easy_cleanup)
#define curl_easy_strerror (wl_curl.easy_strerror)
#define curl_multi_init (wl_curl.multi_init)
#define curl_multi_setopt (wl_curl.multi_setopt)
#define curl_multi_add_handle (wl_curl.multi_add_handle)
#define curl_multi_remove_handle (wl_curl.multi_remove_handle)
#define curl_multi_perform (wl_curl.multi_perform)
#define curl_multi_poll (wl_curl.multi_poll)
#define curl_multi_info_read (wl_curl.multi_info_read)
#define curl_multi_cleanup (wl_curl.multi_cleanup)
#define curl_url (wl_curl.url)
#define curl_url_set (wl_curl.url_set)
#define curl_url_get (wl_curl.url_get)
#define curl_url_cleanup (wl_curl.url_cleanup)
#define curl_free (wl_curl.free)

#endif
