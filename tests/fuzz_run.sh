#!/usr/bin/env bash
# fuzz_run.sh: one bounded libFuzzer run of a fuzz target, as a `meson test`.
#
#   fuzz_run.sh NAME BINARY SEEDS WORK SECONDS [libFuzzer flags...]
#
# Runs the libFuzzer binary for SECONDS on the committed corpus SEEDS
# (tests/fuzz/corpus/NAME), which it only reads: libFuzzer adds what it finds
# to the first corpus directory it is given, here WORK/corpus, kept between
# runs of the same build tree. Crash artifacts go to WORK/artifacts.
# Prints one line "fuzz summary: fuzz-NAME: libFuzzer: Done N runs in T
# second(s) ...", which tools/walloc.sh shows in CI's output (meson test
# keeps a passing test's output in its log only). A run that ends without
# libFuzzer's "Done" line fails: a binary that is not libFuzzer's cannot pass.
# When the run fails (a crash, an abort on a broken invariant, a sanitizer
# report, a timeout) the input is printed last, in base64 on one line, so
# that it survives meson's cut of long logs, with the command to replay it,
# and the script exits 1: libFuzzer's own status for a crash is 77, which
# meson test reports as a skipped test, not a failure.
set -uo pipefail

if [ $# -lt 5 ]; then
  echo "usage: $0 NAME BINARY SEEDS WORK SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
name=$1 bin=$(realpath "$2") seeds=$3 work=$4 seconds=$5
shift 5

seed_files=$(find "$seeds" -maxdepth 1 -type f 2>/dev/null | wc -l)
if [ "$seed_files" -eq 0 ]; then
  echo "fuzz-$name: no committed corpus in $seeds (tests/fuzz/corpus/$name/ must hold seed inputs)"
  exit 1
fi
mkdir -p "$work/corpus" "$work/artifacts"
rm -f "$work/artifacts"/*

out="$work/output.txt"
"$bin" "$work/corpus" "$seeds" -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" \
  -print_final_stats=1 "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

if [ "$status" -ne 0 ]; then
  echo
  echo "fuzz-$name: FAILED (libFuzzer exit status $status)"
  found=0
  for f in "$work/artifacts"/*; do
    [ -f "$f" ] || continue
    found=1
    echo "fuzz-$name: replay: $bin $f"
    echo "fuzz-$name: failing input, $(stat -c %s "$f") bytes, base64: $(base64 -w0 "$f")"
  done
  [ "$found" -eq 1 ] || echo "fuzz-$name: libFuzzer wrote no artifact (killed from outside?)"
  exit 1 # never libFuzzer's own status: its default for a crash, 77, means "skipped" to meson test
fi

done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$out" | tail -n 1)
if [ -z "$done_line" ]; then
  echo "fuzz-$name: FAILED: no 'Done N runs' line: $bin is not a libFuzzer binary"
  exit 1
fi
echo "fuzz summary: fuzz-$name: libFuzzer: $done_line" \
  "(corpus: $seed_files committed seeds, $(find "$work/corpus" -maxdepth 1 -type f | wc -l) found by this build tree)"
