/* lock.c: the registry of every lock, and what fork does with it
 * (platform.h, "Locks, and fork").
 *
 * Owns: the registry, one list of locks per level, and the lock that
 * guards it; the fork handlers' work. Static locks join at load time (the
 * constructor WL_LOCK_STATIC and WL_LOCK_REGISTER define: a lock may be
 * used before, by allocations the dynamic loader makes, when no other
 * thread can exist yet), object locks when their object is made.
 *
 * Invariants: a lock is on the list of its level from its registration to
 * wl_lock_fini (static locks: for ever); a lock's level never changes while
 * it is registered.
 *
 * fork (when the process has more than one thread: linux.c skips all of
 * this for a process that never had a second): prepare takes the
 * registry's lock (so no lock comes or goes), then
 * level by level from the highest, every static and every object lock of
 * that level. Taking them top down is the order every thread keeps, so
 * prepare waits for each holder to finish and never deadlocks with one.
 * Parent and child release them all; the child's copies were held by the
 * forking thread, so releasing them is all the repair locks need. What the
 * child then finds under each lock is whole: the operation another thread
 * was running under it (a ring mid-allocation, a context being reset, the
 * asset table growing) either finished before prepare got the lock or had
 * not begun. What those threads kept to themselves without a lock (their
 * thread heaps, tier windows, pool caches, frames, scopes) stays in the
 * child as they left it and is never touched there, only leaked; the heap's
 * repair (heap.c) deals with the one lock-free hand-over that could leave
 * the forking thread waiting.
 *
 * Thread safety: the lists change under the registry's lock, which is above
 * every level: a thread registers or unregisters holding no other lock.
 * The fork handlers run in the forking thread alone.
 */
#include "platform.h"

#if WL_LOCK_CHECK
__thread uint32_t wl_lock_held __attribute__((tls_model("initial-exec")));

void wl_lock_misuse(const wl_lock_t *l, const char *what) {
  wl_out_t o;
  wl_out_init(&o, 2);
  wl_out_str(&o, "walloc: fatal: ");
  wl_out_str(&o, what);
  wl_out_str(&o, ": lock ");
  wl_out_hex(&o, (uintptr_t)l);
  wl_out_str(&o, " level ");
  wl_out_u64(&o, l->level, 0);
  wl_out_str(&o, ", levels held ");
  wl_out_hex(&o, wl_lock_held);
  wl_out_char(&o, '\n');
  wl_out_flush(&o);
  wl_os_abort();
}
#endif

#if WL_OS_FORK
static wl_lock_t registry = WL_LOCK_INIT(WL_LOCK_LEVELS);
static wl_lock_t *levels[WL_LOCK_LEVELS]; /* the locks of each level, under `registry` */

void wl_lock_register(wl_lock_t *l) {
  wl_assert(l->level >= 1 && l->level < WL_LOCK_LEVELS);
  wl_lock(&registry);
  l->prev = NULL;
  l->next = levels[l->level];
  if (l->next != NULL) l->next->prev = l;
  levels[l->level] = l;
  wl_unlock(&registry);
}

void wl_lock_init(wl_lock_t *l, unsigned level) {
  atomic_store_explicit(&l->held, 0, memory_order_relaxed);
  l->level = level;
  wl_lock_register(l);
}

void wl_lock_fini(wl_lock_t *l) {
  wl_lock(&registry);
  if (l->prev != NULL) l->prev->next = l->next;
  else levels[l->level] = l->next;
  if (l->next != NULL) l->next->prev = l->prev;
  wl_unlock(&registry);
  l->next = l->prev = NULL;
  l->level = 0; /* a use after this is caught in debug builds */
}

static void each_of_level(unsigned level, void (*fn)(wl_lock_t *)) {
  for (wl_lock_t *l = levels[level]; l != NULL; l = l->next) fn(l);
}

static void reset(wl_lock_t *l) { atomic_store_explicit(&l->held, 0, memory_order_relaxed); }

void wl_locks_fork_prepare(void) {
#if WL_LOCK_CHECK
  /* fork from a callback walloc runs under its lock would wait for itself */
  if (wl_lock_held != 0) wl_lock_misuse(&registry, "fork while this thread holds a walloc lock");
#endif
  wl_lock_raw(&registry);
  for (unsigned level = WL_LOCK_LEVELS - 1; level >= 1; level--) each_of_level(level, wl_lock_raw);
}

void wl_locks_fork_parent(void) {
  for (unsigned level = 1; level < WL_LOCK_LEVELS; level++) each_of_level(level, wl_unlock_raw);
  wl_unlock_raw(&registry);
}

void wl_locks_fork_child(void) {
  for (unsigned level = 1; level < WL_LOCK_LEVELS; level++) each_of_level(level, reset);
  reset(&registry);
}
#else
/* No fork (wasm): a lock needs its level only, for the debug checks. */
void wl_lock_register(wl_lock_t *l) { WL_UNUSED(l); }

void wl_lock_init(wl_lock_t *l, unsigned level) {
  atomic_store_explicit(&l->held, 0, memory_order_relaxed);
  l->level = level;
  l->next = l->prev = NULL;
}

void wl_lock_fini(wl_lock_t *l) { l->level = 0; }
#endif
