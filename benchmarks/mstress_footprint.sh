#!/bin/sh
# mstress_footprint.sh: where bench-mstress's time goes, walloc against tcmalloc
# (and mimalloc), from three angles that do not depend on wall-clock noise alone:
#   1. rounds: the same work with threads living longer (5 rounds) or shorter
#      (80): if the gap came from starting and ending threads, fewer rounds
#      would shrink it;
#   2. callgrind: instructions executed, and simulated cache misses, at 8
#      threads with 400,000 operations;
#   3. walloc's own statistics at exit (WALLOC_STATS=1) at 32 threads;
#   4. the same run without its items of 16-256 KiB (LARGE=0): what the
#      large blocks handed between threads cost each allocator.
# usage: sh benchmarks/mstress_footprint.sh [BUILD=build]
set -eu
build=${1:-build}
bench="$build/benchmarks/bench-mstress"
walloc="$(cd "$build" && pwd)/libwalloc.so"
libdir=/usr/lib/x86_64-linux-gnu
echo "# commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
echo "# command: sh benchmarks/mstress_footprint.sh $build"
lib_of() {
  case $1 in
    walloc) echo "$walloc" ;;
    tcmalloc) echo "$libdir/libtcmalloc_minimal.so.4" ;;
    mimalloc) echo "$libdir/libmimalloc.so.2" ;;
  esac
}
echo
echo "## 1. 32 threads, 4,000,000 operations, by rounds (median of 3: wall s, peak RSS KiB)"
for rounds in 5 20 80; do
  for a in walloc tcmalloc mimalloc; do
    r=$(for i in 1 2 3; do LD_PRELOAD=$(lib_of $a) /usr/bin/time -f '%e %M' "$bench" 32 4000000 $rounds 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 2p)
    echo "rounds $rounds  $a  $r"
  done
done
echo
echo "## 2. callgrind, 8 threads, 400,000 operations, 4 rounds (whole process)"
for a in walloc tcmalloc; do
  out=$(mktemp)
  LD_PRELOAD=$(lib_of $a) valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file="$out" "$bench" 8 400000 4 >/dev/null 2>&1
  echo "$a: $(callgrind_annotate "$out" 2>/dev/null | grep -E 'Events shown' | sed 's/Events shown: *//')"
  echo "$a: $(callgrind_annotate "$out" 2>/dev/null | grep -E 'PROGRAM TOTALS' | sed 's/([^)]*)//g; s/  */ /g')"
  echo "$a: $(callgrind_annotate "$out" 2>/dev/null | grep -E ':worker ' | sed 's/([^)]*)//g; s/  */ /g')"
  rm -f "$out"
done
echo
echo "## 3. walloc's statistics at exit, 32 threads, defaults"
WALLOC_STATS=1 LD_PRELOAD="$walloc" "$bench" 32 2>&1 >/dev/null | sed -n 1,10p
echo
echo "## 4. 32 threads, defaults, with and without the items of 16-256 KiB (median of 3: wall s, peak RSS KiB)"
for large in 200 0; do
  "$bench" 2 40000 2 4000 2000 $large >/dev/null || { echo "bench-mstress failed with LARGE=$large" >&2; exit 1; }
  for a in walloc tcmalloc mimalloc; do
    r=$(for i in 1 2 3; do LD_PRELOAD=$(lib_of $a) /usr/bin/time -f '%e %M' "$bench" 32 4000000 20 4000 2000 $large 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 2p)
    if [ "$large" = 0 ]; then what="no large items"; else what="1 in $large large"; fi
    echo "$what  $a  $r"
  done
done
