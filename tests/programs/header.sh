#!/bin/bash
# header.sh: include/walloc.h must compile on its own, warning-free, as strict
# C11 and C++17, with gcc/g++ and clang/clang++ (when installed); the programs
# must then link against libwalloc.so and run, so the declarations match what
# the library exports.
#   header.sh INCLUDE_DIR LIBWALLOC
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 INCLUDE_DIR LIBWALLOC" >&2; exit 1; }
inc=$1
lib=$(readlink -f "$2" || true)
[ -f "$inc/walloc.h" ] || { echo "FAIL: no walloc.h in $inc" >&2; exit 1; }
[ -n "$lib" ] && [ -f "$lib" ] || { echo "FAIL: $2 not found (build it first)" >&2; exit 1; }
libdir=$(dirname "$lib")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walloc-header.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Link against the library by its soname, as an installed program would.
ln -s "$lib" "$tmp/libwalloc.so"

c_flags=(-std=c11 -pedantic -Wall -Wextra -Werror -Wundef -Wstrict-prototypes -Wshadow)
cxx_flags=(-std=c++17 -pedantic -Wall -Wextra -Werror -Wundef -Wshadow -Wold-style-cast)

failed=0
tested=0
try() {  # try LABEL COMPILER FLAGS... SOURCE
  local label=$1 compiler=$2
  shift 2
  tested=$((tested + 1))
  local exe=$tmp/$label
  if ! "$compiler" "$@" -I"$inc" -o "$exe.o" -c 2>"$tmp/$label.log"; then
    echo "FAIL: $label: walloc.h does not compile: $compiler $* -I$inc -c" >&2
    sed 's/^/    /' "$tmp/$label.log" >&2
    failed=1
    return
  fi
  if ! "$compiler" "$exe.o" -L"$tmp" -lwalloc -o "$exe" 2>"$tmp/$label.log"; then
    echo "FAIL: $label: does not link against $lib" >&2
    sed 's/^/    /' "$tmp/$label.log" >&2
    failed=1
    return
  fi
  local out
  if ! out=$(LD_LIBRARY_PATH=$libdir "$exe" 2>&1); then
    echo "FAIL: $label: the program failed: $out" >&2
    failed=1
    return
  fi
  echo "ok   $label: $out"
}

for cc in gcc clang; do
  if command -v "$cc" >/dev/null; then
    try "c11-$cc" "$cc" "${c_flags[@]}" "$here/header_c.c"
  else
    echo "skip $cc: not installed"
  fi
done
for cxx in g++ clang++; do
  if command -v "$cxx" >/dev/null; then
    try "cxx17-$cxx" "$cxx" "${cxx_flags[@]}" "$here/header_cpp.cpp"
  else
    echo "skip $cxx: not installed"
  fi
done
[ "$tested" -gt 0 ] || { echo "FAIL: no C or C++ compiler found (install gcc)" >&2; exit 1; }
exit "$failed"
