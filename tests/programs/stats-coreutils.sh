#!/bin/bash
# stats-coreutils.sh: WALLOC_STATS=1 must print the statistics table for
# programs that close stdout and stderr on their way out, as every coreutils
# program does (close_stdout, registered with atexit, runs before walloc's
# destructor). walloc has to keep a descriptor of its own for the table.
# The table is headed by the process id and the program's name.
# (Programs that end with _exit, such as dash, run no destructor and print
# no table; that is not checked.)
#   stats-coreutils.sh WALLOC_RUN [VERSION]
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
[ $# -ge 1 ] || { echo "usage: $0 WALLOC_RUN [VERSION]" >&2; exit 1; }
run=$1
header="walloc ${2:-0.1.0} statistics"
unset WALLOC_STATS WALLOC_VERBOSE LD_PRELOAD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/walloc-stats.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
seq 1000 >"$tmp/in"
failed=0
for cmd in "sort $tmp/in" "cat $tmp/in" "ls $tmp"; do
  rc=0
  # shellcheck disable=SC2086
  "$run" --stats -- $cmd >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    echo "FAIL: walloc-run --stats -- $cmd: exit status $rc" >&2
    cat "$tmp/err" >&2
    failed=1
  elif ! grep -qx "$header: pid [0-9][0-9]* (${cmd%% *})" "$tmp/err"; then
    echo "FAIL: walloc-run --stats -- $cmd: no statistics table (the program closed stderr before walloc's destructor ran)" >&2
    failed=1
  else
    echo "ok   walloc-run --stats -- $cmd prints the table"
  fi
done
exit "$failed"
