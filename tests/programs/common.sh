# common.sh: helpers shared by the real-program tests. Sourced, not run.
#
# A test runs one workload twice in the same scratch directory: first with the
# C library's malloc, then with libwalloc.so preloaded. Each step of the
# workload records its stdout, stderr and exit status; the two records must be
# identical. Usage from a test script:
#
#   . common.sh
#   walloc_test_init "$@"                 # $1 = libwalloc.so, $2 = source root
#   require_program /usr/bin/sqlite3 sqlite3
#   workload() { step name cmd args...; ... }   # runs in $WORK, may use $DATA
#   run_and_compare
#
# Set WL_TEST_KEEP=1 to keep the scratch directory for a post-mortem.

# Nothing from the caller's environment may change the runs' outputs.
unset WALLOC_STATS WALLOC_VERBOSE LD_PRELOAD MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES
export LC_ALL=C TZ=UTC

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

note() {
  echo "--- $*"
}

# walloc_test_init LIBWALLOC SOURCE_ROOT [VERSION]
walloc_test_init() {
  [ $# -ge 1 ] || fail "usage: $0 LIBWALLOC [SOURCE_ROOT] [VERSION]"
  WALLOC_LIB=$(readlink -f "$1" || true)
  SOURCE_ROOT=${2:-}  # for the scripts that compile walloc's own sources
  export SOURCE_ROOT
  WALLOC_VERSION_STR=${3:-0.1.0}
  [ -n "$WALLOC_LIB" ] && [ -f "$WALLOC_LIB" ] || fail "libwalloc.so not found at $1 (build it first)"
  TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/walloc-prog.XXXXXX")
  trap walloc_test_cleanup EXIT
  WORK=$TEST_TMP/work      # the workload's directory, same path for both runs
  DATA=$TEST_TMP/data      # inputs generated once, read by both runs
  mkdir -p "$DATA"
  echo "libwalloc: $WALLOC_LIB"
}

walloc_test_cleanup() {
  if [ "${WL_TEST_KEEP:-0}" = 1 ]; then
    echo "scratch directory kept: $TEST_TMP" >&2
  else
    rm -rf "$TEST_TMP"
  fi
}

# require_program PATH DEBIAN_PACKAGE: a missing program is a failure, with
# the fix spelled out.
require_program() {
  if [ ! -x "$1" ]; then
    fail "$1 is missing: install the Debian package '$2' (apt-get install -y --no-install-recommends $2)"
  fi
}

# step NAME COMMAND [ARGS...]: run COMMAND in $WORK (under walloc in the
# walloc run), record its stdout, stderr and exit status under $RESULTS/NAME.
# A failing step does not stop the workload: the comparison reports it.
step() {
  local name=$1
  shift
  printf '%q ' "$@" >"$RESULTS/$name.cmd"
  local rc=0
  if [ "$MODE" = walloc ]; then
    ( cd "$WORK" && LD_PRELOAD=$WALLOC_LIB "$@" ) >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" </dev/null || rc=$?
  else
    ( cd "$WORK" && "$@" ) >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" </dev/null || rc=$?
  fi
  echo "$rc" >"$RESULTS/$name.rc"
  if [ "$rc" -ge 128 ]; then
    echo "  [$MODE] step $name killed by signal $((rc - 128))" >&2
  fi
}

# step_file NAME FILE: record a file the workload produced (compared byte for byte)
step_file() {
  if [ -f "$WORK/$2" ]; then
    cp "$WORK/$2" "$RESULTS/$1.file"
  else
    echo "missing" >"$RESULTS/$1.file-missing"
  fi
}

# describe_failure DIR NAME: print what went wrong in one step
describe_step() {
  local dir=$1 name=$2
  echo "    command: $(cat "$dir/$name.cmd" 2>/dev/null)" >&2
  echo "    exit status: $(cat "$dir/$name.rc" 2>/dev/null)" >&2
  if [ -s "$dir/$name.err" ]; then
    echo "    stderr (first 20 lines):" >&2
    head -n 20 "$dir/$name.err" | sed 's/^/      /' >&2
  fi
}

run_workload() {
  MODE=$1
  RESULTS=$TEST_TMP/results-$MODE
  rm -rf "$WORK" "$RESULTS"
  mkdir -p "$WORK" "$RESULTS"
  local t0=$SECONDS
  workload
  echo "$MODE run: $((SECONDS - t0)) s"
}

# run_and_compare: the workload plain, then under walloc; compare the records.
run_and_compare() {
  run_workload plain
  # The workload itself must be sound: every step succeeds without walloc.
  local bad=0 f name
  for f in "$TEST_TMP"/results-plain/*.rc; do
    name=$(basename "$f" .rc)
    if [ "$(cat "$f")" != 0 ]; then
      echo "FAIL: step $name fails even without walloc (the test is broken or the program misbehaves):" >&2
      describe_step "$TEST_TMP/results-plain" "$name"
      bad=1
    fi
  done
  [ "$bad" = 0 ] || exit 1

  run_workload walloc
  local p=$TEST_TMP/results-plain w=$TEST_TMP/results-walloc
  for f in "$p"/*.rc; do
    name=$(basename "$f" .rc)
    if ! cmp -s "$f" "$w/$name.rc"; then
      echo "FAIL: step $name: exit status $(cat "$f") plain, $(cat "$w/$name.rc" 2>/dev/null || echo none) under walloc" >&2
      describe_step "$w" "$name"
      echo "    reproduce (WL_TEST_KEEP=1 keeps the files): cd $WORK && LD_PRELOAD=$WALLOC_LIB $(cat "$w/$name.cmd")" >&2
      echo "    backtrace: cd $WORK && gdb -batch -ex run -ex bt --args env LD_PRELOAD=$WALLOC_LIB $(cat "$w/$name.cmd")" >&2
      bad=1
    fi
  done
  for f in "$p"/*.out "$p"/*.err "$p"/*.file "$p"/*.file-missing; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    if [ ! -e "$w/$name" ]; then
      echo "FAIL: $name recorded in the plain run, not in the walloc run" >&2
      bad=1
    elif ! cmp -s "$f" "$w/$name"; then
      echo "FAIL: $name differs between the plain run (---) and the walloc run (+++):" >&2
      echo "    command: $(cat "$p/${name%.*}.cmd" 2>/dev/null)" >&2
      if grep -qI . "$f" 2>/dev/null || [ ! -s "$f" ]; then
        diff -u "$f" "$w/$name" | head -n 60 >&2 || true
      else
        cmp "$f" "$w/$name" >&2 || true
      fi
      bad=1
    fi
  done
  for f in "$w"/*; do
    [ -e "$p/$(basename "$f")" ] || { echo "FAIL: $(basename "$f") only in the walloc run" >&2; bad=1; }
  done
  [ "$bad" = 0 ] || { [ "${WL_TEST_KEEP:-0}" = 1 ] || echo "(set WL_TEST_KEEP=1 to keep $TEST_TMP)" >&2; exit 1; }
  local steps=("$p"/*.rc)
  echo "plain and walloc runs identical: ${#steps[@]} steps"
}

# assert_walloc_serves COMMAND [ARGS...]: prove the preload takes effect for
# this program: with WALLOC_STATS=1 it must print walloc's statistics table.
assert_walloc_serves() {
  local err=$TEST_TMP/serves.err rc=0
  ( cd "$TEST_TMP" && WALLOC_STATS=1 LD_PRELOAD=$WALLOC_LIB "$@" ) >/dev/null 2>"$err" </dev/null || rc=$?
  [ "$rc" = 0 ] || { cat "$err" >&2; fail "'$*' under walloc with WALLOC_STATS=1 exited with status $rc"; }
  grep -q "^walloc $WALLOC_VERSION_STR statistics" "$err" ||
    { cat "$err" >&2; fail "'$*' under LD_PRELOAD=$WALLOC_LIB printed no walloc statistics table: walloc did not serve it"; }
  local allocs
  allocs=$(awk '$1 == "allocations" { print $2; exit }' "$err")
  [ -n "$allocs" ] && [ "$allocs" -gt 0 ] ||
    { cat "$err" >&2; fail "'$*' under walloc: the statistics table shows no allocations"; }
  echo "walloc serves $1 ($allocs allocations for '$*')"
}

# assert_walloc_binds PROGRAM [ARGS...]: prove the preload takes effect by the
# dynamic linker's own account: PROGRAM's malloc and free bind to libwalloc.
# For programs that close stderr before exiting (coreutils does), where the
# statistics table cannot appear.
assert_walloc_binds() {
  local log=$TEST_TMP/ld-bindings rc=0
  ( cd "$TEST_TMP" && LD_DEBUG=bindings LD_DEBUG_OUTPUT=$log LD_PRELOAD=$WALLOC_LIB "$@" ) >/dev/null 2>&1 </dev/null || rc=$?
  [ "$rc" = 0 ] || fail "'$*' under walloc exited with status $rc"
  local prog
  prog=$(basename "$1")
  for sym in malloc free; do
    grep -hq "binding file [^ ]*$prog \[0\] to [^ ]*libwalloc[^ ]* \[0\]: normal symbol \`$sym'" "$log".* ||
      fail "'$*' under LD_PRELOAD=$WALLOC_LIB: $prog's $sym does not bind to libwalloc"
  done
  rm -f "$log".*
  echo "walloc serves $1 (its malloc and free bind to libwalloc)"
}
