#!/usr/bin/env python3
"""plot_engine.py: a bar chart of ns per object by path and allocator, from
the --json output of run_tiers.py and run_lifetimes.py (one panel each).

usage: python3 benchmarks/plot_engine.py TIERS.json [LIFETIMES.json ...] -o OUT.png
                                         [--n 4096] [--threads 1]

Draws the medians the drivers measured, nothing else: walloc's engine paths
in one colour, walloc's malloc + free in another, the other allocators'
malloc + free in grey, each bar labelled with its ns. Needs matplotlib
(Debian: apt-get install python3-matplotlib); when the python3 running it
lacks it (a pyenv one, say) it runs itself again under /usr/bin/python3.
"""
import argparse
import json
import sys

from preload import pyplot

plt = pyplot("plot_engine.py")


def colour(path):
    if path.startswith("walloc malloc"):
        return "#d98c1f"
    return "#2a6fb0" if path.startswith("walloc") else "#9a9a9a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--n", type=int, default=4096, help="objects per frame to draw")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    panels = []
    for path in args.json:
        with open(path) as f:
            run = json.load(f)
        rows = [r for r in run["results"] if r["n"] == args.n and r["threads"] == args.threads]
        if not rows:
            raise SystemExit(f"{path}: no results for N={args.n}, {args.threads} thread(s)")
        panels.append((run["driver"], rows))
    heights = [len(rows) for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.2 + 0.42 * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (driver, rows) in zip(axes[:, 0], panels):
        names = [r["path"] for r in rows][::-1]
        values = [r["ns"] for r in rows][::-1]
        bars = ax.barh(names, values, color=[colour(p) for p in names])
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=3, fontsize=8)
        ax.set_title(f"{driver}: {args.n} objects per frame, {args.threads} thread(s)", fontsize=9)
        ax.set_xlabel("ns per object (median; lower is faster)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_xlim(0, max(values) * 1.15)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
