#!/bin/bash
# layers.sh SRC LAYER=ARCHIVE...: walloc's layers call and include only
# the layers below them (docs/design.md).
#
# The layers come bottom up, each with its own static library
# (lib/meson.build). Symbols: every walloc symbol (wl_*, walloc_*) a
# layer's archive leaves undefined must be defined by that archive or one
# below it (`nm`). Includes: a layer's sources include headers of its own
# folder and of the layers below only; above the heap, only the heap's
# narrow interface (heap_api.h), never heap.h.
set -u
src=$1
shift
names=()
archives=()
for arg in "$@"; do
  names+=("${arg%%=*}")
  archives+=("${arg#*=}")
done
folder() { # a layer's source folder under lib/ (the top is lib/ itself)
  case $1 in
    top) echo "" ;;
    *) echo "$1" ;;
  esac
}
bad=0
defined=$(mktemp)
trap 'rm -f "$defined"' EXIT
for i in "${!names[@]}"; do
  name=${names[$i]}
  nm -g --defined-only "${archives[$i]}" 2>/dev/null | awk 'NF == 3 { print $3 }' >> "$defined"
  sort -u -o "$defined" "$defined"
  # calls upward: undefined here, defined by no layer at or below
  up=$(nm -u "${archives[$i]}" | awk '{ print $NF }' | grep -E '^(wl_|walloc_)' | sort -u | comm -23 - "$defined")
  if [ -n "$up" ]; then
    echo "layer $name calls what no layer at or below it defines:"
    echo "$up" | sed 's/^/  /'
    bad=1
  fi
  # includes: a folder of a layer above, or the heap's private header
  dir=$(folder "$name")
  above=("${names[@]:$((i + 1))}")
  files=$(find "$src/lib/$dir" -maxdepth 1 -name '*.[ch]')
  for up_name in "${above[@]}"; do
    up_dir=$(folder "$up_name")
    [ -n "$up_dir" ] || continue
    hits=$(grep -nE "#include \"(\.\./)?$up_dir/" $files)
    if [ -n "$hits" ]; then
      echo "layer $name includes layer $up_name, above it:"
      echo "$hits" | sed 's/^/  /'
      bad=1
    fi
  done
  case $name in
    platform|core|heap) ;;
    *)
      hits=$(grep -nE '#include "(\.\./)?heap/heap\.h"' $files)
      if [ -n "$hits" ]; then
        echo "layer $name includes heap.h, the heap's private header (use heap/heap_api.h):"
        echo "$hits" | sed 's/^/  /'
        bad=1
      fi ;;
  esac
done
[ "$bad" = 0 ] || exit 1
echo "${#names[@]} layers (${names[*]}): each calls and includes only itself and the layers below"
