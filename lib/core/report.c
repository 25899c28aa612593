/* report.c: the one error path (core.h, "Errors"): each thread's last
 * status and message, the status strings, and the lines on stderr.
 *
 * Owns: the thread-local status and message; the prefixes.
 * Thread safety: the status and message are the calling thread's own.
 * Nothing here allocates (vsnprintf with %s, %d, %zu and the like does not).
 */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread walloc_status last_status;
static __thread char last_message[512]; /* a URL of 200 bytes and its reason fit */

void wl_report_begin(wl_out_t *o, int fd, const char *kind) {
  wl_out_init(o, fd);
  wl_out_str(o, "walloc: ");
  wl_out_str(o, kind);
  wl_out_str(o, ": ");
}

#if WL_REPORTS
static void report(const char *kind, const char *msg, const void *p) {
  wl_out_t o;
  wl_report_begin(&o, 2, kind);
  wl_out_str(&o, msg);
  if (p != NULL) {
    wl_out_str(&o, " (");
    wl_out_hex(&o, (uintptr_t)p);
    wl_out_char(&o, ')');
  }
  wl_out_char(&o, '\n');
  wl_out_flush(&o);
}

static bool verbose(void) {
  wl_options_read(WL_OPTG_HEAP);
  return wl_option(WL_OPT_VERBOSE) > 0;
}

void wl_error(const char *msg, const void *p) {
  if (verbose()) report("error", msg, p);
}

void wl_warn(const char *msg, const void *p) {
  if (WL_DEBUG > 0 || verbose()) report("warning", msg, p);
}

void wl_fatal(const char *msg, const void *p) {
  if (WL_DEBUG > 0) {
    report("fatal", msg, p);
    wl_os_abort();
  }
  if (verbose()) report("error", msg, p);
}
#endif

void wl_fail(walloc_status st, const char *what) {
  last_status = st;
  const char *text = what != NULL ? what : walloc_status_str(st);
  size_t n = strlen(text);
  if (n >= sizeof last_message) n = sizeof last_message - 1;
  memcpy(last_message, text, n);
  last_message[n] = 0;
#if WL_REPORTS
  if (what != NULL && (WL_DEBUG > 0 || verbose())) report("error", what, NULL);
#endif
}

void wl_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
#if WL_REPORTS
  if (WL_DEBUG > 0 || verbose()) report("error", last_message, NULL);
#endif
}

WL_API walloc_status walloc_last_status(void) { return last_status; }

WL_API const char *walloc_last_error(void) { return last_message; }

WL_API const char *walloc_status_str(walloc_status s) {
  switch (s) {
    case WALLOC_OK: return "WALLOC_OK: success";
    case WALLOC_ERR_NOMEM: return "WALLOC_ERR_NOMEM: out of memory (tier full or system refused)";
    case WALLOC_ERR_INVALID: return "WALLOC_ERR_INVALID: invalid argument (tier, handle, pointer or configuration)";
    case WALLOC_ERR_BOUNDS: return "WALLOC_ERR_BOUNDS: offset and length do not fit in the block";
    case WALLOC_ERR_STALE: return "WALLOC_ERR_STALE: the handle's block was reclaimed (reset, compaction or deallocation)";
    case WALLOC_ERR_BUDGET: return "WALLOC_ERR_BUDGET: the budget refused the allocation";
    case WALLOC_ERR_NOT_FOUND: return "WALLOC_ERR_NOT_FOUND: not found";
    case WALLOC_ERR_IO: return "WALLOC_ERR_IO: input/output error";
    case WALLOC_ERR_UNSUPPORTED: return "WALLOC_ERR_UNSUPPORTED: not supported in this build or on this platform";
  }
  return "walloc: unknown status";
}
