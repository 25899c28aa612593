#!/bin/bash
# gcc and g++ under walloc (the driver, cc1, cc1plus, as, collect2 and ld all
# inherit the preload): compile a generated C file of many functions, a C++
# file full of containers and exceptions, and walloc's own sources; link; run
# what was built. Objects and executables must be byte-identical to the plain
# run's, and the built programs must print the same.
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
walloc_test_init "$@"

GCC=/usr/bin/gcc
GXX=/usr/bin/g++
require_program "$GCC" gcc
require_program "$GXX" g++
require_program /usr/bin/awk mawk

awk -v N=150 -f "$here/gen_c.awk" >"$DATA/gen.c"
cp "$here/cxx_workload.cpp" "$DATA/"

# walloc's own sources, copied once so both runs compile the same text. Others
# may be editing them: leave out any file that does not compile plainly now.
walloc_sources=()
if [ -n "$SOURCE_ROOT" ] && [ -d "$SOURCE_ROOT/lib" ]; then
  cp -r "$SOURCE_ROOT/lib" "$SOURCE_ROOT/include" "$DATA/"
  for f in "$DATA"/lib/heap/*.c "$DATA"/lib/platform/*.c; do
    if "$GCC" -std=gnu11 -fsyntax-only -I"$DATA/include" -I"$DATA/lib" -DWL_DEBUG=0 "$f" 2>/dev/null; then
      walloc_sources+=("$f")
    else
      echo "note: $f does not compile now, left out"
    fi
  done
fi
echo "walloc sources to compile: ${#walloc_sources[@]}"

workload() {
  step gen_cc "$GCC" -std=c11 -O2 -Wall -c "$DATA/gen.c" -o gen.o
  step_file gen.o gen.o
  step gen_cc_g "$GCC" -std=c11 -O1 -g -c "$DATA/gen.c" -o gen-g.o
  step_file gen-g.o gen-g.o
  step gen_link "$GCC" gen.o -o gen
  step_file gen gen
  step gen_run ./gen

  step cxx_cc "$GXX" -std=c++17 -O2 -Wall -Wextra -c "$DATA/cxx_workload.cpp" -o cxx.o
  step_file cxx.o cxx.o
  step cxx_link "$GXX" cxx.o -o cxx
  step_file cxx cxx
  step cxx_run ./cxx
  # one step through the driver in one go: compile, assemble and link
  step cxx_all "$GXX" -std=c++17 -O1 "$DATA/cxx_workload.cpp" -o cxx1
  step_file cxx1 cxx1
  step cxx1_run ./cxx1

  local f base
  for f in "${walloc_sources[@]}"; do
    base=$(basename "$(dirname "$f")")_$(basename "$f" .c)
    step "walloc_$base" "$GCC" -std=gnu11 -O2 -fPIC -Wall -Wextra -I"$DATA/include" -I"$DATA/lib" \
      -DWL_DEBUG=0 -fvisibility=hidden -c "$f" -o "$base.o"
    step_file "$base.o" "$base.o"
  done
}

assert_walloc_serves "$GCC" -c "$DATA/gen.c" -o "$TEST_TMP/probe.o"
run_and_compare
