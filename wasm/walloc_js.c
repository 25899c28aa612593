/* walloc_js.c: the small C glue under wasm/walloc.mjs, the JavaScript API.
 *
 * The module is linked with -sWASM_BIGINT, so a walloc_handle (uint64_t)
 * crosses to JavaScript as a BigInt and the walloc_ functions that take or
 * return one are exported as they are. What needs glue is what JavaScript
 * cannot reach without knowing C struct layouts: statistics, asset metadata,
 * and the size of linear memory. Every struct goes out as an array of
 * uint64_t that walloc.mjs reads with a BigUint64Array, in the order below.
 */
#include "walloc.h"
#include "assets.h" /* lib/assets: wl_asset_url, wl_asset_tier (the native loader's rules) */

#include <emscripten/emscripten.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WJS EMSCRIPTEN_KEEPALIVE

/* Bytes of linear memory now (a double: 4 GiB does not fit in 32 bits). */
WJS double wjs_memory_bytes(void) { return (double)__builtin_wasm_memory_size(0) * 65536.0; }

/* capacity, used, peak, free_list_bytes, allocations, deallocations, resets, generation */
WJS int wjs_tier_stats(int tier, uint64_t out[8]) {
  walloc_tier_stats s;
  walloc_status st = walloc_tier_stats_get((walloc_tier)tier, &s);
  if (st != WALLOC_OK) return (int)st;
  out[0] = s.capacity;
  out[1] = s.used;
  out[2] = s.peak;
  out[3] = s.free_list_bytes;
  out[4] = s.allocations;
  out[5] = s.deallocations;
  out[6] = s.resets;
  out[7] = s.generation;
  return WALLOC_OK;
}

/* allocations, frees, live_blocks, live_bytes, peak_bytes, mapped_bytes,
   peak_mapped_bytes, large_allocations, huge_allocations, foreign_frees */
WJS void wjs_heap_stats(uint64_t out[10]) {
  walloc_heap_stats s = {0};
  s.size = sizeof s;
  walloc_heap_stats_get(&s);
  out[0] = s.allocations;
  out[1] = s.frees;
  out[2] = s.live_blocks;
  out[3] = s.live_bytes;
  out[4] = s.peak_bytes;
  out[5] = s.mapped_bytes;
  out[6] = s.peak_mapped_bytes;
  out[7] = s.large_allocations;
  out[8] = s.huge_allocations;
  out[9] = s.foreign_frees;
}

/* Register key -> handle. false if the key exists (or no memory). */
WJS int wjs_register_asset(const char *key, walloc_handle handle, uint32_t size, int tier, int type,
                           double loaded_at_ms) {
  walloc_asset_metadata md = {
      .handle = handle,
      .size = size,
      .tier = (walloc_tier)tier,
      .type = (walloc_asset_type)type,
      .loaded_at_ms = (uint64_t)loaded_at_ms,
  };
  return walloc_register_asset(key, &md);
}

/* handle, size, tier, type, loaded_at_ms; false if no such key. */
WJS int wjs_get_asset(const char *key, uint64_t out[5]) {
  walloc_asset_metadata md;
  if (!walloc_get_asset(key, &md)) return 0;
  out[0] = md.handle;
  out[1] = md.size;
  out[2] = (uint64_t)md.tier;
  out[3] = (uint64_t)md.type;
  out[4] = md.loaded_at_ms;
  return 1;
}

/* The state of ops[i] after walloc_bulk_copy, checked the way the copy
   checks it (both handles live, both ranges inside their blocks): which
   status a failed op had. */
WJS int wjs_copy_op_status(const walloc_copy_op *ops, uint32_t i) {
  const walloc_copy_op *op = &ops[i];
  walloc_status st = walloc_write_data(op->dst, 0, NULL, 0);
  if (st == WALLOC_OK) st = walloc_read_data(op->src, 0, NULL, 0);
  if (st != WALLOC_OK) return (int)st;
  size_t ds = walloc_handle_size(op->dst), ss = walloc_handle_size(op->src);
  if (op->dst_offset > ds || op->length > ds - op->dst_offset) return WALLOC_ERR_BOUNDS;
  if (op->src_offset > ss || op->length > ss - op->src_offset) return WALLOC_ERR_BOUNDS;
  return WALLOC_OK;
}

/* The URL of an asset path, resolved and checked as the native loader does
   (base URL, schemes, ".." refused): a walloc_malloc'd string for
   walloc_free, or NULL with *status set and the reason in wjs_asset_error. */
WJS char *wjs_asset_url(const char *path, int *status) {
  walloc_status st;
  char *url = wl_asset_url(path, &st);
  *status = (int)st;
  if (url == NULL) return NULL;
  size_t n = strlen(url) + 1;
  char *copy = walloc_malloc(n);
  if (copy != NULL) memcpy(copy, url, n);
  else *status = WALLOC_ERR_NOMEM;
  wl_free(url);
  return copy;
}

/* The tier an asset of this type goes to (the options' audio tier too);
   -1 for an unknown type. */
WJS int wjs_asset_tier(int type) {
  if (type < 0 || type >= WALLOC_ASSET_TYPE_COUNT) return -1;
  wl_asset_opts_t o;
  wl_asset_opts(&o);
  return (int)wl_asset_tier(&o, (walloc_asset_type)type);
}

WJS const char *wjs_asset_error(void) { return walloc_asset_last_error(); }

/* walloc.mjs lays out walloc_request (8 bytes: size, tier) and
   walloc_copy_op (32 bytes: dst, dst_offset, src at 16, src_offset at 24,
   length at 28) itself; the build fails if wasm32's layout differs. */
_Static_assert(sizeof(walloc_request) == 8 && offsetof(walloc_request, tier) == 4, "walloc_request layout");
_Static_assert(sizeof(walloc_copy_op) == 32 && offsetof(walloc_copy_op, dst_offset) == 8 &&
                   offsetof(walloc_copy_op, src) == 16 && offsetof(walloc_copy_op, src_offset) == 24 &&
                   offsetof(walloc_copy_op, length) == 28,
               "walloc_copy_op layout");
WJS int wjs_layout_ok(void) { return 1; }
