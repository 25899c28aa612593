/* platform.h: the only door from walloc to the operating system.
 *
 * Everything above this header (the heap, the tiers, the malloc family) asks
 * for memory, time, threads and output through these functions and nothing
 * else. One implementation per platform is compiled: linux.c (mmap, mprotect,
 * madvise, pthread) and wasm.c (memory.grow, never unmaps). The rules each implementation must keep are written beside each
 * function; docs/porting.md repeats them with the reasoning.
 *
 * Vocabulary:
 *   reserve   claim address space that cannot be touched yet;
 *   commit    make reserved memory readable and writable;
 *   decommit  make it untouchable again and give its physical pages back;
 *   purge     give the physical pages back but keep the range usable
 *             (the contents become undefined, or zero where the platform says so);
 *   release   give the address range back entirely.
 * None of these functions allocates memory from the heap, prints, or takes a
 * lock that the heap also takes. The lock every layer uses, and the registry
 * of all of them that makes fork safe, are here too (lock.c).
 */
#ifndef WL_PLATFORM_H
#define WL_PLATFORM_H

#include "base.h"

/* ------------------------------------------------------------------------
   What the platform is
   ------------------------------------------------------------------------ */
typedef struct wl_os_info_s {
  size_t page_size;       /* granularity of commit/purge/protect (4 KiB on Linux, 64 KiB on wasm) */
  size_t huge_page_size;  /* transparent huge page size, 0 if none */
  bool   purge_zeroes;    /* purged memory reads as zero afterwards */
  bool   can_release;     /* released address space really returns to the OS */
  bool   reserve_commits; /* reserved memory is readable and writable at once (wasm) */
  bool   can_remap;       /* wl_os_remap can move pages without copying */
  bool   handles_are_addresses; /* one address space from 0 that fits a handle's offset
                                   (wasm32): tier handles carry addresses, not offsets */
} wl_os_info_t;

/* Fill *info. Cheap; may be called more than once; never fails. */
void wl_os_init(wl_os_info_t *info);

/* ------------------------------------------------------------------------
   Address space and memory
   ------------------------------------------------------------------------ */

/* Map `size` bytes (a multiple of the page size) of readable, writable memory
   such that (result + offset) is a multiple of `align` (a power of two, at
   least the page size; offset < align and page aligned). Returns NULL when the
   OS refuses. *is_zero is set to whether the memory is known to read as zero. */
void *wl_os_alloc(size_t size, size_t align, size_t offset, bool *is_zero);

/* Reserve `size` bytes of address space aligned to `align`, inaccessible until
   committed (readable and writable at once where info.reserve_commits).
   Returns NULL when the OS refuses. */
void *wl_os_reserve(size_t size, size_t align);

/* Make [addr, addr+size) (page aligned, inside a reservation) readable and
   writable. Returns false when the OS refuses; the range is then unchanged. */
bool wl_os_commit(void *addr, size_t size);

/* Return the physical pages of [addr, addr+size) (page aligned) to the OS while
   keeping the range readable and writable. Returns true when the range now
   reads as zero; false when its contents are unknown (or nothing was done). */
bool wl_os_purge(void *addr, size_t size);

/* Give [addr, addr+size) back to the OS. The range must be one wl_os_alloc or
   wl_os_reserve result, or a page-aligned piece at its start or end. */
void wl_os_release(void *addr, size_t size);

/* Ask for transparent huge pages on [addr, addr+size). A hint; false if ignored. */
bool wl_os_advise_huge(void *addr, size_t size);

/* Grow or shrink the mapping at `addr` from old_size to new_size without
   moving it. Returns false (mapping unchanged) when the neighbours are taken or
   the platform cannot. */
bool wl_os_resize(void *addr, size_t old_size, size_t new_size);

/* Move the pages of the mapping [old, old+old_size) to [dst, dst+new_size),
   growing it, without copying; `dst` is a page-aligned range the caller owns
   (reserved), which the move replaces. Returns false (nothing changed) when
   the platform cannot. */
bool wl_os_remap(void *old, size_t old_size, void *dst, size_t new_size);

/* ------------------------------------------------------------------------
   Time, threads, process
   ------------------------------------------------------------------------ */

/* Monotonic milliseconds. Cheap (a vDSO call on Linux). */
int64_t wl_os_clock_ms(void);

/* Let another thread run (used by spin locks). */
void wl_os_yield(void);

/* The heavy side of an asymmetric fence: when it returns true, every other
   thread of the process has passed a full memory barrier since the call
   began, so a thread whose fast path only stores a flag and then loads a
   word (with only a compiler barrier between: atomic_signal_fence) and the caller
   (which stores the word, calls this, then loads the flag) cannot both
   miss each other's store. Linux's membarrier (private expedited, about
   0.1 to a few microseconds); false where there is none (then callers
   must not rely on it: wasm, kernels before 4.14). Thread-safe; works in
   a forked child. */
bool wl_os_heavy_barrier(void);

/* Register `on_thread_exit` to run with the thread's registered value when
   a thread exits, and install the fork handlers: they take and release
   every registered lock (lock.c), and in the child run `on_fork_child`
   first (repairs of state other than locks), before the locks are released.
   Installs once however many threads call it at once (also in a child
   forked while it was under way); called after the heap can serve
   allocations (the C library may allocate here). Returns false on failure. */
#if defined(__wasm__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define WL_OS_ONE_THREAD 1   /* no thread ever exits, so no heap is ever abandoned */
/* Single-threaded wasm: one thread, which never exits before the program,
   and no fork. An inline no-op, so the handlers it is given are not
   referenced and leave the module (about 2 KiB). */
WL_INLINE bool wl_os_thread_hooks_init(void (*on_thread_exit)(void *value), void (*on_fork_child)(void)) {
  (void)on_thread_exit; (void)on_fork_child;
  return true;
}
#else
#define WL_OS_ONE_THREAD 0
bool wl_os_thread_hooks_init(void (*on_thread_exit)(void *value), void (*on_fork_child)(void));
#endif

/* Register `value` as the current thread's; on_thread_exit(value) runs when
   the thread exits. Must not allocate. */
void wl_os_thread_register(void *value);

/* A unique non-zero identifier of the calling thread, as cheap as possible.
   Always even: the heap keeps a page flag in bit 0 of a stored id, so that
   one compare tests both (heap.h, wl_page_t.tid). */
#if defined(__x86_64__) && defined(__linux__)
WL_INLINE uintptr_t wl_os_thread_id(void) {
  uintptr_t tid;
  __asm__("movq %%fs:0, %0" : "=r"(tid)); /* the thread control block's self pointer */
  return tid;
}
#elif defined(__aarch64__) && defined(__linux__)
WL_INLINE uintptr_t wl_os_thread_id(void) {
  uintptr_t tid;
  __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tid));
  return tid;
}
#elif defined(__wasm__) && !defined(__EMSCRIPTEN_PTHREADS__)
WL_INLINE uintptr_t wl_os_thread_id(void) { return 2; } /* one thread (even, as every id) */
#elif defined(__EMSCRIPTEN_PTHREADS__)
/* Emscripten with pthreads: the thread's struct pthread, kept in a wasm
   global that is set before the thread's TLS block exists and stays set
   until after that block is freed (a thread-local's address would be wrong
   there: Emscripten allocates and frees the TLS block through malloc). */
#include <pthread.h>
WL_INLINE uintptr_t wl_os_thread_id(void) { return (uintptr_t)pthread_self(); }
#else
extern __thread char wl_os_thread_anchor;
WL_INLINE uintptr_t wl_os_thread_id(void) { return (uintptr_t)&wl_os_thread_anchor; }
#endif

/* The value of environment variable `name`, or NULL. Never allocates. */
const char *wl_os_getenv(const char *name);
/* The i-th entry "NAME=value" of the environment, NULL past the last (to
   walk it: i = 0, 1, ... until NULL). Never allocates. */
const char *wl_os_env_at(size_t i);

/* Write all of buf to file descriptor fd, retrying on EINTR. Never allocates. */
void wl_os_write(int fd, const char *buf, size_t len);

/* A close-on-exec duplicate of fd, numbered at least `min` (so it stays out
   of the way of programs that assume small descriptor numbers), or -1. */
int wl_os_dup(int fd, int min);

/* Open `path` for writing: created (mode 0644 before the umask) or
   truncated, close-on-exec. The descriptor, or -1 when it cannot be opened
   (errno kept as it was). Never allocates. Close it with wl_os_close. */
int wl_os_open_write(const char *path);
void wl_os_close(int fd);

/* The process id (what getpid says; a fork child has its own). */
int wl_os_pid(void);

/* The program's short name, as ps shows it (Linux: /proc/self/comm, at
   most 15 characters), NUL-terminated in buf (len > 0); "" when it cannot
   be read. Never allocates. */
void wl_os_program_name(char *buf, size_t len);

/* Current resident set size in bytes and, in *peak, the peak (0 if unknown). */
size_t wl_os_rss(size_t *peak);

/* What `path` names, following symbolic links (a stat, never an open: opening
   a FIFO can block and opening a device can act on it). WL_OS_FILE_NONE when
   it cannot be looked up (missing, no permission). Never allocates. */
typedef enum wl_os_file_kind_e {
  WL_OS_FILE_NONE, WL_OS_FILE_REGULAR, WL_OS_FILE_DIRECTORY, WL_OS_FILE_FIFO,
  WL_OS_FILE_CHAR_DEVICE, WL_OS_FILE_BLOCK_DEVICE, WL_OS_FILE_SOCKET, WL_OS_FILE_OTHER
} wl_os_file_kind_t;
wl_os_file_kind_t wl_os_file_kind(const char *path);

/* Stop the process (used by fatal errors and failed assertions). */
__attribute__((noreturn)) void wl_os_abort(void);

/* ------------------------------------------------------------------------
   Locks, and fork (lock.c)

   Every lock in walloc is a wl_lock_t: it spins briefly, then yields, and
   never allocates. Each has a level. A thread that holds a lock of level L
   takes only locks of lower levels, never a second one of level L: levels
   rise with the layers (each layer's private header names its own, above
   those of the layers it calls), so a layer may call down while it holds
   its locks, and never up.

   Every lock is registered where it is made, and fork takes them all:
   - a static lock is defined with WL_LOCK_STATIC (the definition comes
     with a constructor that registers it when the library loads), or, when
     it lives inside a static struct, initialised with WL_LOCK_INIT and
     registered by a WL_LOCK_REGISTER beside the struct;
   - a lock inside an object made at run time gets its level from
     wl_lock_init when the object is made, which registers it, and leaves
     the registry with wl_lock_fini before the object is freed.
   There is no other way to give a lock its level, and a lock without one
   (zeroed or finished) fails an assertion at its first use in debug builds,
   where every lock taken is also checked against the order above.

   fork (the handlers lib/platform installs with wl_os_thread_hooks_init):
   prepare takes the registry's lock, then every registered lock, from the
   highest level down, waiting for whoever holds one to finish; the parent
   releases them all; the child first runs the upper layers' repairs (state
   other than locks that the vanished threads may have left mid-way), then
   releases them all. A process that has never had a second thread takes
   and releases none (no other thread can hold one): the child still runs
   the repairs. So the child finds every locked structure as the last
   holder left it, whole: an operation another thread had under way either
   finished before fork or had not started.

   Rules that keep fork from waiting forever: register and unregister with
   no lock held (the registry's lock is above every level); never hold a
   lock across a call that can block (I/O, waiting for another thread);
   never fork from a callback walloc runs (a budget's soft limit, an asset
   load's progress), since the forking thread may hold a lock then.
   ------------------------------------------------------------------------ */
#define WL_LOCK_LEVELS    16 /* levels 1 .. 15; the registry's own lock is above them all */
#define WL_LEVEL_PLATFORM 1  /* wasm's memory bump */

typedef struct wl_lock_s {
  _Atomic(int) held;
  uint32_t level;                /* 1 .. WL_LOCK_LEVELS - 1; 0: not registered (a bug) */
  struct wl_lock_s *next, *prev; /* its place on its level's list in the registry */
} wl_lock_t;

#define WL_LOCK_INIT(level) { 0, (level), NULL, NULL }

#if defined(__wasm__)
#define WL_OS_FORK 0 /* no fork: nothing to register */
#define WL_LOCK_REGISTER(name, lock) _Static_assert(1, #name)
#else
#define WL_OS_FORK 1
#define WL_LOCK_REGISTER(name, lock)                                     \
  __attribute__((constructor)) static void name(void) { wl_lock_register(lock); } \
  _Static_assert(1, #name)
#endif
/* A static lock of the given level, registered: WL_LOCK_STATIC(huge_lock, WL_LEVEL_HEAP); */
#define WL_LOCK_STATIC(name, level)            \
  static wl_lock_t name = WL_LOCK_INIT(level); \
  WL_LOCK_REGISTER(name##_register, &name)

/* Puts a static lock (its level set by WL_LOCK_INIT) in the registry: the
   constructor WL_LOCK_REGISTER defines calls it. */
void wl_lock_register(wl_lock_t *l);
/* An object's lock: unheld, of `level`, registered. With no lock held. */
void wl_lock_init(wl_lock_t *l, unsigned level);
/* Before the object is freed, with no lock held (l itself unheld). */
void wl_lock_fini(wl_lock_t *l);

/* The fork handlers' work (installed by wl_os_thread_hooks_init). */
void wl_locks_fork_prepare(void);
void wl_locks_fork_parent(void);
void wl_locks_fork_child(void);

/* Debug builds check the order of every lock taken (bit L: this thread
   holds a lock of level L). Not on Emscripten with pthreads, where the
   runtime allocates (under a lock) before the thread's locals exist. */
#if WL_DEBUG >= 2 && !defined(__EMSCRIPTEN_PTHREADS__)
#define WL_LOCK_CHECK 1
extern __thread uint32_t wl_lock_held __attribute__((tls_model("initial-exec")));
void wl_lock_misuse(const wl_lock_t *l, const char *what);
WL_INLINE void wl_lock_check(const wl_lock_t *l, bool blocking) {
  if (l->level == 0 || l->level > WL_LOCK_LEVELS) wl_lock_misuse(l, "a lock that is not registered (no level)");
  if (blocking && (wl_lock_held & ((2u << l->level) - 1)) != 0) {
    wl_lock_misuse(l, "a lock taken while one of its level or below is held (lock order)");
  }
}
WL_INLINE void wl_lock_note(const wl_lock_t *l, bool held) {
  if (held) wl_lock_held |= 1u << l->level;
  else wl_lock_held &= ~(1u << l->level);
}
#else
#define WL_LOCK_CHECK 0
WL_INLINE void wl_lock_check(const wl_lock_t *l, bool blocking) { WL_UNUSED(l); WL_UNUSED(blocking); }
WL_INLINE void wl_lock_note(const wl_lock_t *l, bool held) { WL_UNUSED(l); WL_UNUSED(held); }
#endif

/* The lock itself, without the checks (lock.c and the functions below). */
WL_INLINE bool wl_lock_try_raw(wl_lock_t *l) {
  int expect = 0;
  return wl_load_relaxed(&l->held) == 0 &&
         atomic_compare_exchange_strong_explicit(&l->held, &expect, 1, memory_order_acquire,
                                                 memory_order_relaxed);
}
WL_INLINE void wl_lock_raw(wl_lock_t *l) {
  for (unsigned spin = 0; !wl_lock_try_raw(l); spin++) {
    if (spin >= 16) wl_os_yield();
    else
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#else
      ;
#endif
  }
}
WL_INLINE void wl_unlock_raw(wl_lock_t *l) { atomic_store_explicit(&l->held, 0, memory_order_release); }

WL_INLINE bool wl_lock_try(wl_lock_t *l) {
  wl_lock_check(l, false);
  bool got = wl_lock_try_raw(l);
  if (got) wl_lock_note(l, true);
  return got;
}
WL_INLINE void wl_lock(wl_lock_t *l) {
  wl_lock_check(l, true);
  wl_lock_raw(l);
  wl_lock_note(l, true);
}
WL_INLINE void wl_unlock(wl_lock_t *l) {
  wl_lock_note(l, false);
  wl_unlock_raw(l);
}

/* ------------------------------------------------------------------------
   Output without allocation (out.c): a fixed buffer formatter.
   ------------------------------------------------------------------------ */
typedef struct wl_out_s {
  int    fd;
  size_t len;
  char  *mem;        /* wl_out_init_mem: the caller's buffer, else NULL */
  size_t mem_len;    /* its size, the NUL included */
  size_t total;      /* bytes flushed so far (whether they fitted or not) */
  char   buf[512];
} wl_out_t;

void wl_out_init(wl_out_t *o, int fd);
/* Output into buf instead of a descriptor, as snprintf does: at most len
   bytes, the terminating NUL included (buf may be NULL when len is 0).
   wl_out_end_mem flushes, terminates and returns the length the whole
   output needs (without the NUL): more than len - 1 means truncated. */
void wl_out_init_mem(wl_out_t *o, char *buf, size_t len);
size_t wl_out_end_mem(wl_out_t *o);
void wl_out_str(wl_out_t *o, const char *s);
void wl_out_char(wl_out_t *o, char c);
void wl_out_u64(wl_out_t *o, uint64_t v, int width);      /* right-aligned in width (0 = none) */
void wl_out_hex(wl_out_t *o, uintptr_t v);
void wl_out_size(wl_out_t *o, uint64_t bytes, int width); /* 12.3 MiB style */
void wl_out_pad(wl_out_t *o, const char *s, int width);   /* left-aligned in width */
void wl_out_flush(wl_out_t *o);

#endif
