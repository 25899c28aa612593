#!/usr/bin/env python3
"""run_lifetimes.py: the lifetime paths (tier, frame, scope, ring, context, pool) against malloc + free, in one run.

Runs bench-lifetimes' walloc modes (linked statically): `tier` (entity tier,
reset once per round), `frame`, `scope`, `ring`, `context` (a context
its thread alone allocates from), `context-shared` (one another thread
allocated from once, so every allocation takes its lock) (every object
touched through its handle or pointer, first and last byte written and
checked) and `pool`, and `malloc-frame` / `malloc-pool` (the same work with
malloc and free) under glibc, walloc, jemalloc, mimalloc and tcmalloc
(preloaded, where installed), interleaved and rotated over repetitions, for
each frame size --n, one thread and every thread of the machine. Prints the
median ns per object with how many times faster each path is than the tier
path, walloc's own malloc + free and glibc's, and issue 16's goal for scopes
and contexts (within 1.5x of the tier path).

usage: python3 benchmarks/run_lifetimes.py [--build build] [--walloc PATH] [--reps 5]
                                           [--n 4096 50000] [--objects 4000000] [--size 64]
                                           [--json OUT.json]
       python3 benchmarks/run_lifetimes.py --callgrind [--baseline-build OLD] [--n 4096 50000]

--callgrind counts instructions per object instead of timing, as
run_tiers.py --callgrind does: the tier, frame, scope, ring, context and
pool modes of this build (and of --baseline-build), and malloc-frame under
each allocator, one thread.
"""
import argparse
import os

from preload import (add_callgrind_args, add_common_args, add_frame_args, allocators, callgrind_lines,
                     callgrind_rows, emit, path_report, path_table, timed_paths, write_json)

PATHS = [("tier", "walloc tier: allocate + resolve + reset"), ("frame", "walloc frame: frame_alloc + frame_end"),
         ("scope", "walloc scope: allocate + resolve + leave"), ("ring", "walloc ring: allocate + resolve + retire"),
         ("context", "walloc context: allocate + resolve + reset"),
         ("context-shared", "walloc shared context (locked): allocate + resolve + reset")]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repo)
    add_frame_args(ap)
    ap.add_argument("--size", type=int, default=64, help="the pool's object size")
    add_callgrind_args(ap)
    args = ap.parse_args()
    walloc = os.path.abspath(args.walloc or os.path.join(args.build, "libwalloc.so"))
    allocs = allocators(walloc)

    def exe(build):
        return os.path.join(build, "benchmarks", "bench-lifetimes")

    if args.callgrind:
        builds = [("", args.build)] + ([(", baseline build", args.baseline_build)] if args.baseline_build else [])
        paths = [(label, mode) for mode, label in PATHS] + [("walloc pool", "pool")]
        mallocs = [(f"{a} malloc-frame", "malloc-frame", lib) for a, lib in allocs.items()]
        rows = callgrind_rows(paths, mallocs, builds, args.n, args.cg_frames, lambda build, mode, n: lambda rounds: [
            exe(build), mode, str(n), str(rounds), "1", str(args.size)])
        emit(callgrind_lines(args.cg_frames, f"rounds of N objects (16-256 bytes; pool: {args.size} bytes)", rows),
             args.out)
        return
    variants = ([mode for mode, _ in PATHS] + ["pool", "scope-enter"] +
                [f"{m}/{a}" for m in ("malloc-frame", "malloc-pool") for a in allocs])
    results, head = timed_paths(args, exe(args.build), variants, allocs, [str(args.size)])
    bases = {"tier path": "tier", "walloc malloc + free": "malloc-frame/walloc",
             "glibc malloc + free": "malloc-frame/glibc"}
    rows = [(label, mode, bases) for mode, label in PATHS]
    rows += [(f"{a} malloc + free", f"malloc-frame/{a}", bases) for a in allocs]
    pool_bases = {"walloc malloc + free": "malloc-pool/walloc", "glibc malloc + free": "malloc-pool/glibc"}
    pool_rows = [("walloc pool: pool_alloc + pool_free", "pool", pool_bases)]
    pool_rows += [(f"{a} malloc + free", f"malloc-pool/{a}", pool_bases) for a in allocs]
    what = (f"rounds of N objects of 16-256 bytes per thread, each object's first and last byte written when "
            f"allocated and checked before the round's release; {args.objects} objects per thread and run; "
            f"median of {args.reps} interleaved runs")
    lines = path_report(head, what, results, rows, bases, "allocation, resolve and touch, and its share of the "
                        "release")
    r = results.get((4096, 1))
    if r:
        lines += ["", "Issue 16's goal, 4,096 objects, one thread: scope and context within 1.5x of the tier path"]
        lines += [f"- {mode} / tier: {r[mode] / r['tier']:.2f} (goal: at most 1.5)" for mode in ("scope", "context")]
    lines += ["", f"Pools: N objects of {args.size} bytes from one pool shared by all threads, all allocated "
              "then all freed, against malloc + free of the same objects:", ""]
    lines += path_table(results, pool_rows, list(pool_bases))
    lines += [""] + [f"- scope enter + one 64-byte allocation + leave, N={n}, {t} thread(s): "
                     f"{r['scope-enter']:.2f} ns" for (n, t), r in results.items()]
    emit(lines, args.out)
    write_json(args.json, "run_lifetimes.py", what, results, rows)


if __name__ == "__main__":
    main()
