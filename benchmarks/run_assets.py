#!/usr/bin/env python3
"""run_assets.py: asset loads from a local HTTP server, walloc against plain libcurl.

Starts tests/asset_server.py on 127.0.0.1, then runs `bench-assets` in its
three modes (walloc_load_assets_batch with --connections transfers,
walloc_load_asset one by one, a sequential libcurl easy loop into malloc'd
buffers grown with realloc), interleaved over repetitions, each loading the
same --count assets of 4 KiB to 4 MiB (log-uniform, fixed seed), and prints
a markdown table of the medians. The Python server serves every mode; it
may be the bottleneck, which the table's note says.

usage: python3 benchmarks/run_assets.py [--build build] [--reps 3] [--count 1000] [--connections 8]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

from preload import context_lines, emit


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--out", default=None)
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
