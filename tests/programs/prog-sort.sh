#!/bin/bash
# sort (coreutils) under walloc: 500k generated lines sorted in memory with 4
# threads, numerically, uniquely, with locale collation, and through
# temporary files when its buffer is small.
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
walloc_test_init "$@"

SORT=/usr/bin/sort
[ -x "$SORT" ] || SORT=/bin/sort
require_program "$SORT" coreutils
require_program /usr/bin/awk mawk

# 500k lines: a number, a word, a key with many duplicates (deterministic
# Park-Miller generator: exact in awk's doubles).
awk 'BEGIN {
  x = 42
  for (n = 0; n < 500000; ) {
    x = (x * 48271) % 2147483647
    w = ""
    for (j = 0; j < 3 + x % 9; j++) w = w sprintf("%c", 97 + int(x / (j + 1)) % 26)
    line = sprintf("%d %s k%d", (x % 2000003) - 1000000, w, x % 5000)
    print line; n++
    if (x % 4 == 0 && n < 500000) { print line; n++ }   # duplicates for sort -u
  }
}' >"$DATA/input.txt"
[ "$(wc -l <"$DATA/input.txt")" = 500000 ] || fail "could not generate the input"

# Sorted output files are big: record their digests and a sample.
sort_step() {
  local name=$1
  shift
  step "$name" sh -c '"$@" > sorted.txt && sha256sum < sorted.txt && wc -l < sorted.txt && sed -n "1,3p;250000p;\$p" sorted.txt' sh "$@"
}

workload() {
  sort_step plain "$SORT" "$DATA/input.txt"
  sort_step parallel "$SORT" --parallel=4 -S 50M "$DATA/input.txt"
  sort_step numeric "$SORT" -n --parallel=4 -S 50M "$DATA/input.txt"
  sort_step unique "$SORT" -u --parallel=4 -S 50M "$DATA/input.txt"
  sort_step keys "$SORT" -t ' ' -k3,3 -k1,1nr --parallel=4 -S 50M "$DATA/input.txt"
  sort_step unique_key "$SORT" -u -k3,3 --parallel=2 -S 50M "$DATA/input.txt"
  sort_step locale env LC_ALL=C.UTF-8 "$SORT" -f --parallel=4 -S 50M "$DATA/input.txt"
  sort_step external "$SORT" -n -S 1M -T "$WORK" --parallel=2 --batch-size=4 "$DATA/input.txt"
  sort_step merge sh -c 'head -n 250000 "$1" | "$2" > a.txt && tail -n 250000 "$1" | "$2" > b.txt && "$2" -m a.txt b.txt' sh "$DATA/input.txt" "$SORT"
}

# sort closes stderr before exit (close_stdout), so no statistics table: ask ld.so.
assert_walloc_binds "$SORT" "$DATA/input.txt"
run_and_compare
