/* posix.c: the parts of the platform layer every POSIX-like target shares
 * (Linux and Emscripten): the environment, the process id, opening a file
 * for writing, writing to a descriptor and what a path names. None of them allocates, locks or changes errno.
 *
 * On Emscripten, environ is built by a constructor (which allocates): before
 * it, or when it is empty, every variable reads as unset.
 */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
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

const char *wl_os_env_at(size_t i) {
  if (environ == NULL) return NULL;
  for (size_t k = 0; k < i; k++) {
    if (environ[k] == NULL) return NULL;
  }
  return environ[i];
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

wl_os_file_kind_t wl_os_file_kind(const char *path) {
  int saved = errno;
  struct stat st;
  int rc = stat(path, &st);
  errno = saved;
  if (rc != 0) return WL_OS_FILE_NONE;
  if (S_ISREG(st.st_mode)) return WL_OS_FILE_REGULAR;
  if (S_ISDIR(st.st_mode)) return WL_OS_FILE_DIRECTORY;
  if (S_ISFIFO(st.st_mode)) return WL_OS_FILE_FIFO;
  if (S_ISCHR(st.st_mode)) return WL_OS_FILE_CHAR_DEVICE;
  if (S_ISBLK(st.st_mode)) return WL_OS_FILE_BLOCK_DEVICE;
  if (S_ISSOCK(st.st_mode)) return WL_OS_FILE_SOCKET;
  return WL_OS_FILE_OTHER;
}

int wl_os_open_write(const char *path) {
  int saved = errno;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  errno = saved;
  return fd;
}

void wl_os_close(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

int wl_os_pid(void) { return (int)getpid(); }
