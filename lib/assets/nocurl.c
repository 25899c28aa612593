/* nocurl.c: the load calls of a build without libcurl (meson -Dcurl=disabled).
 *
 * Owns nothing. Each load answers WALLOC_ERR_UNSUPPORTED with a message;
 * the registry and zero-copy placement (registry.c) work as in any build.
 * Thread-safe: no state.
 */
#include "assets.h"

static const char no_curl[] = "walloc was built without libcurl: assets cannot be loaded (meson -Dcurl=enabled)";

WL_API walloc_status walloc_load_asset(const char *path, walloc_asset_type type, walloc_handle *out) {
  WL_UNUSED(path);
  WL_UNUSED(type);
  if (out != NULL) *out = WALLOC_NULL_HANDLE;
  wl_note("%s", no_curl);
  return WALLOC_ERR_UNSUPPORTED;
}

WL_API size_t walloc_load_assets_batch(const walloc_asset_request *requests, size_t count,
                                       walloc_asset_result *results) {
  WL_UNUSED(requests);
  for (size_t i = 0; results != NULL && i < count; i++) {
    results[i].status = WALLOC_ERR_UNSUPPORTED;
    results[i].handle = WALLOC_NULL_HANDLE;
    results[i].http_status = 0;
  }
  if (count != 0) wl_note("%s", no_curl);
  return 0;
}

WL_API void walloc_cancel_asset_loads(void) {}
