// header_cpp.cpp: walloc.h on its own, as strict C++ (compiled by header.sh).
#include "walloc.h"
#include "walloc.h"  // twice: the include guard must hold

#include <cstdio>
#include <cstring>
#include <type_traits>

// The malloc-like signatures, usable as plain function pointers.
static void *(*const malloc_like)(std::size_t) = walloc_malloc;
static void (*const free_like)(void *) = walloc_free;
static_assert(std::is_standard_layout<walloc_heap_stats>::value, "walloc_heap_stats is plain data");

int main() {
  walloc_heap_stats st{};
  st.size = sizeof st;
  void *p = walloc_aligned_alloc(64, 200);
  free_like(malloc_like(10));
  void *q = walloc_calloc(10, 10);
  q = walloc_realloc(q, 1000);
  bool ok = walloc_owns(p) && walloc_owns(q) && walloc_usable_size(q) >= 1000;
  walloc_heap_stats_get(&st);
  walloc_free(p);
  walloc_free(q);
  if (std::strcmp(walloc_version(), WALLOC_VERSION_STRING) != 0 || !ok || st.live_blocks == 0) {
    std::fprintf(stderr, "unexpected: version %s, ok=%d, live blocks %llu\n", walloc_version(), int(ok),
                 static_cast<unsigned long long>(st.live_blocks));
    return 1;
  }
  std::printf("walloc %s: C++ header ok\n", walloc_version());
  return 0;
}
