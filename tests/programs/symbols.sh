#!/bin/bash
# symbols.sh: what libwalloc.so exports. Every defined dynamic symbol must be
# walloc's API (walloc_*), the C library's allocation family or a C++
# operator new/delete; with the malloc override on, none of the family may be
# missing; with it off, none of the family may be exported. It may need no
# library but the C library: a preloaded libwalloc.so is mapped into every
# process, so each dependency is paid for at every program start (libcurl,
# which pulled in thirty, is opened on the first asset load instead).
#   symbols.sh LIBWALLOC [OVERRIDE(true|false)]
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
[ $# -ge 1 ] || { echo "usage: $0 LIBWALLOC [true|false]" >&2; exit 1; }
lib=$1
override=${2:-true}
[ -f "$lib" ] || { echo "FAIL: $lib not found (build it first)" >&2; exit 1; }
NM=${NM:-nm}
command -v "$NM" >/dev/null || { echo "FAIL: nm is missing: install the Debian package 'binutils'" >&2; exit 1; }

family="malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc
  malloc_usable_size malloc_trim mallopt mallinfo mallinfo2 malloc_stats malloc_info __libc_malloc __libc_free
  __libc_calloc __libc_realloc __libc_memalign __libc_valloc __libc_pvalloc __posix_memalign"
# every operator new and delete variant (C++17), mangled for 64-bit size_t
operators="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t
  _ZnwmSt11align_val_t _ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
  _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
  _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
  _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"
# the only exported data: the const pointer to the map walloc.h's inline
# handle check reads (docs/tiers.md, "Resolving a handle") and the
# thread-local records its inline allocation bumps in
data="walloc_tiers_ walloc_thread_"
api="walloc_version walloc_malloc walloc_calloc walloc_realloc walloc_free walloc_aligned_alloc
  walloc_usable_size walloc_owns walloc_collect walloc_heap_stats_get walloc_stats_print walloc_stats_json"

# name and type of each defined dynamic symbol (version suffixes dropped)
syms=$("$NM" -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3, $2 }' | sort -u)
[ -n "$syms" ] || { echo "FAIL: $lib exports nothing" >&2; exit 1; }
echo "$lib exports $(echo "$syms" | wc -l) symbols"

failed=0
in_list() {
  local x
  for x in $2; do [ "$x" = "$1" ] && return 0; done
  return 1
}

while read -r name type; do
  if [[ $name == walloc_* ]] || [[ $name =~ ^_Z(nw|na|dl|da) ]]; then
    :
  elif in_list "$name" "$family"; then
    if [ "$override" != true ]; then
      echo "FAIL: $name is exported although the malloc override is off" >&2
      failed=1
    fi
  else
    echo "FAIL: unexpected exported symbol: $name (type $type)" >&2
    failed=1
  fi
  if [[ $name =~ ^_Z(nw|na|dl|da) ]] && [ "$override" != true ]; then
    echo "FAIL: $name is exported although the malloc override is off" >&2
    failed=1
  fi
  case $type in
    T|W|i) ;;
    D|R|B) in_list "$name" "$data" || { echo "FAIL: $name is exported as type '$type', not as a function" >&2; failed=1; } ;;
    *) echo "FAIL: $name is exported as type '$type', not as a function" >&2; failed=1 ;;
  esac
done <<<"$syms"

names=$(echo "$syms" | awk '{ print $1 }')
check_present() {
  local s
  for s in $2; do
    if ! grep -qx -- "$s" <<<"$names"; then
      echo "FAIL: $1 $s is not exported" >&2
      failed=1
    fi
  done
}
check_present "public API function" "$api"
check_present "public data" "$data"
if [ "$override" = true ]; then
  check_present "malloc family member" "$family"
  check_present "C++ operator" "$operators"
fi

# what the dynamic linker loads with it
READELF=${READELF:-readelf}
command -v "$READELF" >/dev/null || { echo "FAIL: readelf is missing: install the Debian package 'binutils'" >&2; exit 1; }
needed=$("$READELF" -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "FAIL: readelf shows no NEEDED entry in $lib (not even libc)" >&2; failed=1; }
for n in $needed; do
  case $n in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|ld-linux*) ;;
    *) echo "FAIL: $lib needs $n: every process it is preloaded into would load it" >&2; failed=1 ;;
  esac
done
echo "needs: $(echo $needed)"

# No constructor of libgcc's CPU model (__builtin_cpu_supports links it): it
# runs a dozen CPUID instructions at every process start, each a trap to the
# hypervisor on a virtual machine (lib/simd/copy.c reads CPUID lazily).
if "$NM" "$lib" 2>/dev/null | grep -q '__cpu_indicator_init'; then
  echo "FAIL: $lib links libgcc's __cpu_indicator_init: a CPUID constructor at every process start" >&2
  failed=1
fi

if [ "$failed" = 0 ]; then
  echo "ok: every export is allowed, only the C library is needed$([ "$override" = true ] && echo ", and the malloc family and C++ operators are complete")"
fi
exit "$failed"
