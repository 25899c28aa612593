/* posix.c: the parts of the platform layer every POSIX-like target shares
 * (Linux and Emscripten): the environment and writing to a descriptor.
 * Neither allocates, locks or changes errno.
 *
 * On Emscripten, environ is built by a constructor (which allocates): before
 * it, or when it is empty, every variable reads as unset.
 */
#include "platform.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

const char *wl_os_getenv(const char *name) {
  if (environ == NULL || name == NULL) return NULL;
  size_t n = strlen(name);
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return NULL;
}

void wl_os_write(int fd, const char *buf, size_t len) {
  int saved = errno;
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    buf += w;
    len -= (size_t)w;
  }
  errno = saved;
}
