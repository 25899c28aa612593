/* out.c: formatted output that never allocates.
 *
 * An allocator that called printf from inside malloc could recurse into itself,
 * so statistics, warnings and assertion messages are formatted here into a
 * fixed buffer on the caller's stack and written with wl_os_write.
 */
#include "platform.h"

#if (!(defined(__x86_64__) || defined(__aarch64__)) || !defined(__linux__)) && \
    !defined(__wasm__)
__thread char wl_os_thread_anchor __attribute__((aligned(8))); /* an even address: platform.h */
#endif

void wl_out_init(wl_out_t *o, int fd) {
  o->fd = fd;
  o->len = 0;
  o->mem = NULL;
  o->mem_len = 0;
  o->total = 0;
}

void wl_out_init_mem(wl_out_t *o, char *buf, size_t len) {
  wl_out_init(o, -1);
  o->mem = buf;
  o->mem_len = buf != NULL ? len : 0;
}

/* Into the caller's buffer: what still fits before its last byte (the NUL's). */
static void flush_mem(wl_out_t *o) {
  size_t room = o->mem_len == 0 || o->total >= o->mem_len - 1 ? 0 : o->mem_len - 1 - o->total;
  size_t n = o->len < room ? o->len : room;
  for (size_t i = 0; i < n; i++) o->mem[o->total + i] = o->buf[i];
}

void wl_out_flush(wl_out_t *o) {
  if (o->len > 0) {
    if (o->mem_len != 0) flush_mem(o);
    else if (o->fd >= 0) wl_os_write(o->fd, o->buf, o->len);
  }
  o->total += o->len;
  o->len = 0;
}

size_t wl_out_end_mem(wl_out_t *o) {
  wl_out_flush(o);
  if (o->mem_len != 0) o->mem[o->total < o->mem_len - 1 ? o->total : o->mem_len - 1] = 0;
  return o->total;
}

void wl_out_char(wl_out_t *o, char c) {
  if (o->len == sizeof o->buf) wl_out_flush(o);
  o->buf[o->len++] = c;
}

void wl_out_str(wl_out_t *o, const char *s) {
  while (s != NULL && *s) wl_out_char(o, *s++);
}

static size_t digits(uint64_t v, char *tmp) {
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return n;
}

void wl_out_u64(wl_out_t *o, uint64_t v, int width) {
  char tmp[24];
  size_t n = digits(v, tmp);
  for (int i = (int)n; i < width; i++) wl_out_char(o, ' ');
  while (n > 0) wl_out_char(o, tmp[--n]);
}

void wl_out_hex(wl_out_t *o, uintptr_t v) {
  wl_out_str(o, "0x");
  for (int shift = (int)sizeof v * 8 - 4; shift >= 0; shift -= 4) {
    wl_out_char(o, "0123456789abcdef"[(v >> shift) & 15]);
  }
}

void wl_out_pad(wl_out_t *o, const char *s, int width) {
  int n = 0;
  for (; s[n]; n++) wl_out_char(o, s[n]);
  for (; n < width; n++) wl_out_char(o, ' ');
}

/* Bytes as "999 B", "12.3 KiB", "1.5 GiB", right-aligned in width. */
void wl_out_size(wl_out_t *o, uint64_t bytes, int width) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  uint64_t scaled10 = bytes * 10; /* one decimal */
  if (bytes >= ((uint64_t)1 << 60)) scaled10 = bytes; /* avoid overflow; shown without decimal */
  while (u < 4 && bytes >= 1024) {
    scaled10 = (bytes * 10 + 512) / 1024;
    bytes /= 1024;
    u++;
  }
  char tmp[40];
  size_t n = 0;
  if (u == 0) {
    char d[24];
    size_t k = digits(bytes, d);
    while (k > 0) tmp[n++] = d[--k];
  } else {
    char d[24];
    size_t k = digits(scaled10 / 10, d);
    while (k > 0) tmp[n++] = d[--k];
    tmp[n++] = '.';
    tmp[n++] = (char)('0' + scaled10 % 10);
  }
  tmp[n++] = ' ';
  for (const char *s = units[u]; *s; s++) tmp[n++] = *s;
  for (int i = (int)n; i < width; i++) wl_out_char(o, ' ');
  for (size_t i = 0; i < n; i++) wl_out_char(o, tmp[i]);
}

void wl_assert_fail(const char *expr, const char *file, int line) {
  wl_out_t o;
  wl_out_init(&o, 2);
  wl_out_str(&o, "walloc: assertion failed: ");
  wl_out_str(&o, expr);
  wl_out_str(&o, " at ");
  wl_out_str(&o, file);
  wl_out_char(&o, ':');
  wl_out_u64(&o, (uint64_t)line, 0);
  wl_out_char(&o, '\n');
  wl_out_flush(&o);
  wl_os_abort();
}
