#!/bin/bash
# os-door.sh SRC: no file above the core calls the platform's memory
# functions; every layer maps, reserves, commits, purges and releases
# through lib/core/osmem.c, so walloc_heap_stats.mapped_bytes counts it
# (lib/core/core.h, "OS memory").
src=$1
found=$(grep -rnE '\bwl_os_(alloc|reserve|commit|purge|release|resize|remap|advise_huge)\(' \
          "$src/lib" "$src/preload" "$src/wasm" --include='*.c' --include='*.h' |
        grep -vE "^$src/lib/(platform/|core/)")
if [ -n "$found" ]; then
  echo "OS memory around the core's counted door (use wl_osmem_*, lib/core/core.h):"
  echo "$found"
  exit 1
fi
echo "every OS memory call goes through lib/core/osmem.c"
