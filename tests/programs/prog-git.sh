#!/bin/bash
# git under walloc: a repository of a few hundred generated files over several
# commits, then log, diff, blame, grep, gc, repack and fsck. Dates and
# identities are fixed, so every hash is the same in both runs.
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
walloc_test_init "$@"

GIT=/usr/bin/git
require_program "$GIT" git
require_program /usr/bin/awk mawk

# A private, fixed git environment: no user or system configuration.
export HOME=$TEST_TMP/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Walloc Test" GIT_AUTHOR_EMAIL=test@walloc.invalid
export GIT_COMMITTER_NAME="Walloc Test" GIT_COMMITTER_EMAIL=test@walloc.invalid
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
export GIT_PAGER=cat PAGER=cat GIT_TERMINAL_PROMPT=0
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_TRACE
mkdir -p "$HOME"

# gen_files ROUND: write (or rewrite part of) 300 files in src/ and docs/
gen_files() {
  awk -v R="$1" 'BEGIN {
    for (f = 0; f < 300; f++) {
      if (R > 0 && (f * 7 + R) % 4 != 0) continue     # later rounds touch a quarter
      dir = (f % 3 == 0) ? "docs" : "src/m" (f % 10)
      path = dir "/file" f ".txt"
      x = f * 7919 + R * 104729 + 1
      n = 20 + (f * 13 + R) % 200
      for (l = 0; l < n; l++) {
        x = (x * 48271) % 2147483647
        printf "line %d of file %d round %d: %08x %s\n", l, f, (l % 5 == 0 ? R : 0), x, (x % 3 ? "alpha" : "beta") > path
      }
      close(path)
    }
  }'
}

# commit_round ROUND: generate the round's files and commit them
commit_round() {
  mkdir -p docs src/m0 src/m1 src/m2 src/m3 src/m4 src/m5 src/m6 src/m7 src/m8 src/m9
  gen_files "$1"
  # main deletes a file in rounds 3-6 (files no other branch changes)
  if [ "$1" -gt 2 ] && [ "$1" -lt 7 ]; then rm -f "docs/file$(( $1 * 12 )).txt"; fi
  "$GIT" add -A
  GIT_AUTHOR_DATE="2024-01-0$(( $1 + 1 ))T12:00:00Z" GIT_COMMITTER_DATE="2024-01-0$(( $1 + 1 ))T12:00:00Z" \
    "$GIT" commit -q -m "round $1" -m "generated files, round $1"
}

workload() {
  step init "$GIT" -c init.defaultBranch=main init -q .
  step config "$GIT" config pack.threads 1   # delta search order is then fixed
  local r
  for r in 0 1 2 3 4 5 6; do
    step "round$r" commit_round "$r"
  done
  step branch "$GIT" checkout -q -b topic HEAD~3
  step topic commit_round 7
  step checkout "$GIT" checkout -q main
  step merge "$GIT" merge -q --no-ff --no-edit -m "merge topic" topic
  step head "$GIT" rev-parse HEAD 'HEAD^{tree}'
  step log "$GIT" log --stat --format='%H %an %ad %s' --date=iso-strict
  step log_graph "$GIT" log --graph --oneline --all
  step diff "$GIT" diff --stat main~4 main
  step diff_full sh -c '"$1" diff -M main~5 topic | sha256sum' sh "$GIT"
  step blame "$GIT" blame -s docs/file0.txt
  step grep "$GIT" grep -c beta HEAD -- src
  step ls_tree "$GIT" ls-tree -r -l HEAD
  step archive sh -c '"$1" archive --format=tar HEAD | sha256sum' sh "$GIT"
  step gc "$GIT" gc -q --prune=now
  step count "$GIT" count-objects -v
  step repack "$GIT" repack -a -d -f -q --depth=20 --window=50
  step verify sh -c '"$1" verify-pack -v .git/objects/pack/*.idx | sort' sh "$GIT"
  step fsck "$GIT" fsck --full --strict
  step rev_list "$GIT" rev-list --objects --all
}

assert_walloc_serves "$GIT" --version
run_and_compare
