#!/usr/bin/env python3
"""run_tiers.py: tier allocation + reset against malloc + free, in one run.

Runs `bench-frame tier` (walloc's entity tier, reset once per frame) and
`bench-frame malloc` under glibc, walloc, jemalloc, mimalloc and tcmalloc
(preloaded), interleaved and rotated over repetitions, for one thread and for
every thread of the machine, and prints the median ns per object with the
speed-up of the tier over each malloc+free.

usage: python3 benchmarks/run_tiers.py [--build build] [--walloc PATH]
                                        [--reps 5] [--n 10000] [--frames 300]
       python3 benchmarks/run_tiers.py --callgrind [--baseline-build OLD] [--n 4096]

--callgrind counts instructions instead of timing (repeatable where times on
a shared machine are not): per object = (I(2F) - I(F)) / (F * N) with
F = --cg-frames frames of N objects on one thread, so start-up and set-up
cancel out; for `bench-frame tier` of this build (and of --baseline-build,
an earlier commit's build directory, for a change's cost) and for `bench-frame
malloc` under each allocator.
"""
import argparse
import os
import time

from preload import (add_callgrind_args, add_common_args, allocators, callgrind_lines, callgrind_per_object,
                     context_lines, emit, interleaved, run)


def callgrind_report(args, allocs):
    """Instructions per object, tier and malloc+free, one thread."""
    builds = [("walloc tier alloc + reset", args.build)]
    if args.baseline_build:
        builds.append(("walloc tier alloc + reset, baseline build", args.baseline_build))

    def cmd(build, mode):
        exe = os.path.join(build, "benchmarks", "bench-frame")
        return lambda frames: [exe, mode, str(args.n), str(frames), "1"]

    rows = [(name, build) + callgrind_per_object(cmd(build, "tier"), args.cg_frames, args.n)
            for name, build in builds]
    rows += [(f"{a} malloc + free", lib or "(no preload)") +
             callgrind_per_object(cmd(args.build, "malloc"), args.cg_frames, args.n, lib) for a, lib in allocs.items()]
    return callgrind_lines(args.cg_frames, args.n, f"frames of {args.n} objects of 16-256 bytes", rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repo)
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--frames", type=int, default=200)
    add_callgrind_args(ap)
    args = ap.parse_args()
    exe = os.path.join(args.build, "benchmarks", "bench-frame")
    walloc = os.path.abspath(args.walloc or os.path.join(args.build, "libwalloc.so"))
    allocs = allocators(walloc)
    if args.callgrind:
        emit(callgrind_report(args, allocs), args.out)
        return
    threads_all = os.cpu_count() or 2
    variants = ["tier"] + [f"malloc/{a}" for a in allocs]
    load_before = os.getloadavg()[0]
    t_start = time.time()

    def run_one(v, threads):
        cmd = [exe, "tier" if v == "tier" else "malloc", str(args.n), str(args.frames), str(threads)]
        return run(cmd, None if v == "tier" else allocs[v.split("/")[1]])

    results = interleaved(variants, args.reps, (1, threads_all), run_one)
    lines = []
    lines += context_lines("run_tiers.py", t_start, load_before)
    lines.append(f"- work: {args.frames} frames of {args.n} objects of 16-256 bytes per thread; "
                 f"median of {args.reps} interleaved runs")
    lines.append("")
    header = "| threads | walloc tier alloc + reset | " + " | ".join(f"{a} malloc + free" for a in allocs) + " |"
    lines.append(header)
    lines.append("|---|---:|" + "---:|" * len(allocs))
    for threads, r in results.items():
        tier = r["tier"]
        cells = [f"{r['malloc/' + a]:.2f} ns ({r['malloc/' + a] / tier:.1f}x)" for a in allocs]
        lines.append(f"| {threads} | {tier:.2f} ns | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("ns per object (allocation plus its share of the frame's release); "
                 "in brackets: how many times the tier is faster.")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
