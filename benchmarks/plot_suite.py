#!/usr/bin/env python3
"""plot_suite.py: the suite's charts from a CSV of run_suite.py.

usage: python3 benchmarks/plot_suite.py SUITE.csv -o DIR

Writes DIR/suite-time.png and DIR/suite-rss.png (per workload, each
allocator's ratio to mimalloc, the geometric mean over the thread counts:
grouped bars) and DIR/suite-scaling.png (median wall time against threads,
one small panel per workload). The medians are run_suite.points(), the same
the report shows. Needs matplotlib; when the python3 running it lacks it (a
pyenv one, say) it runs itself again under /usr/bin/python3.
"""
import argparse
import os
import sys

from preload import pyplot
from run import geomean
from run_suite import BASE, WORKLOADS, order_of, points, read_csv

plt = pyplot("plot_suite.py")

COLOURS = {"walloc": "#d98c1f", "glibc": "#7f7f7f", "jemalloc": "#2ca02c", "mimalloc": "#2a6fb0",
           "tcmalloc": "#9467bd"}


def ratio_chart(pts, allocs, workloads, metric, ylabel, title, path):
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(workloads)), 4.2))
    width = 0.8 / len(allocs)
    for i, a in enumerate(allocs):
        vals = []
        for w in workloads:
            rs = [p[a][metric] / p[BASE][metric] for (pw, _), p in pts.items()
                  if pw == w and p.get(a) and p.get(BASE) and p[BASE][metric] > 0]
            vals.append(geomean(rs) or 0)
        ax.bar([j + (i - (len(allocs) - 1) / 2) * width for j in range(len(workloads))], vals, width,
               label=a, color=COLOURS.get(a))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=len(allocs))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_chart(pts, allocs, workloads, path):
    cols = 4
    rows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, w in zip(axes.flat, workloads):
        threads = sorted(t for pw, t in pts if pw == w)
        for a in allocs:
            xs = [t for t in threads if pts[(w, t)].get(a)]
            ax.plot(xs, [pts[(w, t)][a]["time"] for t in xs], marker="o", markersize=3, label=a,
                    color=COLOURS.get(a))
        ax.set_xscale("log", base=2)
        ax.set_xticks(threads)
        ax.set_xticklabels([str(t) for t in threads], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylim(bottom=0)
        ax.set_title(w, fontsize=9)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("median wall time (s)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", fontsize=8)
    fig.suptitle("Wall time against threads (same total work at every count; lower is better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("-o", "--out", required=True, help="directory for the PNGs")
    args = ap.parse_args()
    _, rows = read_csv(args.csv)
    pts = points(rows)
    allocs = order_of(pts)
    workloads = [w for w in WORKLOADS if any(pw == w for pw, _ in pts)]
    os.makedirs(args.out, exist_ok=True)
    ratio_chart(pts, allocs, workloads, "time", f"wall time / {BASE}'s (geomean over threads)",
                f"Time ratio to {BASE} per workload (lower is faster)", os.path.join(args.out, "suite-time.png"))
    ratio_chart(pts, allocs, workloads, "mem", f"memory / {BASE}'s (geomean over threads)",
                f"Peak RSS ratio to {BASE} per workload (peak-rss: RSS after freeing; lower is leaner)",
                os.path.join(args.out, "suite-rss.png"))
    scaling_chart(pts, allocs, workloads, os.path.join(args.out, "suite-scaling.png"))
    print(f"wrote {args.out}/suite-time.png, suite-rss.png, suite-scaling.png", file=sys.stderr)


if __name__ == "__main__":
    main()
