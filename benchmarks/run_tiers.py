#!/usr/bin/env python3
"""run_tiers.py: what a tier allocation costs a user, against malloc + free, in one run.

Runs `bench-frame tier` (walloc's entity tier, allocate, reset once per
frame), `bench-frame tier-resolve` (the same, each handle resolved with
walloc_handle_to_ptr and the object's first byte written: what an engine
pays), `bench-frame tier-unchecked` (the same through
walloc_handle_ptr_unchecked, for loops over blocks known live) and
`bench-frame malloc` (malloc, the same one-byte write, free at the
frame's end) under glibc, walloc, jemalloc, mimalloc and tcmalloc
(preloaded, where installed), interleaved and rotated over repetitions, for
each frame size --n, one thread and every thread of the machine. Prints the
median ns per object with how many times faster each path is than walloc's
own malloc + free and glibc's, and issue 16's goals for the tier path.

usage: python3 benchmarks/run_tiers.py [--build build] [--walloc PATH] [--reps 5]
                                        [--n 4096 50000] [--objects 4000000] [--json OUT.json]
       python3 benchmarks/run_tiers.py --callgrind [--baseline-build OLD] [--n 4096 50000]

--callgrind counts instructions instead of timing (repeatable where times on
a shared machine are not): per object = (I(2F) - I(F)) / (F * N) with
F = --cg-frames frames of N objects on one thread, so start-up and set-up
cancel out; for `bench-frame tier` and `tier-resolve` of this build (and of
--baseline-build, an earlier commit's build directory, for a change's cost)
and for `bench-frame malloc` under each allocator.

benchmarks/plot_engine.py draws the --json output as a bar chart.
"""
import argparse
import os

from preload import (add_callgrind_args, add_common_args, add_frame_args, allocators, callgrind_lines,
                     callgrind_rows, emit, path_report, timed_paths, write_json)

TIER = "walloc tier: allocate + reset"
RESOLVE = "walloc tier: allocate + resolve + write + reset"
UNCHECKED = "walloc tier: allocate + unchecked resolve + write + reset"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repo)
    add_frame_args(ap)
    add_callgrind_args(ap)
    args = ap.parse_args()
    walloc = os.path.abspath(args.walloc or os.path.join(args.build, "libwalloc.so"))
    allocs = allocators(walloc)

    def exe(build):
        return os.path.join(build, "benchmarks", "bench-frame")

    if args.callgrind:
        builds = [("", args.build)] + ([(", baseline build", args.baseline_build)] if args.baseline_build else [])
        mallocs = [(f"{a} malloc + write + free", "malloc", lib) for a, lib in allocs.items()]
        rows = callgrind_rows([(TIER, "tier"), (RESOLVE, "tier-resolve"), (UNCHECKED, "tier-unchecked")], mallocs, builds, args.n, args.cg_frames,
                              lambda build, mode, n: lambda frames: [exe(build), mode, str(n), str(frames), "1"])
        emit(callgrind_lines(args.cg_frames, "frames of N objects of 16-256 bytes", rows), args.out)
        return
    variants = ["tier", "tier-resolve", "tier-unchecked"] + [f"malloc/{a}" for a in allocs]
    results, head = timed_paths(args, exe(args.build), variants, allocs)
    bases = {"walloc malloc + free": "malloc/walloc", "glibc malloc + free": "malloc/glibc"}
    rows = [(TIER, "tier", bases), (RESOLVE, "tier-resolve", bases), (UNCHECKED, "tier-unchecked", bases)]
    rows += [(f"{a} malloc + write + free", f"malloc/{a}", bases) for a in allocs]
    what = (f"frames of N objects of 16-256 bytes per thread, {args.objects} objects per thread and run; "
            f"median of {args.reps} interleaved runs")
    lines = path_report(head, what, results, rows, bases, "allocation, resolve and write where named, and its "
                        "share of the frame's release")
    r = results.get((4096, 1))
    if r and "malloc/walloc" in r and "malloc/glibc" in r:
        lines += ["", "Issue 16's goals, 4,096 objects, one thread:",
                  f"- walloc malloc + free / tier + resolve + write: {r['malloc/walloc'] / r['tier-resolve']:.2f} "
                  f"(goal: at least 1.5)",
                  f"- glibc malloc + free / tier + resolve + write: {r['malloc/glibc'] / r['tier-resolve']:.2f} "
                  f"(goal: at least 6)"]
    emit(lines, args.out)
    write_json(args.json, "run_tiers.py", what, results, rows)


if __name__ == "__main__":
    main()
