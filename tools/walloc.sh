#!/usr/bin/env bash
# walloc.sh: everything a fresh Debian 12 machine needs to build, try and test
# walloc. Every subcommand first installs what is missing (as root), so each
# works on its own:
#
#   tools/walloc.sh demo    build, then run sqlite3 on a real workload under
#                           walloc and show walloc's statistics (the main job)
#   tools/walloc.sh test    every test: release build (unit, stress, fuzzers,
#                           real programs, symbols, header), valgrind, debug
#                           checks, ASan+UBSan (with libFuzzer) and TSan
#                           builds, and the WebAssembly build, single-threaded
#                           and pthreads (Emscripten, tests under node, the
#                           demo page in headless Chromium). What CI runs.
#   tools/walloc.sh bench   the benchmark driver against glibc, jemalloc,
#                           mimalloc and tcmalloc (not part of CI)
#   tools/walloc.sh deps [bench]   only install what is missing
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Debian packages: what building and testing need, and what benchmarks add.
build_packages=(meson ninja-build pkg-config check gcc g++ clang libclang-rt-14-dev
                valgrind binutils python3 sqlite3 git redis-server redis-tools coreutils openssl
                libcurl4-openssl-dev)
# The WebAssembly build (test only): emcc, em++, emar and node (about 800 MB),
# and chromium for the demo page's browser test (driven by playwright-core from
# npm, pinned in wasm/package-lock.json).
wasm_packages=(emscripten nodejs chromium)
bench_packages=(libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev hyperfine time)

log() { printf '\n== %s\n' "$*"; }

install_missing() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

jobs=$(nproc 2>/dev/null || echo 2)

# setup DIR [meson options...]: configure once, reconfigure when options change.
setup() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir" -j "$jobs" >/dev/null
}

failures=()
run_tests() { # name dir meson-test-args...
  local name=$1 dir=$2; shift 2
  log "tests: $name"
  local status=0 skipped testlog stamp setup="" arg prev=""
  # this run's log: testlog.txt, or testlog-<setup>.txt under --setup; none
  # when no test matched (then an older one must not be read)
  for arg in "$@"; do [ "$prev" = --setup ] && setup=$arg; prev=$arg; done
  testlog="$dir/meson-logs/testlog${setup:+-$setup}.txt"
  stamp=$(mktemp)
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@" || status=$?
  [ "$testlog" -nt "$stamp" ] || testlog=/dev/null
  rm -f "$stamp"
  # a skipped test says why on its first line of output: show it here, where
  # it is seen, not only in the log
  skipped=$(grep -h -E '^(skipped|SKIPPED)[: (]' "$testlog" | sort | uniq -c || true)
  [ -z "$skipped" ] || { echo "-- $name: skipped, as the tests said:"; printf '%s\n' "$skipped"; }
  if [ "$status" -eq 0 ]; then
    echo "-- $name: passed"
  else
    echo "-- $name: FAILED"
    # meson shows a failing test's last 100 lines, which a flood of expected
    # warnings can fill: Check's failure lines and the sanitizers' reports
    # from the log, whatever came before them
    grep -h -E ':[FE]:|ERROR: (Address|Thread|Leak)Sanitizer|SUMMARY: |runtime error:|the child (hung|died)' \
      "$testlog" | head -40 || true
    failures+=("$name")
  fi
}

# fuzz_counts DIR [libfuzzer]: print how many inputs each fuzzer of DIR's
# last `meson test` ran (its "fuzz summary:" line: meson shows a passing
# test's output only in its log), and fail when a fuzzer has no such line or,
# with `libfuzzer`, when one ran the standalone driver instead of libFuzzer
# (that build's clang has libFuzzer: the probe in tests/meson.build must find it).
fuzz_counts() {
  local dir=$1 want=${2:-} lines expected got
  lines=$(grep -h '^fuzz summary: ' "$dir/meson-logs/testlog.txt" || true)
  expected=$(meson test -C "$dir" --list --suite fuzz 2>/dev/null | grep -c ' / fuzz-' || true)
  got=$(grep -c . <<<"$lines" || true)
  log "fuzzers in $dir: inputs run"
  [ -z "$lines" ] || printf '%s\n' "$lines"
  if [ "$got" -ne "$expected" ] || { [ "$want" = libfuzzer ] && grep -q 'standalone driver' <<<"$lines"; }; then
    echo "-- fuzz counts ($dir): FAILED ($got summary lines for $expected fuzzers${want:+, all from libFuzzer})"
    failures+=("fuzz counts ($dir)")
  fi
}

cmd_demo() {
  install_missing "${build_packages[@]}"
  log "building walloc (release) in build/"
  setup build --buildtype=release
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "the main job: sqlite3 building and querying a 300,000-row database, under walloc"
  cat > "$work/job.sql" <<'SQL'
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, item TEXT, qty INT, price REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
INSERT INTO orders(customer, item, qty, price)
  SELECT 'customer-' || (i * 7919 % 5000), 'item-' || (i * 104729 % 1200), 1 + i % 17, (i % 1000) / 10.0 FROM n;
CREATE INDEX by_customer ON orders(customer);
CREATE INDEX by_item ON orders(item, qty);
SELECT count(*) AS orders, count(DISTINCT customer) AS customers, round(sum(qty * price), 2) AS revenue FROM orders;
SELECT item, sum(qty) AS units FROM orders GROUP BY item ORDER BY units DESC, item LIMIT 3;
SELECT customer, group_concat(item, ',') IS NOT NULL, count(*) FROM orders GROUP BY customer ORDER BY 3 DESC, 1 LIMIT 3;
SQL
  build/walloc-run --stats -- sqlite3 "$work/demo.db" < "$work/job.sql"
  log "done: any program runs the same way, e.g. build/walloc-run --stats -- python3 script.py"
}

cmd_test() {
  install_missing "${build_packages[@]}" "${wasm_packages[@]}"
  local t0=$SECONDS

  log "release build (build/)"
  setup build --buildtype=release -Ddebug_checks=false -Doverride=true
  run_tests "release: unit, threads, stress, fuzzers (standalone driver), programs, symbols, header" build
  fuzz_counts build

  run_tests "valgrind (memcheck) on the walloc_ API suites (assets too: about 15 s)" build --setup valgrind

  # Built without libcurl, so both builds of the asset layer are tested:
  # here the load calls must answer WALLOC_ERR_UNSUPPORTED.
  log "debug-checks build without libcurl (build-debug/)"
  setup build-debug --buildtype=debug -Ddebug_checks=true -Doverride=true -Dbenchmarks=false -Dcurl=disabled
  run_tests "debug checks (no libcurl): unit, stress, death tests, assets, fuzzers, programs" build-debug
  fuzz_counts build-debug

  log "ASan+UBSan build (build-asan/, clang)"
  CC=clang CXX=clang++ setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false -Ddebug_checks=true -Doverride=false -Dbenchmarks=false
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_tests "ASan+UBSan: threads, stress, misuse, tiers, lifetimes, memcpy, fork, stats" build-asan \
    --suite threads --suite stress --suite misuse --suite tiers --suite memcpy \
    --suite lifetimes --suite frame --suite pool --suite fork --suite stats
  # The fuzzers, libFuzzer's here: 40 s each on its committed corpus
  # (tests/fuzz/corpus/) and what earlier runs of this tree found.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_tests "ASan+UBSan: libFuzzer" build-asan --suite fuzz
  fuzz_counts build-asan libfuzzer
  # Assets with LeakSanitizer on: a failed load must leave no curl handle behind.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_tests "ASan+UBSan+LSan: assets" build-asan --suite assets

  log "TSan build (build-tsan/, clang)"
  CC=clang CXX=clang++ setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread \
    -Db_lundef=false -Doverride=false -Dbenchmarks=false
  TSAN_OPTIONS=halt_on_error=1 run_tests "TSan: threads, stress, misuse, huge, tiers, lifetimes, assets, fork" build-tsan \
    --suite threads --suite huge --suite stress --suite misuse --suite tiers --suite lifetimes --suite frame --suite pool --suite assets \
    --suite fork

  # Emscripten's emcc runs node tools that need acorn, which Debian installs
  # under /usr/share/nodejs: without NODE_PATH optimized wasm builds fail.
  log "WebAssembly build (build-wasm/, Emscripten, tests under node)"
  # -Dtests=enabled: the Check unit suites too, built against tests/wasm_check
  # (our own Check-compatible runner: Debian's libcheck is native only) and
  # run under node. Explicit, so that a build-wasm/ configured earlier with
  # -Dtests=disabled is switched over by --reconfigure.
  NODE_PATH=/usr/share/nodejs setup build-wasm --cross-file wasm/emscripten.ini -Dtests=enabled
  # The browser test's playwright-core, into wasm/node_modules (git-ignored).
  # Debian's nodejs comes without npm (NodeSource's has it).
  if [ ! -d wasm/node_modules/playwright-core ]; then
    command -v npm >/dev/null || install_missing npm
    log "npm ci --prefix wasm (playwright-core for the browser test)"
    if ! npm ci --prefix wasm --no-audit --no-fund; then
      echo "-- npm ci: FAILED (browser_demo will be skipped)"
      failures+=("npm ci --prefix wasm")
    fi
  fi
  NODE_PATH=/usr/share/nodejs run_tests "wasm: Check unit suites under node (sizeclass, memcpy with simd128, malloc, tiers, lifetimes, frame, pool), walloc replaces dlmalloc (malloc family, runtime, tiers, growth past 2 GiB, EXIT_RUNTIME, no dlmalloc symbol), JavaScript API under node, demo page in headless Chromium" build-wasm

  # The pthreads variant (shared memory): the same tests plus 8 threads
  # freeing each other's blocks (about 30 s to build, 10 s to test).
  log "WebAssembly pthreads build (build-wasm-mt/)"
  NODE_PATH=/usr/share/nodejs setup build-wasm-mt --cross-file wasm/emscripten.ini -Dtests=enabled -Dwasm_pthreads=true
  NODE_PATH=/usr/share/nodejs run_tests "wasm pthreads: the same, and 8 threads with cross-thread frees" build-wasm-mt

  log "summary ($((SECONDS - t0)) s)"
  if [ ${#failures[@]} -ne 0 ]; then
    printf 'FAILED: %s\n' "${failures[@]}"
    exit 1
  fi
  echo "all test runs passed"
}

cmd_bench() {
  install_missing "${build_packages[@]}" "${bench_packages[@]}"
  setup build --buildtype=release
  python3 benchmarks/run.py --build build --walloc "$repo/build/libwalloc.so" "$@"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  test) shift; cmd_test "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  deps) shift; install_missing "${build_packages[@]}"; [ "${1:-}" = bench ] && install_missing "${bench_packages[@]}"; true ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
