/* header_c.c: walloc.h on its own, as strict C (compiled by header.sh). */
#include "walloc.h"
#include "walloc.h" /* twice: the include guard must hold */

#include <stdio.h>
#include <string.h>

int main(void) {
  walloc_heap_stats st;
  void *p = walloc_malloc(100);
  bool owned = walloc_owns(p);
  size_t usable = walloc_usable_size(p);
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  walloc_heap_stats_get(&st);
  walloc_free(p);
  walloc_collect(false);
  if (strcmp(walloc_version(), WALLOC_VERSION_STRING) != 0) {
    fprintf(stderr, "walloc_version() is %s, the header says %s\n", walloc_version(), WALLOC_VERSION_STRING);
    return 1;
  }
  if (!owned || usable < 100 || st.version != WALLOC_HEAP_STATS_VERSION || st.allocations == 0) {
    fprintf(stderr, "unexpected: owned=%d usable=%zu version=%u allocations=%llu\n", (int)owned, usable,
            (unsigned)st.version, (unsigned long long)st.allocations);
    return 1;
  }
  printf("walloc %s (%d.%d.%d): C header ok\n", walloc_version(), WALLOC_VERSION_MAJOR,
         WALLOC_VERSION_MINOR, WALLOC_VERSION_PATCH);
  return 0;
}
