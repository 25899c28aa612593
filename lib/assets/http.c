/* http.c: loading assets with libcurl (built when libcurl is found).
 *
 * Owns: a small pool of idle multi handles (each keeps its connection
 * cache, so consecutive loads reuse connections), the cancel epoch, and the
 * transfers of each load call with their spools (memory mapped from the OS,
 * outside the tiers and the heap, for bodies of unknown length). libcurl
 * itself is opened by curl_dl.c on the first load; its functions are
 * called through that table.
 *
 * One core path: walloc_load_asset is a batch of one. A batch resolves each
 * request (cache hit, duplicate of an earlier request, bad path, or a
 * transfer), then drives the transfers through one multi handle, at most
 * `connections` at once; a transient failure (connection refused or reset,
 * timeout, HTTP 5xx) is scheduled again after its backoff while the other
 * transfers go on. Each transfer ends in exactly one of: registered, or
 * failed with its block released and its easy handle cleaned up.
 *
 * Streaming: when the final response's headers give Content-Length (and no
 * Content-Encoding), or a file's size is known, the header callback checks
 * it against max_size and allocates the whole tier block before the first
 * byte arrives, and the body is written straight into it: no copy after
 * that. Otherwise (chunked, compressed) the body is received outside the
 * tiers, into a spool: pieces mapped from the OS for the transfer, 64 KiB
 * doubling to 4 MiB, never moved; when the transfer has ended well, the
 * body is placed once into a tier block of exactly its length (one copy,
 * counted in bytes_copied), each piece unmapped as soon as it is copied.
 * So the tier sees the one request it would see with a Content-Length:
 * whatever loads with a length loads without one. (Growing a tier block
 * instead, the first design, held the old block while taking the new one
 * and left every smaller size on free lists the next size cannot use: a
 * 200 MiB body fitted neither the default scene tier nor the render tier;
 * docs/assets.md has the figures.) More than max_size aborts the transfer
 * either way.
 *
 * file:// URLs must name a regular file: anything else is refused before
 * libcurl opens it (file_is_regular says why).
 *
 * Cancellation: walloc_cancel_asset_loads bumps a global epoch; a transfer
 * belongs to the epoch its batch call saw on entry, and its callbacks and
 * the batch loop (which wakes at least every 50 ms) stop it when the epoch
 * moves. The epoch is read first thing in the call, before libcurl is
 * opened (which takes long the first time): a cancel that comes while a
 * call is under way stops it.
 *
 * Thread safety: a batch is driven by the calling thread alone; the multi
 * pool and the cancel epoch are the only shared state (a lock, an atomic).
 * fork: no lock of ours is held across a transfer; the multi pool's lock
 * and the one around curl_easy_init (easy_new) are registered, so a child
 * finds the pool whole and libcurl's global lock free. A transfer another
 * thread was running is that thread's (its handles are never in the pool
 * while in use): the child never sees it. libcurl's own state beyond that
 * (TLS libraries, resolver threads) is libcurl's: its documentation asks
 * that handles not be shared across fork, and walloc never does.
 */
#include "assets.h"

#include "curl_dl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define POLL_MS       50                  /* the batch loop's longest sleep (cancel latency) */
#define MULTI_POOL    8                   /* idle multi handles kept */

enum { X_SKIP, X_READY, X_ACTIVE, X_WAIT, X_DONE };

struct batch_s;

typedef struct xfer_s {
  const char *key;
  char *url;                   /* wl_malloc'd */
  struct batch_s *b;
  walloc_asset_type type;
  unsigned tier;
  int state, attempt;
  size_t dup_of;               /* index of the first request with this key, or SIZE_MAX */
  int64_t retry_at;
  CURL *easy;
  /* the body: len bytes so far, written at ptr (cap bytes from body offset
     base): the tier block when the length is known, else the spool's last piece */
  walloc_handle h;
  uint8_t *ptr;
  size_t cap, len, base, expected; /* expected: Content-Length, 0 if unknown */
  struct chunk_s *chunks, *last;   /* the spool's pieces, or NULL */
  /* the response being read */
  long code;
  int64_t clen;                /* Content-Length header, -1 if none */
  bool encoded, chunked, sized;
  /* the outcome */
  walloc_status st;
  bool transient;
  long http;
  char msg[WL_ASSET_ERROR_MAX];
  char errbuf[CURL_ERROR_SIZE];
} xfer_t;

typedef struct batch_s {
  wl_asset_opts_t o;
  uint64_t epoch;
  CURLM *m;
  xfer_t *x;
  size_t n, next_ready, active, waiting;
} batch_t;

static _Atomic(uint64_t) cancel_epoch;
WL_LOCK_STATIC(pool_lock, WL_LEVEL_ASSETS);
WL_LOCK_STATIC(easy_lock, WL_LEVEL_ASSETS);
static CURLM *pool[MULTI_POOL];
static int pool_n;

WL_API void walloc_cancel_asset_loads(void) { wl_fetch_add(&cancel_epoch, 1); }

static bool cancelled(const xfer_t *x) { return wl_load_relaxed(&cancel_epoch) != x->b->epoch; }

/* The first failure of an attempt wins; later ones are consequences. */
static void xfail(xfer_t *x, walloc_status st, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void xfail(xfer_t *x, walloc_status st, bool transient, const char *fmt, ...) {
  if (x->st != WALLOC_OK) return;
  x->st = st;
  x->transient = transient;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->msg, sizeof x->msg, fmt, ap);
  va_end(ap);
}

/* A piece of the spool (a body of unknown length): a mapping of its own,
   this header first. Pieces double from 64 KiB to 4 MiB, so a body needs
   few of them and placing it holds at most one piece beyond the body. They
   are never grown or moved: nothing is copied while receiving, and no
   platform needs mremap for it. */
typedef struct chunk_s {
  struct chunk_s *next;
  size_t size; /* of the mapping */
} chunk_t;

#define CHUNK_DATA  ((size_t)64)       /* the header, rounded to a cache line */
#define CHUNK_FIRST ((size_t)64 << 10)
#define CHUNK_MAX   ((size_t)4 << 20)

static void spool_free(xfer_t *x) {
  for (chunk_t *c = x->chunks, *next; c != NULL; c = next) {
    next = c->next;
    wl_osmem_unmap(WL_MEM_ASSETS, c, c->size);
  }
  x->chunks = x->last = NULL;
}

static void release(xfer_t *x) {
  spool_free(x);
  if (x->h != WALLOC_NULL_HANDLE) (void)walloc_deallocate(x->h);
  x->h = WALLOC_NULL_HANDLE;
  x->ptr = NULL;
  x->cap = x->len = x->base = 0;
}

/* ------------------------------------------------------------------------
   Blocks
   ------------------------------------------------------------------------ */

static const char *tier_name(unsigned t) {
  static const char *const names[] = {"render", "scene", "entity", "fallback"};
  return t < 4 ? names[t] : "?";
}

/* A block of at least size bytes in the transfer's tier. */
static bool block_new(xfer_t *x, size_t size, walloc_handle *h, uint8_t **ptr, size_t *cap) {
  *h = walloc_allocate(size, (walloc_tier)x->tier);
  wl_block_ref_t ref;
  if (*h == WALLOC_NULL_HANDLE || wl_handle_resolve(*h, &ref) != WALLOC_OK) {
    walloc_status st = *h == WALLOC_NULL_HANDLE ? walloc_last_status() : WALLOC_ERR_STALE;
    if (st == WALLOC_OK) st = WALLOC_ERR_NOMEM;
    xfail(x, st, false, "%s: the %s tier refused %zu bytes (%s)", x->url, tier_name(x->tier), size,
          st == WALLOC_ERR_BUDGET ? "over its budget" : st == WALLOC_ERR_NOMEM ? "tier full" : walloc_status_str(st));
    *h = WALLOC_NULL_HANDLE;
    return false;
  }
  *ptr = ref.ptr;
  *cap = ref.size;
  return true;
}

/* The length is known before the body: check it, allocate once. */
static bool size_known(xfer_t *x, int64_t len) {
  x->sized = true;
  if ((uint64_t)len > x->b->o.max_size) {
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: %lld bytes is larger than the maximum asset size (%zu bytes)", x->url,
          (long long)len, x->b->o.max_size);
    return false;
  }
  x->expected = (size_t)len;
  if (len == 0) return true; /* an empty body: refused when the transfer ends */
  return block_new(x, (size_t)len, &x->h, &x->ptr, &x->cap);
}

/* ------------------------------------------------------------------------
   Receiving: into the block, or into the spool and placed at the end
   ------------------------------------------------------------------------ */

/* One more piece of spool, for the bytes from x->len on. */
static bool spool_add(xfer_t *x) {
  size_t size = x->last == NULL ? CHUNK_FIRST : wl_min(x->last->size * 2, CHUNK_MAX);
  chunk_t *c = wl_osmem_map(WL_MEM_ASSETS, size, wl_os.page_size, 0, NULL);
  if (c == NULL) {
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: no memory to receive a body of unknown length (%zu bytes so far)",
          x->url, x->len);
    return false;
  }
  c->next = NULL;
  c->size = size;
  if (x->last != NULL) x->last->next = c;
  else x->chunks = c;
  x->last = c;
  x->ptr = (uint8_t *)c + CHUNK_DATA;
  x->cap = size - CHUNK_DATA;
  x->base = x->len;
  return true;
}

/* Append n bytes to the body. A block sized from the announced length is
   never outgrown (libcurl stops at Content-Length; a file that grew is
   refused); the spool takes another piece when its last one is full. */
static bool put(xfer_t *x, const char *data, size_t n) {
  while (n > 0) {
    size_t used = x->len - x->base;
    if (used == x->cap) {
      if (x->h != WALLOC_NULL_HANDLE) {
        xfail(x, WALLOC_ERR_IO, false, "%s: more than the %zu bytes announced arrived", x->url, x->expected);
        return false;
      }
      if (!spool_add(x)) return false;
      used = 0;
    }
    size_t k = wl_min(n, x->cap - used);
    wl_memcpy(x->ptr + used, data, k);
    x->len += k;
    data += k;
    n -= k;
  }
  return true;
}

/* The whole body is in the spool: place it into a tier block of its
   length, unmapping each piece once it is copied. */
static bool place(xfer_t *x) {
  walloc_handle h;
  uint8_t *ptr;
  size_t cap, off = 0;
  if (!block_new(x, x->len, &h, &ptr, &cap)) return false;
  while (x->chunks != NULL) {
    chunk_t *c = x->chunks;
    size_t k = wl_min(c->size - CHUNK_DATA, x->len - off);
    wl_memcpy(ptr + off, (uint8_t *)c + CHUNK_DATA, k);
    off += k;
    x->chunks = c->next;
    wl_osmem_unmap(WL_MEM_ASSETS, c, c->size);
  }
  x->last = NULL;
  wl_asset_count(&wl_asset_counters.bytes_copied, x->len);
  x->h = h;
  x->ptr = ptr;
  x->cap = cap;
  x->base = 0;
  return true;
}

/* curl_easy_init takes libcurl's global lock (a spin lock, for its one-time
   set-up), which libcurl leaves as it was in a fork child: a child forked
   while another thread was inside would spin there at its first load. Under
   a registered lock fork waits for it instead. Nothing slow happens inside:
   libcurl is set up already (curl_dl.c), so it only allocates the handle. */
static CURL *easy_new(void) {
  wl_lock(&easy_lock);
  CURL *e = curl_easy_init();
  wl_unlock(&easy_lock);
  return e;
}

/* ------------------------------------------------------------------------
   libcurl callbacks
   ------------------------------------------------------------------------ */

/* Does the header line [s, s+n) start with name (lower case, with ':')? Points *value past it. */
static bool header_is(const char *s, size_t n, const char *name, const char **value, size_t *vlen) {
  size_t k = strlen(name);
  if (n < k) return false;
  for (size_t i = 0; i < k; i++) {
    char c = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    if (c != name[i]) return false;
  }
  size_t i = k;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  size_t e = n;
  while (e > i && (s[e - 1] == '\r' || s[e - 1] == '\n' || s[e - 1] == ' ')) e--;
  *value = s + i;
  *vlen = e - i;
  return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg) {
  xfer_t *x = arg;
  size_t n = size * nitems;
  const char *v;
  size_t vl;
  if (cancelled(x)) return 0;
  if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new response (after a redirect, or 100) */
    const char *sp = memchr(buf, ' ', n);
    x->code = 0;
    for (const char *p = sp ? sp + 1 : buf + n; p < buf + n && *p >= '0' && *p <= '9'; p++) x->code = x->code * 10 + (*p - '0');
    x->clen = -1;
    x->encoded = x->chunked = false;
  } else if (header_is(buf, n, "content-length:", &v, &vl)) {
    int64_t len = 0;
    size_t i = 0;
    for (; i < vl && v[i] >= '0' && v[i] <= '9' && len < ((int64_t)1 << 58); i++) len = len * 10 + (v[i] - '0');
    x->clen = i == vl && vl > 0 ? len : -1;
  } else if (header_is(buf, n, "content-encoding:", &v, &vl)) {
    x->encoded = !(vl == 8 && strncasecmp(v, "identity", 8) == 0);
  } else if (header_is(buf, n, "transfer-encoding:", &v, &vl)) {
    x->chunked = true;
  } else if (n <= 2 && (buf[0] == '\r' || buf[0] == '\n')) { /* end of this response's headers */
    bool follow = x->b->o.max_redirects >= 0;
    if (x->code < 200 || (x->code < 400 && x->code >= 300 && follow)) return n; /* interim, or followed */
    if (x->code >= 300) return n; /* an error body: discarded, the status decides */
    x->sized = true;
    if (x->clen >= 0 && !x->encoded && !x->chunked && !size_known(x, x->clen)) return 0;
  }
  return n;
}

static size_t on_write(char *data, size_t size, size_t nitems, void *arg) {
  xfer_t *x = arg;
  size_t n = size * nitems;
  if (cancelled(x)) return 0;
  if (x->code >= 300) return n; /* the body of an HTTP error */
  if (!x->sized) { /* no HTTP headers (file://): libcurl knows the length */
    curl_off_t cl = -1;
    x->sized = true;
    if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0 &&
        !size_known(x, cl))
      return 0;
  }
  size_t max = x->b->o.max_size;
  if (x->h == WALLOC_NULL_HANDLE && n > max - x->len) { /* unknown length: checked as it arrives */
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: the body is larger than the maximum asset size (%zu bytes)", x->url, max);
    return 0;
  }
  if (!put(x, data, n)) return 0;
  wl_asset_count(&wl_asset_counters.bytes_received, n);
  if (x->b->o.progress != NULL) x->b->o.progress(x->key, x->len, x->expected, x->b->o.progress_arg);
  return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  WL_UNUSED(dltotal);
  WL_UNUSED(dlnow);
  WL_UNUSED(ultotal);
  WL_UNUSED(ulnow);
  return cancelled((xfer_t *)arg) ? 1 : 0;
}

/* ------------------------------------------------------------------------
   Transfers
   ------------------------------------------------------------------------ */

static void fail_final(xfer_t *x) {
  x->state = X_DONE;
  wl_asset_count(&wl_asset_counters.failed, 1);
  wl_note("%s", x->msg);
}

static const char *file_kind_name(wl_os_file_kind_t k) {
  switch (k) {
    case WL_OS_FILE_DIRECTORY: return "a directory";
    case WL_OS_FILE_FIFO: return "a FIFO";
    case WL_OS_FILE_CHAR_DEVICE: return "a character device";
    case WL_OS_FILE_BLOCK_DEVICE: return "a block device";
    case WL_OS_FILE_SOCKET: return "a socket";
    default: return "an unusual kind of file";
  }
}

/* A file:// URL must name a regular file; anything else is refused here,
   at once, with WALLOC_ERR_IO. Refused rather than read with the timeout:
   libcurl reads file:// URLs with blocking open() and read() calls inside
   curl_multi_perform, where neither the timeout nor a cancel reaches, so a
   FIFO without a writer blocks the load in open() forever, one whose writer
   stalls in read(), and a device like /dev/zero never ends. Reading them
   with the timeout would take a file reader of our own (non-blocking open,
   poll) for inputs that have no length anyway; assets are files, and bytes
   from a pipe can be placed with walloc_load_asset_zero_copy. The path
   checked is libcurl's own parse of the URL (percent-decoding, dot
   segments, a localhost host), so it is the file libcurl would open.
   Left open: the check and libcurl's open are two lookups of the path, so
   a path swapped for a FIFO in between (by whoever can write to its
   directory) can still block. A URL libcurl cannot parse goes on, and
   libcurl reports it. */
static bool file_is_regular(xfer_t *x) {
  if (strncasecmp(x->url, "file:", 5) != 0) return true;
  CURLU *u = curl_url();
  char *path = NULL;
  wl_os_file_kind_t kind = WL_OS_FILE_REGULAR;
  if (u == NULL) {
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: libcurl could not parse the URL (out of memory)", x->url);
    return false;
  }
  if (curl_url_set(u, CURLUPART_URL, x->url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK)
    kind = wl_os_file_kind(path);
  if (kind != WL_OS_FILE_REGULAR && kind != WL_OS_FILE_NONE) /* missing: libcurl says "not found" */
    xfail(x, WALLOC_ERR_IO, false, "%s: %s is %s, not a regular file: file:// URLs load regular files only",
          x->url, path, file_kind_name(kind));
  curl_free(path);
  curl_url_cleanup(u);
  return x->st == WALLOC_OK;
}

static void start(batch_t *b, xfer_t *x) {
  const wl_asset_opts_t *o = &b->o;
  x->h = WALLOC_NULL_HANDLE;
  x->ptr = NULL;
  x->chunks = x->last = NULL;
  x->cap = x->len = x->base = x->expected = 0;
  x->code = x->http = 0;
  x->clen = -1;
  x->encoded = x->chunked = x->sized = x->transient = false;
  x->st = WALLOC_OK;
  x->msg[0] = x->errbuf[0] = 0;
  if (!file_is_regular(x)) {
    fail_final(x);
    return;
  }
  CURL *e = x->easy = easy_new();
  if (e == NULL) {
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: libcurl could not create a transfer", x->url);
    fail_final(x);
    return;
  }
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, o->max_redirects >= 0 ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)(o->max_redirects >= 0 ? o->max_redirects : 0));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, o->compressed ? "" : NULL);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->verify_tls ? 2L : 0L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  if (curl_multi_add_handle(b->m, e) != CURLM_OK) {
    curl_easy_cleanup(e);
    x->easy = NULL;
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: libcurl could not start the transfer", x->url);
    fail_final(x);
    return;
  }
  x->state = X_ACTIVE;
  b->active++;
  wl_asset_count(&wl_asset_counters.requests, 1);
}

static void detach(batch_t *b, xfer_t *x) {
  curl_multi_remove_handle(b->m, x->easy);
  curl_easy_cleanup(x->easy);
  x->easy = NULL;
  b->active--;
}

/* The curl result and HTTP status of an ended attempt, as a walloc status. */
static void classify(xfer_t *x, CURLcode rc) {
  const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  if (cancelled(x)) {
    x->st = WALLOC_OK; /* whatever the callbacks said, the cause is the cancel */
    xfail(x, WALLOC_ERR_IO, false, "%s: cancelled", x->url);
    return;
  }
  if (x->st != WALLOC_OK) return; /* a callback said why */
  switch (rc) {
    case CURLE_OK: break;
    case CURLE_OPERATION_TIMEDOUT:
      xfail(x, WALLOC_ERR_IO, true, "%s: timed out (%s)", x->url, why);
      return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
      xfail(x, WALLOC_ERR_IO, true, "%s: connection failed (%s)", x->url, why);
      return;
    case CURLE_PARTIAL_FILE:
      xfail(x, WALLOC_ERR_IO, false, "%s: the body is shorter than its Content-Length (%s)", x->url, why);
      return;
    case CURLE_TOO_MANY_REDIRECTS:
      xfail(x, WALLOC_ERR_IO, false, "%s: too many redirects (%s)", x->url, why);
      return;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      xfail(x, WALLOC_ERR_INVALID, false, "%s: invalid URL (%s)", x->url, why);
      return;
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
      xfail(x, WALLOC_ERR_NOT_FOUND, false, "%s: not found (%s)", x->url, why);
      return;
    default:
      xfail(x, WALLOC_ERR_IO, false, "%s: %s", x->url, why);
      return;
  }
  if (x->http == 404 || x->http == 410) xfail(x, WALLOC_ERR_NOT_FOUND, false, "HTTP %ld for %s", x->http, x->url);
  else if (x->http >= 500) xfail(x, WALLOC_ERR_IO, true, "HTTP %ld for %s", x->http, x->url);
  else if (x->http >= 300) xfail(x, WALLOC_ERR_IO, false, "HTTP %ld for %s", x->http, x->url);
  else if (x->len == 0) xfail(x, WALLOC_ERR_IO, false, "%s: empty body", x->url);
  else if (x->expected != 0 && x->len != x->expected)
    xfail(x, WALLOC_ERR_IO, false, "%s: %zu of %zu bytes arrived", x->url, x->len, x->expected);
}

static void finish(batch_t *b, xfer_t *x, CURLcode rc) {
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->http);
  detach(b, x);
  classify(x, rc);
  if (x->st == WALLOC_OK && x->chunks != NULL) (void)place(x);
  if (x->st != WALLOC_OK) {
    release(x);
    if (x->transient && x->attempt < b->o.retries) {
      x->retry_at = wl_os_clock_ms() + (b->o.retry_backoff_ms << x->attempt);
      x->attempt++;
      x->state = X_WAIT;
      b->waiting++;
      wl_asset_count(&wl_asset_counters.retries, 1);
    } else {
      fail_final(x);
    }
    return;
  }
  walloc_asset_metadata md = {.handle = x->h, .size = x->len, .tier = (walloc_tier)x->tier, .type = x->type,
                              .loaded_at_ms = (uint64_t)wl_os_clock_ms()};
  x->h = WALLOC_NULL_HANDLE; /* the registry owns it now */
  x->ptr = NULL;
  if (!wl_registry_store(x->key, &md, b->o.revalidate)) {
    xfail(x, WALLOC_ERR_NOMEM, false, "%s: the registry could not grow", x->url);
    fail_final(x);
    return;
  }
  x->h = md.handle;
  x->state = X_DONE;
  wl_asset_count(&wl_asset_counters.loaded, 1);
}

/* Stop every transfer not done: the batch was cancelled. */
static void cancel_all(batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    xfer_t *x = &b->x[i];
    if (x->state == X_ACTIVE) detach(b, x);
    if (x->state == X_ACTIVE || x->state == X_READY || x->state == X_WAIT) {
      release(x);
      x->st = WALLOC_OK;
      xfail(x, WALLOC_ERR_IO, false, "%s: cancelled", x->url);
      fail_final(x);
    }
  }
  b->waiting = 0;
}

/* The next transfer to start now: a retry that is due, else a new one. */
static xfer_t *next_to_start(batch_t *b, int64_t now) {
  if (b->waiting != 0) {
    for (size_t i = 0; i < b->n; i++) {
      xfer_t *x = &b->x[i];
      if (x->state == X_WAIT && x->retry_at <= now) {
        b->waiting--;
        return x;
      }
    }
  }
  while (b->next_ready < b->n && b->x[b->next_ready].state != X_READY) b->next_ready++;
  return b->next_ready < b->n ? &b->x[b->next_ready++] : NULL;
}

static long next_wake(batch_t *b, int64_t now) {
  long ms = POLL_MS;
  for (size_t i = 0; b->waiting != 0 && i < b->n; i++) {
    if (b->x[i].state == X_WAIT && b->x[i].retry_at - now < ms) ms = (long)(b->x[i].retry_at - now);
  }
  return ms < 0 ? 0 : ms;
}

static void drive(batch_t *b) {
  size_t limit = (size_t)b->o.connections;
  for (;;) {
    if (wl_load_relaxed(&cancel_epoch) != b->epoch) {
      cancel_all(b);
      return;
    }
    int64_t now = wl_os_clock_ms();
    xfer_t *x;
    while (b->active < limit && (x = next_to_start(b, now)) != NULL) start(b, x);
    while (b->next_ready < b->n && b->x[b->next_ready].state != X_READY) b->next_ready++;
    if (b->active == 0 && b->waiting == 0 && b->next_ready >= b->n) return;
    int running;
    curl_multi_perform(b->m, &running);
    CURLMsg *msg;
    int queued;
    bool ended = false;
    while ((msg = curl_multi_info_read(b->m, &queued)) != NULL) {
      if (msg->msg != CURLMSG_DONE) continue;
      xfer_t *done;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&done);
      finish(b, done, msg->data.result);
      ended = true;
    }
    if (!ended) curl_multi_poll(b->m, NULL, 0, (int)next_wake(b, wl_os_clock_ms()), NULL);
  }
}

/* ------------------------------------------------------------------------
   Batches
   ------------------------------------------------------------------------ */

static CURLM *multi_get(int connections) {
  CURLM *m = NULL;
  wl_lock(&pool_lock);
  if (pool_n > 0) m = pool[--pool_n];
  wl_unlock(&pool_lock);
  if (m == NULL) m = curl_multi_init();
  if (m != NULL) {
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)connections);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)connections);
  }
  return m;
}

static void multi_put(CURLM *m) {
  wl_lock(&pool_lock);
  bool kept = pool_n < MULTI_POOL;
  if (kept) pool[pool_n++] = m;
  wl_unlock(&pool_lock);
  if (!kept) curl_multi_cleanup(m);
}

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Mark requests whose key came earlier in the batch (x[i].dup_of). */
static bool find_duplicates(batch_t *b) {
  size_t cap = 16;
  while (cap < 2 * b->n) cap *= 2;
  size_t *table = wl_zalloc(cap * sizeof *table); /* index + 1, 0 = empty */
  if (table == NULL) return false;
  for (size_t i = 0; i < b->n; i++) {
    xfer_t *x = &b->x[i];
    if (x->key == NULL) continue;
    for (size_t j = str_hash(x->key) & (cap - 1);; j = (j + 1) & (cap - 1)) {
      if (table[j] == 0) {
        table[j] = i + 1;
        break;
      }
      if (strcmp(b->x[table[j] - 1].key, x->key) == 0) {
        x->dup_of = table[j] - 1;
        break;
      }
    }
  }
  wl_free(table);
  return true;
}

/* Settle request i before any transfer: bad input, duplicate, cache hit, or ready. */
static void prepare(batch_t *b, xfer_t *x, const walloc_asset_request *r) {
  x->b = b;
  x->h = WALLOC_NULL_HANDLE;
  x->state = X_SKIP;
  if (x->key == NULL || *x->key == 0 || (unsigned)r->type >= WALLOC_ASSET_TYPE_COUNT) {
    x->st = WALLOC_ERR_INVALID;
    wl_note("invalid asset request: %s", x->key == NULL || *x->key == 0 ? "no path" : "unknown type");
    wl_asset_count(&wl_asset_counters.failed, 1);
    return;
  }
  if (x->dup_of != SIZE_MAX) return; /* takes the first one's result */
  x->type = r->type;
  x->tier = wl_asset_tier(&b->o, r->type);
  walloc_asset_metadata md;
  if (!b->o.revalidate && wl_registry_live(x->key, &md)) {
    x->h = md.handle;
    x->st = WALLOC_OK;
    wl_asset_count(&wl_asset_counters.cache_hits, 1);
    return;
  }
  x->url = wl_asset_url(x->key, &x->st);
  if (x->url == NULL) {
    wl_asset_count(&wl_asset_counters.failed, 1);
    return;
  }
  x->state = X_READY;
}

static void fill_all(walloc_asset_result *results, size_t count, walloc_status st) {
  for (size_t i = 0; i < count; i++) {
    results[i].status = st;
    results[i].handle = WALLOC_NULL_HANDLE;
    results[i].http_status = 0;
  }
}

WL_API size_t walloc_load_assets_batch(const walloc_asset_request *requests, size_t count,
                                       walloc_asset_result *results) {
  if (results == NULL || count == 0) return 0;
  if (requests == NULL) {
    fill_all(results, count, WALLOC_ERR_INVALID);
    wl_note("walloc_load_assets_batch: requests is NULL");
    return 0;
  }
  uint64_t epoch = wl_load_relaxed(&cancel_epoch); /* first: a cancel from here on stops this call */
  const char *why;
  walloc_status curl_st = wl_curl_load(&why);
  if (curl_st != WALLOC_OK) { /* cannot be opened: UNSUPPORTED; its set-up failed: IO */
    fill_all(results, count, curl_st);
    wl_note("asset loads need libcurl: %s", why);
    return 0;
  }
  batch_t b;
  memset(&b, 0, sizeof b);
  wl_asset_opts(&b.o);
  b.epoch = epoch;
  b.n = count;
  b.x = wl_zalloc(count * sizeof *b.x);
  if (b.x == NULL || (b.m = multi_get(b.o.connections)) == NULL) {
    wl_free(b.x);
    fill_all(results, count, WALLOC_ERR_NOMEM);
    wl_note("walloc_load_assets_batch: out of memory for %zu requests", count);
    return 0;
  }
  for (size_t i = 0; i < count; i++) {
    b.x[i].key = requests[i].path;
    b.x[i].dup_of = SIZE_MAX;
  }
  (void)find_duplicates(&b); /* without memory for its table, duplicates load twice (the registry keeps one) */
  for (size_t i = 0; i < count; i++) prepare(&b, &b.x[i], &requests[i]);
  drive(&b);
  multi_put(b.m);
  size_t loaded = 0;
  for (size_t i = 0; i < count; i++) {
    xfer_t *x = &b.x[i];
    if (x->dup_of != SIZE_MAX && x->key != NULL && *x->key != 0 && (unsigned)requests[i].type < WALLOC_ASSET_TYPE_COUNT) {
      xfer_t *first = &b.x[x->dup_of];
      results[i] = (walloc_asset_result){first->st, first->h, first->http};
      if (first->st == WALLOC_OK) wl_asset_count(&wl_asset_counters.cache_hits, 1);
    } else {
      results[i] = (walloc_asset_result){x->st, x->st == WALLOC_OK ? x->h : WALLOC_NULL_HANDLE, x->http};
    }
    loaded += results[i].status == WALLOC_OK;
    wl_free(x->url);
  }
  wl_free(b.x);
  return loaded;
}

WL_API walloc_status walloc_load_asset(const char *path, walloc_asset_type type, walloc_handle *out) {
  if (out == NULL) {
    wl_note("walloc_load_asset: out is NULL");
    return WALLOC_ERR_INVALID;
  }
  walloc_asset_request r = {path, type};
  walloc_asset_result res;
  walloc_load_assets_batch(&r, 1, &res);
  *out = res.handle;
  return res.status;
}
