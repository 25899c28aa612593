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
"""
import argparse
import os
import time

from preload import add_common_args, allocators, context_lines, emit, interleaved, run


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repo)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    exe = os.path.join(args.build, "benchmarks", "bench-lifetimes")
    walloc = os.path.abspath(args.walloc or os.path.join(args.build, "libwalloc.so"))
    allocs = allocators(walloc)
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
