#!/bin/bash
# prog-cxx-new.sh: cxx-new (every C++ operator new/delete, linked normally)
# first on the C library's allocator, then preloaded with walloc, where it
# must find walloc_owns, have every block owned by walloc, exit 0 and print
# walloc's statistics table (proof that walloc served it).
#   prog-cxx-new.sh LIBWALLOC CXX_NEW [VERSION]
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
[ $# -ge 2 ] || { echo "usage: $0 LIBWALLOC CXX_NEW [VERSION]" >&2; exit 1; }
lib=$(readlink -f "$1" || true)
exe=$2
header="walloc ${3:-0.1.0} statistics"
[ -n "$lib" ] && [ -f "$lib" ] || { echo "FAIL: $1 not found (build it first)" >&2; exit 1; }
[ -x "$exe" ] || { echo "FAIL: $exe not found (build it first)" >&2; exit 1; }
unset WALLOC_STATS WALLOC_VERBOSE LD_PRELOAD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/walloc-cxx-new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

rc=0
"$exe" >"$tmp/out" 2>"$tmp/err" || rc=$?
if [ "$rc" != 0 ]; then
  echo "FAIL: $exe fails even without walloc (status $rc): the test is wrong" >&2
  cat "$tmp/out" "$tmp/err" >&2
  exit 1
fi
echo "without walloc: $(cat "$tmp/out")"

rc=0
WALLOC_STATS=1 LD_PRELOAD=$lib "$exe" --expect-walloc >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out"
if [ "$rc" != 0 ]; then
  echo "FAIL: under walloc, $exe exited with status $rc" >&2
  cat "$tmp/err" >&2
  echo "reproduce: WALLOC_STATS=1 LD_PRELOAD=$lib $exe --expect-walloc" >&2
  echo "backtrace: gdb -batch -ex run -ex bt --args env LD_PRELOAD=$lib $exe --expect-walloc" >&2
  exit 1
fi
if ! grep -qx "$header: pid [0-9][0-9]* (cxx-new)" "$tmp/err"; then
  echo "FAIL: under walloc with WALLOC_STATS=1, no '$header' table on stderr:" >&2
  cat "$tmp/err" >&2
  exit 1
fi
grep -q '^  allocations' "$tmp/err" || { echo "FAIL: the statistics table has no allocations row" >&2; cat "$tmp/err" >&2; exit 1; }
if grep -v -e "^$header: pid " -e '^  ' "$tmp/err" | grep -q .; then
  echo "FAIL: unexpected messages on stderr under walloc:" >&2
  cat "$tmp/err" >&2
  exit 1
fi
echo "under walloc: ok, statistics table printed:"
sed -n '1,4p' "$tmp/err"
