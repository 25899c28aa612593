#!/usr/bin/env python3
"""run_lifetimes.py: frame arenas and pools against malloc + free, in one run.

Runs `bench-lifetimes frame` and `bench-lifetimes pool` (walloc's lifetime
API, linked statically) and `bench-lifetimes malloc-frame` / `malloc-pool`
under glibc, walloc, jemalloc, mimalloc and tcmalloc (preloaded, where
installed), interleaved and rotated over repetitions, for one thread and
for every thread of the machine, and prints a markdown table of the median
ns per object with each figure's speed-up over glibc malloc + free.

usage: python3 benchmarks/run_lifetimes.py [--build build] [--walloc PATH] [--reps 5]
                                           [--n 10000] [--rounds 300] [--size 64]
       python3 benchmarks/run_lifetimes.py --callgrind [--baseline-build OLD] [--n 4096]

--callgrind counts instructions per object instead of timing, as
run_tiers.py --callgrind does: the frame, scope, ring, context and pool
modes of this build (and of --baseline-build), and malloc-frame under each
allocator, one thread.
"""
import argparse
import os
import re
import subprocess
import time

from preload import (add_callgrind_args, add_common_args, allocators, callgrind_lines, callgrind_per_object,
                     context_lines, emit, interleaved, run)

CG_MODES = ["frame", "scope", "ring", "context", "pool"]


def callgrind_report(args, allocs):
    """Instructions per object of each mode, and of malloc-frame under each allocator."""
    builds = [("", args.build)] + ([(", baseline build", args.baseline_build)] if args.baseline_build else [])

    def cmd(build, mode):
        exe = os.path.join(build, "benchmarks", "bench-lifetimes")
        return lambda rounds: [exe, mode, str(args.n), str(rounds), "1", str(args.size)]

    def modes_of(build):  # an earlier build may predate some modes: its usage line names those it has
        exe = os.path.join(build, "benchmarks", "bench-lifetimes")
        p = subprocess.run([exe], capture_output=True, text=True)
        return set(re.split(r"[|\s]", p.stdout + p.stderr))

    have = {build: modes_of(build) for _, build in builds}
    rows = [(f"walloc {mode}{tag}", build) + (callgrind_per_object(cmd(build, mode), args.cg_frames, args.n)
                                              if mode in have[build] else (None, "(no such mode in that build)"))
            for mode in CG_MODES for tag, build in builds]
    rows += [(f"{a} malloc-frame", lib or "(no preload)") +
             callgrind_per_object(cmd(args.build, "malloc-frame"), args.cg_frames, args.n, lib)
             for a, lib in allocs.items()]
    return callgrind_lines(args.cg_frames, args.n, f"rounds of {args.n} objects (16-256 bytes; pool: "
                           f"{args.size} bytes)", rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repo)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--size", type=int, default=64)
    add_callgrind_args(ap)
    args = ap.parse_args()
    exe = os.path.join(args.build, "benchmarks", "bench-lifetimes")
    walloc = os.path.abspath(args.walloc or os.path.join(args.build, "libwalloc.so"))
    allocs = allocators(walloc)
    if args.callgrind:
        emit(callgrind_report(args, allocs), args.out)
        return
    threads_all = os.cpu_count() or 2
    workloads = ["frame", "scope", "pool"]
    baseline = {"frame": "frame", "scope": "frame", "pool": "pool"}  # the malloc mode each compares with
    variants = ([(w, None) for w in workloads] + [("scope-enter", None)] +
                [(w, a) for w in ("frame", "pool") for a in allocs])
    load_before = os.getloadavg()[0]
    t_start = time.time()

    def run_one(v, threads):
        work, alloc = v
        mode = work if alloc is None else f"malloc-{baseline[work]}"
        cmd = [exe, mode, str(args.n), str(args.rounds), str(threads), str(args.size)]
        return run(cmd, allocs[alloc] if alloc else None)

    results = interleaved(variants, args.reps, (1, threads_all), run_one)
    lines = []
    lines += context_lines("run_lifetimes.py", t_start, load_before)
    lines.append(f"- work per thread: frame = {args.rounds} frames of {args.n} objects of 16-256 bytes; "
                 f"scope = the frame objects in one scope per round, each touched through its handle; "
                 f"pool = {args.rounds} rounds of {args.n} objects of {args.size} bytes from one shared pool "
                 f"(all allocated, then all freed); median of {args.reps} interleaved runs")
    lines.append("")
    lines.append("| workload | threads | walloc | " + " | ".join(f"{a} malloc + free" for a in allocs) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(allocs))
    for work in workloads:
        for threads, r in results.items():
            base = r[(baseline[work], "glibc")] if "glibc" in allocs else None
            def cell(ns):
                return f"{ns:.2f} ns ({base / ns:.1f}x)" if base else f"{ns:.2f} ns"
            name = {"frame": "walloc_frame_alloc + frame_end", "pool": "walloc_pool_alloc + pool_free",
                    "scope": "walloc_scope_allocate + handle_to_ptr + leave"}[work]
            cells = [cell(r[(baseline[work], a)]) for a in allocs]
            lines.append(f"| {work} | {threads} | {name}: {cell(r[(work, None)])} | " + " | ".join(cells) + " |")
    lines.append("")
    for threads, r in results.items():
        lines.append(f"- scope enter + one 64-byte allocation + leave, {threads} thread(s): "
                     f"{r[('scope-enter', None)]:.2f} ns")
    lines.append("")
    lines.append("ns per object (allocation plus its share of the release) of the slowest thread; "
                 "in brackets: speed relative to glibc malloc + free of the same objects (higher is faster).")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
