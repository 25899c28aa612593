/* osmem.c: counted OS memory (core.h, "OS memory").
 *
 * Owns: the platform's facts (wl_os) and the counters of every mapping,
 * reservation, commit, purge and release of every layer.
 * Invariants: mapped is the sum of by_user; mapped counts each range from
 * the call that made it to the call that gave it back, so it equals the
 * address space walloc holds whenever no call is under way; committed <=
 * mapped likewise; peak_mapped >= every value mapped has had.
 * Thread safety: relaxed atomic adds, one per counter a call changes: the
 * figures are exact when the calls that moved them have returned, and a
 * reader racing with a call sees it before or after, counter by counter.
 * Nothing here allocates or takes a lock (the platform may: wasm's bump).
 */
#include "core.h"

wl_os_info_t wl_os;

static struct {
  _Atomic(uint64_t) mapped, peak_mapped, committed, purged, released;
  _Atomic(uint64_t) by_user[WL_MEM_USERS];
} counts;

/* A change of `bytes` (negative: given back) in the address space `who`
   holds, of which `committed` bytes readable and writable. */
static void count(wl_mem_user_t who, int64_t bytes, int64_t committed) {
  wl_fetch_add(&counts.by_user[who], (uint64_t)bytes);
  uint64_t m = wl_fetch_add(&counts.mapped, (uint64_t)bytes) + (uint64_t)bytes;
  if (bytes > 0) wl_peak_raise(&counts.peak_mapped, m);
  if (committed != 0) wl_fetch_add(&counts.committed, (uint64_t)committed);
}

void *wl_osmem_map(wl_mem_user_t who, size_t size, size_t align, size_t offset, bool *is_zero) {
  void *p = wl_os_alloc(size, align, offset, is_zero);
  if (p != NULL) count(who, (int64_t)size, (int64_t)size);
  return p;
}

void wl_osmem_unmap(wl_mem_user_t who, void *addr, size_t size) {
  wl_os_release(addr, size);
  count(who, -(int64_t)size, -(int64_t)size);
  wl_fetch_add(&counts.released, size);
}

void *wl_osmem_reserve(wl_mem_user_t who, size_t size, size_t align) {
  void *p = wl_os_reserve(size, align);
  if (p != NULL) count(who, (int64_t)size, wl_os.reserve_commits ? (int64_t)size : 0);
  return p;
}

void wl_osmem_unreserve(wl_mem_user_t who, void *addr, size_t size, size_t committed) {
  wl_os_release(addr, size);
  count(who, -(int64_t)size, -(int64_t)(wl_os.reserve_commits ? size : committed));
  wl_fetch_add(&counts.released, size);
}

bool wl_osmem_commit(void *addr, size_t size) {
  if (!wl_os_commit(addr, size)) return false;
  if (!wl_os.reserve_commits) wl_fetch_add(&counts.committed, size);
  return true;
}

bool wl_osmem_purge(void *addr, size_t size) {
  bool zero = wl_os_purge(addr, size);
  if (zero) wl_fetch_add(&counts.purged, size);
  return zero;
}

bool wl_osmem_resize(wl_mem_user_t who, void *addr, size_t old_size, size_t new_size) {
  if (!wl_os_resize(addr, old_size, new_size)) return false;
  int64_t d = (int64_t)new_size - (int64_t)old_size;
  count(who, d, d);
  if (d < 0) wl_fetch_add(&counts.released, (uint64_t)-d);
  return true;
}

bool wl_osmem_remap(wl_mem_user_t who, void *old, size_t old_size, void *dst, size_t new_size) {
  WL_UNUSED(new_size); /* counted when dst was mapped */
  if (!wl_os_remap(old, old_size, dst, new_size)) return false;
  count(who, -(int64_t)old_size, -(int64_t)old_size);
  return true;
}

void wl_osmem_stats(wl_osmem_stats_t *out) {
  out->mapped = wl_load_relaxed(&counts.mapped);
  out->peak_mapped = wl_load_relaxed(&counts.peak_mapped);
  out->committed = wl_load_relaxed(&counts.committed);
  out->purged = wl_load_relaxed(&counts.purged);
  out->released = wl_load_relaxed(&counts.released);
  for (int i = 0; i < WL_MEM_USERS; i++) out->by_user[i] = wl_load_relaxed(&counts.by_user[i]);
}
