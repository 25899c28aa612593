#!/usr/bin/env python3
"""run_assets.py: asset loads from a local HTTP server, walloc against plain libcurl.

Starts tests/asset_server.py on 127.0.0.1, then runs `bench-assets` in its
three modes (walloc_load_assets_batch with --connections transfers,
walloc_load_asset one by one, a sequential libcurl easy loop into malloc'd
buffers grown with realloc), interleaved over repetitions, each loading the
same --count assets of 4 KiB to 4 MiB (log-uniform, fixed seed), and prints
a markdown table of the medians. The Python server serves every mode; it
may be the bottleneck, which the table's note says.

With --bodies it measures instead what one big body costs (bench-assets
body): each of --sizes loaded alone into the default tiers of a fresh
process, with a Content-Length (data/) and without one (chunked/), as a
binary asset (scene tier) and as a texture (render tier): bytes copied after
receiving, the tier memory taken (its peak), what the tier then holds on
free lists, and the process's peak RSS added by the load. --baseline names a
second build to compare with, for example one of the commit before the
spool, with this bench-assets.c copied into it (docs/assets.md shows how).

usage: python3 benchmarks/run_assets.py [--build build] [--reps 3] [--count 1000] [--connections 8]
       python3 benchmarks/run_assets.py --bodies [--sizes 1M,16M,200M] [--baseline DIR] [--reps 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

from preload import context_lines, emit


def mib(n):
    return f"{n / (1 << 20):.1f} MiB"


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def run_bodies(args, base, lines):
    """One row per size, tier and loader: what a big body costs."""
    exe = os.path.join(args.build, "benchmarks", "bench-assets")
    builds = [("now", exe)]
    if args.baseline:
        builds.insert(0, ("before", os.path.join(args.baseline, "benchmarks", "bench-assets")))
    lines.append("| body | tier | build | result | time | bytes copied | tier memory taken | "
                 "left on free lists | tier blocks | peak RSS added |")
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        for kind in ["binary", "texture"]:
            tier = "scene" if kind == "binary" else "render"
            cases = [("data", "now", exe, "Content-Length")] + \
                    [("chunked", name, path, "chunked") for name, path in builds]
            for route, name, path, label in cases:
                runs = []
                for _ in range(args.reps):
                    out = subprocess.run([path, "body", base, route, str(size), kind],
                                         capture_output=True, text=True, timeout=900)
                    if out.returncode != 0:
                        sys.exit(f"FAILED: {path} body {route} {size}\n{out.stdout}{out.stderr}")
                    runs.append(dict(re.findall(r"(\w+)=([\w.]+)", out.stdout)))
                r = runs[0]
                secs = statistics.median(float(x["seconds"]) for x in runs)
                rss = int(r["peak_rss_added_kib"]) * 1024
                lines.append(f"| {mib(size)}, {label} | {tier} | {name} | {r['status']} | {secs * 1000:.0f} ms | "
                             f"{mib(int(r['copied']))} | {mib(int(r['tier_peak']))} | "
                             f"{mib(int(r['tier_free']))} | {r['tier_allocations']} | {mib(rss)} |")
    lines.append("")
    lines.append("Each row is a fresh process with the default tiers (1 GiB: scene 30 %, render 50 %) "
                 "and libcurl opened by a first small load; median time of the runs, the rest (what the "
                 "load added) from the first. Bytes copied: moves after the write out of libcurl's buffer. "
                 "Tier memory taken: growth of the tier's peak, memory the tier keeps for its size classes; "
                 "left on free lists: blocks the load freed there, of sizes a later request may not use. "
                 "Tier blocks: allocations the load made. Peak RSS added: the process's peak RSS after the "
                 "load over its RSS before it.")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--out", default=None)
    ap.add_argument("--bodies", action="store_true", help="measure big bodies instead (bench-assets body)")
    ap.add_argument("--sizes", default="1M,16M,200M")
    ap.add_argument("--baseline", default=None, help="a second build to compare with (--bodies)")
    args = ap.parse_args()
    exe = os.path.join(args.build, "benchmarks", "bench-assets")
    if not os.path.exists(exe):
        sys.exit(f"{exe} is missing: build with libcurl and -Dbenchmarks=true")
    server = subprocess.Popen([sys.executable, os.path.join(repo, "tests", "asset_server.py")],
                              stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    base = f"http://127.0.0.1:{port}/"
    load_before = os.getloadavg()[0]
    t_start = time.time()
    if args.bodies:
        rows = []
        try:
            run_bodies(args, base, rows)
        finally:
            server.terminate()
            server.wait()
        emit(context_lines("run_assets.py", t_start, load_before) + [""] + rows, args.out)
        return
    modes = ["batch", "single", "curl"]
    samples = {m: [] for m in modes}
    try:
        for rep in range(args.reps):
            k = rep % len(modes)
            for m in modes[k:] + modes[:k]:
                out = subprocess.run([exe, m, base, str(args.count), str(args.connections)],
                                     capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    sys.exit(f"FAILED: {m}\n{out.stdout}{out.stderr}")
                samples[m].append(dict(re.findall(r"(\w+)=([\w.]+)", out.stdout)))
    finally:
        server.terminate()
        server.wait()
    first = samples["batch"][0]
    lines = context_lines("run_assets.py", t_start, load_before)
    lines.append(f"- {first['assets']} assets, {int(first['bytes']) / 1e6:.1f} MB in all, 4 KiB to 4 MiB "
                 f"(log-uniform, fixed seed), from tests/asset_server.py (Python, HTTP/1.1 keep-alive) "
                 f"on 127.0.0.1; median of {args.reps} interleaved runs")
    lines.append("")
    lines.append("| loader | wall time | throughput | bytes copied per byte received |")
    lines.append("|---|---:|---:|---:|")
    names = {"batch": f"walloc_load_assets_batch ({args.connections} connections)",
             "single": "walloc_load_asset, one by one",
             "curl": "plain libcurl easy loop into malloc + realloc buffers"}
    for m in modes:
        secs = statistics.median(float(s["seconds"]) for s in samples[m])
        mbs = statistics.median(float(s["mb_per_s"]) for s in samples[m])
        copied = "n/a (realloc)" if m == "curl" else f"{float(samples[m][0]['copied_per_received']):.4f}"
        lines.append(f"| {names[m]} | {secs:.2f} s | {mbs:.0f} MB/s | {copied} |")
    lines.append("")
    lines.append("Every byte is written once into tier memory by the write callback (the copy out of "
                 "libcurl's receive buffer); 'bytes copied' counts only the moves after that (growing "
                 "blocks when no Content-Length came). The server is single-process Python: its rate "
                 "caps all three loaders.")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
