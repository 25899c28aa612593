/* linux.c: the platform layer on Linux (and other POSIX systems with mmap).
 *
 * Design: address space comes from anonymous private mappings; untouched
 * pages cost nothing. Alignment is obtained by
 * asking for the plain size first (the kernel hands out consecutive mappings
 * downward, so after the first aligned one most are aligned too) and, when that
 * misses, over-mapping by the alignment and trimming both ends. Purging is
 * MADV_DONTNEED, after which private anonymous memory reads as zero; RSS drops at
 * once, which is what users watch. Every function keeps errno as it found it:
 * the malloc family decides what errno a caller sees.
 */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

/* Memcheck's client requests, when its header is installed (Debian's
   valgrind package has it): a few instructions that do nothing outside
   valgrind. Used once, in wl_os_remap. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define WL_MEMCHECK_REQUESTS 1
#endif
#endif
#ifndef WL_MEMCHECK_REQUESTS
#define WL_MEMCHECK_REQUESTS 0
#endif


/* ThreadSanitizer learns that memory went back to the kernel from munmap,
   not from mremap: a range that mremap moved away from or cut off, mapped
   again by another thread, reads to it as a race between the old owner's
   accesses and the new one's (seen with huge blocks grown by realloc in two
   threads). Under it walloc neither moves nor resizes a mapping: realloc
   copies, and a cached huge block keeps its size. */
#if defined(WL_TSAN)
#define WL_REMAP_HIDDEN 1
#else
#define WL_REMAP_HIDDEN 0
#endif

void wl_os_init(wl_os_info_t *info) {
  long ps = sysconf(_SC_PAGESIZE);
  info->page_size = ps > 0 ? (size_t)ps : 4096;
#if defined(__x86_64__) || defined(__aarch64__)
  info->huge_page_size = 2u << 20;
#else
  info->huge_page_size = 0;
#endif
  info->purge_zeroes = true;
  info->can_release = true;
  info->reserve_commits = false;
  info->can_remap = !WL_REMAP_HIDDEN;
  info->handles_are_addresses = false;
}

/* Accessible memory is mapped without MAP_NORESERVE, so the kernel's
   overcommit policy refuses impossible sizes for walloc as it does for glibc;
   inaccessible reservations cost no commit charge either way. */
static void *os_map(void *hint, size_t size, int prot) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (prot == PROT_NONE ? MAP_NORESERVE : 0);
  void *p = mmap(hint, size, prot, flags, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static bool is_placed(void *p, size_t align, size_t offset) {
  return (((uintptr_t)p + offset) & (align - 1)) == 0;
}

/* Map size bytes placed so that p + offset is align-aligned. Callers pass
   page multiples; the trimming below relies on it. */
static void *os_map_aligned(size_t size, size_t align, size_t offset, int prot) {
  if ((size & 4095) != 0) return NULL;
  void *p = os_map(NULL, size, prot);
  if (p == NULL || is_placed(p, align, offset)) return p;
  munmap(p, size);
  size_t over = size + align;
  if (over < size) return NULL;
  uint8_t *raw = os_map(NULL, over, prot);
  if (raw == NULL) return NULL;
  uintptr_t q = wl_align_up((uintptr_t)raw + offset, align) - offset;
  if (q < (uintptr_t)raw) q += align;
  size_t head = q - (uintptr_t)raw;
  size_t tail = over - head - size;
  if (head > 0) munmap(raw, head);
  if (tail > 0) munmap((uint8_t *)q + size, tail);
  return (void *)q;
}

void *wl_os_alloc(size_t size, size_t align, size_t offset, bool *is_zero) {
  int saved = errno;
  void *p = os_map_aligned(size, align, offset, PROT_READ | PROT_WRITE);
  errno = saved;
  if (is_zero != NULL) *is_zero = true;
  return p;
}

void *wl_os_reserve(size_t size, size_t align) {
  int saved = errno;
  void *p = os_map_aligned(size, align, 0, PROT_NONE);
  errno = saved;
  return p;
}

bool wl_os_commit(void *addr, size_t size) {
  int saved = errno;
  bool ok = mprotect(addr, size, PROT_READ | PROT_WRITE) == 0;
  errno = saved;
  return ok;
}

bool wl_os_purge(void *addr, size_t size) {
  int saved = errno;
  bool ok = madvise(addr, size, MADV_DONTNEED) == 0;
  errno = saved;
  return ok;
}

void wl_os_release(void *addr, size_t size) {
  int saved = errno;
  munmap(addr, size);
  errno = saved;
}

bool wl_os_advise_huge(void *addr, size_t size) {
#ifdef MADV_HUGEPAGE
  int saved = errno;
  bool ok = madvise(addr, size, MADV_HUGEPAGE) == 0;
  errno = saved;
  return ok;
#else
  WL_UNUSED(addr); WL_UNUSED(size);
  return false;
#endif
}

bool wl_os_resize(void *addr, size_t old_size, size_t new_size) {
  if (WL_REMAP_HIDDEN) return false;
  int saved = errno;
  void *p = mremap(addr, old_size, new_size, 0);
  errno = saved;
  return p == addr;
}

/* Valgrind (3.19, Debian 12's) gets a growing MREMAP_FIXED move wrong: it
   marks the grown tail with the permissions of whatever segment took the old
   range's place in its table once the old range is freed (it reads the old
   segment's entry after relocating it). When the old range had free space
   before it and an inaccessible mapping after it (a new thread's stack
   guard), memcheck reports every access to the tail, which the kernel
   mapped read-write: tests/test_huge.c's remap_past_a_guard_page, and about
   one valgrind run in ten of its lent_surpluses_under_threads. The tail is
   fresh zeroed memory, so it is told so. */
bool wl_os_remap(void *old, size_t old_size, void *dst, size_t new_size) {
  int saved = errno;
  void *p = mremap(old, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  errno = saved;
  if (p != dst) return false;
#if WL_MEMCHECK_REQUESTS
  if (new_size > old_size) VALGRIND_MAKE_MEM_DEFINED((char *)dst + old_size, new_size - old_size);
#endif
  return true;
}

int64_t wl_os_clock_ms(void) {
  struct timespec ts;
  #ifdef CLOCK_MONOTONIC_COARSE
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* a few ms resolution is plenty for purge delays */
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wl_os_yield(void) { sched_yield(); }

/* membarrier: a process registers once for the expedited command (a
   forked child starts unregistered, so a refusal registers and tries
   again); the plain command (a grace period, milliseconds) is the
   fallback where expedited is not offered. */
bool wl_os_heavy_barrier(void) {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return true;
  int saved = errno;
  bool ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
                syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
  if (!ok) ok = syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0;
  errno = saved;
  return ok;
}

/* Thread exit and fork. Installed once with pthread_once, which the C
   library restarts in a child forked while it was under way (the thread
   running it is not there). Such a child may find the fork handlers
   registered already: it inherits `atfork_done` from the parent whenever
   they ran for its fork (prepare sets it), so they are never registered
   twice, which would make the next fork's prepare wait for itself. */
static pthread_key_t thread_key;
static bool thread_key_ok;
static bool hooks_ok;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static _Atomic(bool) atfork_done;
static void (*_Atomic thread_exit_hook)(void *);
static void (*_Atomic fork_child_hook)(void);

/* A process with one thread forks without taking the locks: no other
   thread can hold one, or be half-way through anything the child's repair
   would mend. That saves the parent and the child a page fault on every
   page that holds a lock (fork leaves every written page copy-on-write in
   both), the most of walloc's cost in a shell's forked subshell; glibc
   skips its own malloc's locks the same way. "One thread" is the C
   library's word for it (__libc_single_threaded: non-zero only while the
   process has never had a second thread); without that word, every fork
   takes the locks. A thread made with a bare clone(), behind the C
   library's back, is not counted here, as it is not by glibc's malloc.
   `fork_locked` tells the parent and the child what prepare did: it is
   the forking thread's own and only written when the locks were taken. */
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define WL_HAVE_SINGLE_THREADED 1
#endif
#endif

static bool one_thread(void) {
#ifdef WL_HAVE_SINGLE_THREADED
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}

static __thread bool fork_locked __attribute__((tls_model("initial-exec")));

static void atfork_prepare(void) {
  if (!wl_load_relaxed(&atfork_done)) wl_store_relaxed(&atfork_done, true); /* read first: no write, no fault */
  if (one_thread()) return;
  fork_locked = true;
  wl_locks_fork_prepare();
}

static void atfork_parent(void) {
  if (!fork_locked) return;
  fork_locked = false;
  wl_locks_fork_parent();
}

static void atfork_child(void) {
  void (*repair)(void) = wl_load_acquire(&fork_child_hook);
  if (repair != NULL) repair(); /* while every lock is still held (or no other thread was): nothing moves */
  if (!fork_locked) return;
  fork_locked = false;
  wl_locks_fork_child();
}

static void hooks_install(void) {
  if (!thread_key_ok) thread_key_ok = pthread_key_create(&thread_key, wl_load_acquire(&thread_exit_hook)) == 0;
  if (!wl_load_relaxed(&atfork_done)) {
    wl_store_relaxed(&atfork_done, pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0);
  }
  hooks_ok = thread_key_ok && wl_load_relaxed(&atfork_done);
}

bool wl_os_thread_hooks_init(void (*on_thread_exit)(void *), void (*on_fork_child)(void)) {
  int saved = errno;
  wl_store_release(&thread_exit_hook, on_thread_exit);
  wl_store_release(&fork_child_hook, on_fork_child);
  pthread_once(&hooks_once, hooks_install);
  errno = saved;
  return hooks_ok;
}

void wl_os_thread_register(void *value) {
  if (thread_key_ok) pthread_setspecific(thread_key, value);
}

int wl_os_dup(int fd, int min) {
  int saved = errno;
  int d = fcntl(fd, F_DUPFD_CLOEXEC, min);
  errno = saved;
  return d;
}

size_t wl_os_rss(size_t *peak) {
  int saved = errno;
  size_t rss = 0;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char *s = buf;
      while (*s && *s != ' ') s++; /* skip total size */
      while (*s == ' ') s++;
      size_t pages = 0;
      while (*s >= '0' && *s <= '9') pages = pages * 10 + (size_t)(*s++ - '0');
      rss = pages * (size_t)sysconf(_SC_PAGESIZE);
    }
  }
  if (peak != NULL) {
    struct rusage ru;
    *peak = getrusage(RUSAGE_SELF, &ru) == 0 ? (size_t)ru.ru_maxrss * 1024 : 0;
  }
  errno = saved;
  return rss;
}

void wl_os_program_name(char *buf, size_t len) {
  int saved = errno;
  size_t n = 0;
  int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r = read(fd, buf, len - 1);
    close(fd);
    n = r > 0 ? (size_t)r : 0;
    while (n > 0 && buf[n - 1] == '\n') n--;
  }
  buf[n] = 0;
  errno = saved;
}

void wl_os_abort(void) { abort(); }
