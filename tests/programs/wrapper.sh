#!/bin/bash
# wrapper.sh: the walloc-run wrapper generated into the build directory.
#   wrapper.sh WALLOC_RUN LIBWALLOC [VERSION]
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
[ $# -ge 2 ] || { echo "usage: $0 WALLOC_RUN LIBWALLOC [VERSION]" >&2; exit 1; }
run=$1
lib=$(readlink -f "$2" || true)
version=${3:-0.1.0}
[ -x "$run" ] || { echo "FAIL: $run is missing or not executable" >&2; exit 1; }
[ -n "$lib" ] && [ -f "$lib" ] || { echo "FAIL: $2 not found (build it first)" >&2; exit 1; }
PY=/usr/bin/python3   # not the python3 in PATH, which may be a pyenv shim
[ -x "$PY" ] || { echo "FAIL: $PY is missing: install the Debian package 'python3'" >&2; exit 1; }
unset WALLOC_STATS WALLOC_VERBOSE LD_PRELOAD

tmp=$(mktemp -d "${TMPDIR:-/tmp}/walloc-run-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0
header="walloc $version statistics"

# t NAME EXPECTED_STATUS COMMAND...: run, keep stdout/stderr in $out/$err
t() {
  local name=$1 want=$2
  shift 2
  rc=0
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
  out=$tmp/out err=$tmp/err
  if [ "$want" = nonzero ]; then
    [ "$rc" != 0 ] || { bad "$name: exit status 0, expected non-zero"; return 1; }
  elif [ "$rc" != "$want" ]; then
    bad "$name: exit status $rc, expected $want"
    return 1
  fi
  return 0
}
bad() {
  echo "FAIL: $1" >&2
  echo "  stdout: $(head -c 2000 "$tmp/out")" >&2
  echo "  stderr: $(head -c 2000 "$tmp/err")" >&2
  failed=1
}
ok() { echo "ok   $1"; }
has() {  # has FILE TEXT WHAT
  grep -qF -- "$2" "$1" || { bad "$3: no '$2' in the output"; return 1; }
}

# --stats: the table on stderr at exit
if t "--stats /bin/true" 0 "$run" --stats -- /bin/true &&
   has "$err" "$header" "--stats /bin/true" && has "$err" "allocations" "--stats /bin/true" &&
   has "$err" "peak in use" "--stats /bin/true" && has "$err" "size class" "--stats /bin/true"; then
  [ "$(grep -c "^$header: pid [0-9][0-9]* (.*)\$" "$err")" = 1 ] || bad "--stats /bin/true: expected one table"
  [ ! -s "$out" ] || bad "--stats /bin/true: the table must go to stderr, not stdout"
  ok "--stats -- /bin/true prints the table"
fi
if t "--stats python3" 0 "$run" --stats -- "$PY" -c pass && has "$err" "$header" "--stats python3 -c pass" &&
   has "$err" "allocations" "--stats python3 -c pass"; then
  ok "--stats -- python3 -c pass prints the table"
fi
# every process prints its own: python starts a child python
if t "--stats child" 0 "$run" --stats -- "$PY" -c 'import subprocess, sys; subprocess.run([sys.executable, "-c", "pass"], check=True)'; then
  n=$(grep -c "^$header: pid [0-9][0-9]* (.*)\$" "$err" || true)
  if [ "$n" = 2 ]; then ok "--stats: a parent and its child print a table each"; else bad "--stats child: $n tables, expected 2"; fi
fi
# --stats-file: each process's table in its own file, %p its pid; stderr quiet
mkdir "$tmp/files"
if t "--stats-file child" 0 "$run" --stats-file "$tmp/files/s.%p" -- "$PY" -c 'import subprocess, sys; subprocess.run([sys.executable, "-c", "pass"], check=True)'; then
  n=0
  for f in "$tmp/files"/s.*; do
    [ -e "$f" ] || continue
    grep -qx "$header: pid ${f##*.} (python3)" "$f" && n=$((n + 1))
  done
  if grep -qF "$header" "$err"; then bad "--stats-file: a table went to stderr"
  elif [ "$n" = 2 ]; then ok "--stats-file: a parent and its child write a table each, in a file named with its pid"
  else bad "--stats-file child: $n files with their own pid's table, expected 2: $(ls "$tmp/files")"; fi
fi
# --stats-json: one JSON document
if t "--stats-json" 0 "$run" --stats-json -- "$PY" -c pass; then
  if "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["heap"]["allocations"] > 0' "$err"; then
    ok "--stats-json -- python3 -c pass prints a JSON document"
  else bad "--stats-json: stderr is not the JSON document"; fi
fi
# without --stats: no table
if t "no --stats" 0 "$run" -- /bin/true; then
  if grep -qF "$header" "$err"; then bad "without --stats a table was printed"; else ok "no table without --stats"; fi
fi

# usage errors
if t "no program" 2 "$run" && has "$err" "walloc-run [--stats|--stats-json] [--stats-file PATH] [--verbose] [--lib PATH] [--] PROGRAM" "no program"; then
  if grep -qE '^(set |lib=|usage\(\)|while |case )' "$err"; then
    bad "no program: the usage text includes lines of the script itself"
  else
    ok "no program: exit 2 with usage"
  fi
fi
t "only --" 2 "$run" -- && ok "'--' and no program: exit 2"
t "only --stats" 2 "$run" --stats && ok "--stats and no program: exit 2"
t "unknown option" 2 "$run" --bogus -- /bin/true && has "$err" "--bogus" "unknown option" && ok "unknown option: exit 2, named"
t "--lib without a path" 2 "$run" --lib && ok "--lib without a path: exit 2"
t "--stats-file without a path" 2 "$run" --stats-file && ok "--stats-file without a path: exit 2"
t "--help" 0 "$run" --help && has "$out" "walloc-run [--stats|--stats-json]" "--help" && ok "--help: usage on stdout, exit 0"
if t "--lib /nonexistent" nonzero "$run" --lib /nonexistent -- true && has "$err" "/nonexistent" "--lib /nonexistent"; then
  ok "--lib /nonexistent: exit $rc with a message"
fi
t "missing program" nonzero "$run" -- "$tmp/no-such-program" && ok "missing program: exit $rc"

# the program's status, arguments, input and output pass through
t "exit 3" 3 "$run" -- sh -c 'exit 3' && ok "exit status 3 passed through"
t "exit 0" 0 "$run" -- sh -c 'exit 0' && ok "exit status 0 passed through"
# (through sh -c, so that bash's "Terminated" notice lands in the captured stderr)
t "signal" 143 sh -c '"$0" -- sh -c "kill -TERM \$\$"; exit $?' "$run" && ok "death by signal: exit $rc"
if t "arguments" 0 "$run" -- printf '%s|' 'a b' '' '--stats' '*' "it's"; then
  [ "$(cat "$out")" = "a b||--stats|*|it's|" ] && ok "arguments passed unchanged" || bad "arguments changed: $(cat "$out")"
fi
if printf 'line1\nline2\n' | "$run" -- cat >"$tmp/cat.out" 2>"$tmp/err" && [ "$(cat "$tmp/cat.out")" = "$(printf 'line1\nline2')" ]; then
  ok "stdin passed through"
else
  bad "stdin not passed through"
fi
# no options: the first argument is the program, even without --
t "program without --" 0 "$run" sh -c 'exit 0' && ok "program without --"

# the environment the program sees
if t "LD_PRELOAD" 0 "$run" -- sh -c 'printf %s "$LD_PRELOAD"'; then
  p=$(cat "$out")
  [ "$(readlink -f "${p%%:*}")" = "$lib" ] && ok "LD_PRELOAD names this build's library" ||
    bad "LD_PRELOAD is '$p', expected $lib"
fi
if t "LD_PRELOAD kept" 0 env LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 "$run" -- sh -c 'printf %s "$LD_PRELOAD"'; then
  p=$(cat "$out")
  case $p in
    *libwalloc*:/lib/x86_64-linux-gnu/libm.so.6) ok "an existing LD_PRELOAD is kept, after walloc" ;;
    *) bad "with an existing LD_PRELOAD, got '$p'" ;;
  esac
fi
# (python, not sh: dash ends with _exit, which runs no destructor, so no table)
if t "--lib PATH" 0 "$run" --lib "$lib" --stats -- "$PY" -c 'import os, sys; sys.stdout.write(os.environ["LD_PRELOAD"])' &&
   has "$err" "$header" "--lib PATH"; then
  [ "$(cat "$out")" = "$lib" ] && ok "--lib PATH preloads PATH" || bad "--lib: LD_PRELOAD is '$(cat "$out")'"
fi
if t "--verbose" 0 "$run" --verbose -- sh -c 'printf %s "$WALLOC_VERBOSE"'; then
  [ "$(cat "$out")" = 1 ] && ok "--verbose sets WALLOC_VERBOSE=1" || bad "--verbose: WALLOC_VERBOSE is '$(cat "$out")'"
fi
if t "--stats env" 0 "$run" --stats -- sh -c 'printf %s "$WALLOC_STATS"'; then
  [ "$(cat "$out")" = 1 ] && ok "--stats sets WALLOC_STATS=1" || bad "--stats: WALLOC_STATS is '$(cat "$out")'"
fi
# the preloaded program really runs on walloc
if t "walloc_owns" 0 "$run" -- "$PY" -c '
import ctypes
libc = ctypes.CDLL(None)
owns = libc.walloc_owns
owns.restype = ctypes.c_bool
owns.argtypes = [ctypes.c_void_p]
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(1000)
print(bool(owns(p)))
'; then
  [ "$(cat "$out")" = True ] && ok "malloc in the program returns walloc blocks" || bad "walloc_owns(malloc(1000)) is $(cat "$out")"
fi

[ "$failed" = 0 ] && echo "walloc-run: all checks passed"
exit "$failed"
