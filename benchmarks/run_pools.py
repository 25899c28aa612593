#!/usr/bin/env python3
"""run_pools.py: what a second (and an eighth) thread on one pool costs per object, in one run.

Runs bench-lifetimes' `pool` mode (N objects of --size bytes from one pool
shared by all threads, all allocated then all freed each round),
`pool-private` (the same with a pool per thread: nothing shared) and
`malloc-pool` under this build's walloc (preloaded), for this build and, with
--baseline-build, another one (the same benchmark source built against the
older library), interleaved and rotated over repetitions, at 1, 2 and 8
threads on however many CPUs the machine has. Prints the median and the
fastest ns per object (of the slowest thread) and each median over the same
variant's one-thread median: with 2 threads on 2 CPUs, 1.00x means the second
thread costs nothing. pool-private says what the machine itself makes a
second thread pay (its load, the caches and memory the CPUs share).

usage: python3 benchmarks/run_pools.py [--build build] [--baseline-build OLD] [--reps 9]
                                       [--n 4096 50000] [--objects 2000000] [--size 64]
                                       [--threads 1 2 8] [--out FILE]
"""
import argparse
import os
import statistics
import sys
import time

from preload import context_lines, emit, run

MODES = ["pool", "pool-private", "malloc-pool"]


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--baseline-build", default=None, help="a build of the older library to run alongside")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--n", type=int, nargs="+", default=[4096, 50000], help="objects per thread and round")
    ap.add_argument("--objects", type=int, default=2000000, help="objects per thread and timed run")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2, 8])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    builds = [("this", args.build)] + ([("baseline", args.baseline_build)] if args.baseline_build else [])
    variants = [(b, m) for b, _ in builds for m in MODES]
    paths = dict(builds)
    for b, d in builds:
        if not os.path.exists(os.path.join(d, "benchmarks", "bench-lifetimes")):
            sys.exit(f"no {d}/benchmarks/bench-lifetimes: configure {d} with -Dbenchmarks=true")

    load_before = os.getloadavg()[0]
    t_start = time.time()
    samples = {}
    for n in args.n:
        rounds = max(2, args.objects // n)
        for threads in args.threads:
            for rep in range(args.reps):
                k = rep % len(variants)
                for b, m in variants[k:] + variants[:k]:
                    d = paths[b]
                    cmd = [os.path.join(d, "benchmarks", "bench-lifetimes"), m, str(n), str(rounds), str(threads),
                           str(args.size)]
                    preload = os.path.join(d, "libwalloc.so") if m == "malloc-pool" else None
                    samples.setdefault((n, threads, b, m), []).append(run(cmd, preload))

    lines = ["# Pools: one thread, two and eight on one pool", ""] + context_lines(
        os.path.basename(sys.argv[0]), t_start, load_before)
    lines += [f"- builds: " + ", ".join(f"{b} = {d}" for b, d in builds),
              f"- work: per thread and round, N objects of {args.size} bytes allocated (first and last byte "
              f"written), then checked and freed; {args.objects} objects per thread and run; "
              f"{args.reps} interleaved runs per variant", "",
              "| N | threads | build | mode | median ns | fastest ns | median / 1-thread median |",
              "|---:|---:|---|---|---:|---:|---:|"]
    for n in args.n:
        for threads in args.threads:
            for b, m in variants:
                s = samples[(n, threads, b, m)]
                one = statistics.median(samples[(n, args.threads[0], b, m)])
                lines.append(f"| {n} | {threads} | {b} | {m} | {statistics.median(s):.2f} | {min(s):.2f} | "
                             f"{statistics.median(s) / one:.2f}x |")
    lines += ["", "ns per object (allocation, write, check and free) of the slowest thread. Each thread does "
              "the same work, so with at most as many threads as CPUs equal ns means the threads cost "
              "nothing to each other; with more threads than CPUs each waits its turn (8 on 2 CPUs: 4x)."]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
