#!/bin/bash
# hot-text.sh: a preloaded libwalloc.so keeps the code every process runs in
# one place, so a short program maps one window of it, not all of it.
#
# The kernel maps a file's pages around each page fault (fault-around: 16
# pages, 64 KiB, from the faulting page's 64 KiB-aligned window, clamped to the
# mapping), so the memory a library's code costs a process is the windows
# its code touches, not the bytes it runs. lib/hot-text.ld puts the malloc
# path (the preload entry points, the heap layer, and the platform and core
# files it calls) with the constructors and destructors at the start of the
# text; the engine layers (tiers, lifetimes, assets, SIMD copies) follow. The
# first fault (DT_INIT, the first page of the text) then maps the whole hot
# part. Without the script every process held the whole 136 KiB of text.
#
# Checks: (1) the hot section exists and ends inside the first 64 KiB of the
# text mapping; (2) malloc, free, operator new, the page and segment code and
# the exit path are in it; (3) a preloaded cat and a bash that forks a
# subshell hold at most 64 KiB of libwalloc.so's code.
#   hot-text.sh LIBWALLOC check|'skip: REASON'
# (meson passes the reason when the build is not what the check is for: a
# linker other than GNU ld, no optimization, sanitizers or debug checks,
# whose code does not fit in one window)
set -euo pipefail
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
[ $# -eq 2 ] || { echo "usage: $0 LIBWALLOC check|'skip: REASON'" >&2; exit 1; }
lib=$1
[ "$2" = check ] || { echo "SKIPPED (${2#skip: })"; exit 77; }
[ -f "$lib" ] || { echo "FAIL: $lib not found (build it first)" >&2; exit 1; }
for tool in readelf nm; do
  command -v $tool >/dev/null || { echo "FAIL: $tool is missing: install the Debian package 'binutils'" >&2; exit 1; }
done
window=65536

# (1) the section and its end, from the start of the executable segment
read -r hot_addr hot_size < <(readelf -SW "$lib" | awk '$2 == ".text.walloc_hot" { print "0x" $4, "0x" $6 }') ||
  { echo "FAIL: $lib has no .text.walloc_hot section: linked without lib/hot-text.ld" >&2; exit 1; }
# the flags column reads "R E": two fields
text_start=$(readelf -lW "$lib" | awk '$1 == "LOAD" && / E / { print $3; exit }')
[ -n "$text_start" ] || { echo "FAIL: no executable LOAD segment in $lib" >&2; exit 1; }
hot_end=$(( hot_addr + hot_size ))
echo "hot code: $(( hot_size )) bytes, ending $(( hot_end - text_start )) bytes into the text (window $window)"
(( hot_end - text_start <= window )) ||
  { echo "FAIL: the hot code ends $(( hot_end - text_start )) bytes into the text, past one fault-around window ($window)" >&2; exit 1; }

# (2) the functions a preloaded process runs lie inside it
nm "$lib" > /tmp/hot-text.$$ ; trap 'rm -f /tmp/hot-text.$$' EXIT
for f in malloc free calloc realloc _Znwm _ZdlPv wl_page_find wl_segment_page_alloc wl_malloc_slow \
         wl_heap_thread_done wl_locks_fork_child wl_os_getenv _fini pthread_atfork; do
  a=$(awk -v f="$f" '$3 == f { print "0x" $1; exit }' /tmp/hot-text.$$)
  [ -n "$a" ] || { echo "FAIL: $f not found in $lib (renamed? update this list)" >&2; exit 1; }
  (( a >= hot_addr && a < hot_end )) ||
    { echo "FAIL: $f is at $a, outside the hot code ($hot_addr + $hot_size): add its file to lib/hot-text.ld" >&2; exit 1; }
done

# (3) what short processes map of libwalloc.so's code
text_rss() { awk -v lib="$(basename "$(readlink -f "$lib")")" '
  /^[0-9a-f]+-[0-9a-f]+ / { x = ($2 ~ /x/ && $6 ~ lib) }
  x && /^Rss:/ { print $2; exit }'; }
cat_kb=$(LD_PRELOAD=$lib cat /proc/self/smaps | text_rss)
bash_kb=$(LD_PRELOAD=$lib bash -c 'x=$(echo forked); cat /proc/$$/smaps' | text_rss)
echo "libwalloc.so code resident: cat ${cat_kb} KiB, bash after a subshell ${bash_kb} KiB"
for kb in "$cat_kb" "$bash_kb"; do
  [ -n "$kb" ] || { echo "FAIL: no executable mapping of $lib found in /proc/self/smaps" >&2; exit 1; }
  (( kb <= window / 1024 )) ||
    { echo "FAIL: a short process maps ${kb} KiB of libwalloc.so's code, more than one window ($(( window / 1024 )) KiB)" >&2; exit 1; }
done
echo "ok"
