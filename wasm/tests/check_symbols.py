#!/usr/bin/env python3
"""check_symbols.py: dlmalloc is gone from a module linked with walloc.

Usage: check_symbols.py WALLOC_NAMED.wasm DLMALLOC_NAMED.wasm [WALLOC.wasm DLMALLOC.wasm]

The *_NAMED modules are built with --profiling-funcs, so their name section
lists every function. The walloc one must name walloc's functions and none of
dlmalloc's; the dlmalloc one (the same program with Emscripten's default
allocator) must name dlmalloc's, which proves the check can see them. The
optional plain modules (built at -O2 without names) are only measured.
"""
import sys

DLMALLOC_NAMES = [b"dlmalloc", b"dlfree", b"dlrealloc", b"dlcalloc", b"dlmemalign",
                  b"dlposix_memalign", b"dlmalloc_usable_size"]
WALLOC_NAMES = [b"wl_malloc_slow", b"wl_osmem_map"]  # the core's OS door (wl_os_alloc is inlined into it)


def main():
    named = [open(p, "rb").read() for p in sys.argv[1:3]]
    walloc, dl = named
    failed = 0
    for name in DLMALLOC_NAMES:
        if name in walloc:
            print(f"FAIL: {name.decode()} is in {sys.argv[1]}")
            failed += 1
    for name in WALLOC_NAMES:
        if name not in walloc:
            print(f"FAIL: {name.decode()} is not in {sys.argv[1]} (no name section?)")
            failed += 1
    if b"dlmalloc" not in dl or b"dlfree" not in dl:
        print(f"FAIL: the control {sys.argv[2]} does not name dlmalloc: the check sees nothing")
        failed += 1
    if len(sys.argv) >= 5:
        sizes = [len(open(p, "rb").read()) for p in sys.argv[3:5]]
        print(f".wasm size, same program at -O2: walloc {sizes[0]} bytes, dlmalloc {sizes[1]} bytes "
              f"({sizes[0] - sizes[1]:+d})")
    print("dlmalloc absent, walloc present" if failed == 0 else f"{failed} failed checks")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
