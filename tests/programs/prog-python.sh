#!/bin/bash
# python3 under walloc: a workload of big dicts, lists, strings, JSON, threads
# and subprocesses (workload.py), once with Python's own small-object
# allocator in front of malloc and once with every object from malloc.
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
walloc_test_init "$@"

PY=/usr/bin/python3   # not the python3 in PATH, which may be a pyenv shim
require_program "$PY" python3
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
unset PYTHONMALLOC PYTHONSTARTUP PYTHONPATH

cp "$here/workload.py" "$DATA/workload.py"

workload() {
  step pymalloc "$PY" "$DATA/workload.py"
  step malloc env PYTHONMALLOC=malloc "$PY" "$DATA/workload.py"
  step version "$PY" -c 'import sys; print(sys.version_info[:2])'
}

assert_walloc_serves "$PY" -c pass
run_and_compare
