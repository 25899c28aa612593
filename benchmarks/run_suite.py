#!/usr/bin/env python3
"""run_suite.py: the general-heap suite under every allocator, with a thread sweep.

Runs each suite workload (bench-larson, bench-mstress, ... see WORKLOADS and
README.md) at each thread count of --threads under walloc, glibc, jemalloc,
mimalloc and tcmalloc (preload.allocators), through bench-spawn like run.py
(run.py's run_child), interleaved: every allocator once per (workload,
threads, repetition), the order rotated each repetition. Every run is one row
of the CSV (--csv); the markdown report (--out, and stdout) gives medians and
ratios to mimalloc, geometric means over all (workload, threads) points, and
walloc's targets. A run that fails (non-zero exit, signal, timeout, no summary
line ending in "ok") is listed and the driver exits with status 1.

    python3 benchmarks/run_suite.py [--threads 1,2,4,8,16,32] [--reps 3] [--quick]
        [--only larson,xmalloc] [--allocators walloc,mimalloc] [--walloc LIB]
        [--csv FILE] [--out FILE] [--charts DIR] [--docs docs/benchmarks.md]
    python3 benchmarks/run_suite.py --from-csv FILE [--out FILE] [--charts DIR] [--docs FILE]

--from-csv runs nothing: it makes the report, the charts (plot_suite.py) and
the docs section from a CSV an earlier run wrote, so that every figure in docs/
comes from a committed CSV. Standard library only (the charts need matplotlib,
which plot_suite.py finds under /usr/bin/python3 when this python lacks it).
"""

import argparse
import csv
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from preload import allocators, commit_state, cpu_model
from run import find_build, geomean, md_table, parse_also, repro_command, run_child

REPO = Path(__file__).resolve().parent.parent
BASE = "mimalloc"  # the ratios' denominator
ORDER = ["walloc", "glibc", "jemalloc", "mimalloc", "tcmalloc"]

# name -> (program, arguments after the thread count, --quick ones, what it models).
# The thread count is the first argument, except bench-peak-rss's (THREADS_AT).
WORKLOADS = {
    "larson": ("bench-larson", [], ["300000", "2000", "5"],
               "server threads replaced over time; most frees cross threads"),
    "mstress": ("bench-mstress", [], ["400000", "4"],
                "objects migrating between short-lived threads through a shared array"),
    "rptest": ("bench-rptest", [], ["500000", "500"],
               "skewed 16 B-8 KiB, mixed lifetimes, 1 in 10 handed to another thread"),
    "xmalloc": ("bench-xmalloc", [], ["400000"],
                "producers malloc, consumers free (16-128 B mostly): every free cross-thread"),
    "cache-thrash": ("bench-cache-thrash", [], ["10000", "100"],
                     "Hoard's active false sharing: malloc, write many times, free"),
    "cache-scratch": ("bench-cache-scratch", [], ["10000", "100"],
                      "Hoard's passive false sharing: free a handed-over object, then as cache-thrash"),
    "large-touch": ("bench-large-touch", [], ["60", "50"],
                    "live set of up to 500 blocks of 64 KiB-16 MiB, every page touched"),
    "mixed-bursts": ("bench-mixed-bursts", [], ["6000", "64", "2000"],
                     "long-lived set beside short bursts, 8 B-64 KiB (70 % under 128 B)"),
    "thread-exit": ("bench-thread-exit", [], ["20", "2000"],
                    "threads exit with their blocks live; later threads free them"),
    "peak-rss": ("bench-peak-rss", ["512", "T", "200"], ["64", "T", "50"],
                 "512 MiB peak freed, then light work; its RSS after freeing is shown beside the peak"),
}
# A second memory figure a workload reports, shown in a table of its own. It
# never replaces the peak RSS in the ratios and geometric means: the issue's
# targets are on peak RSS, and peak-rss's RSS after freeing (where walloc
# gives back 50 times more than the others) would outweigh every other point.
AFTER_KEY = {"peak-rss": "rss_after_free_kib"}
SUMMARY_VALUES = ("ops/s",)  # tokens of the summary line kept in the CSV's extra column
FIELDS = ["workload", "threads", "allocator", "rep", "wall_s", "cpu_s", "maxrss_kib", "extra"]
OVERSUBSCRIBED = ("{cpus} CPUs: thread counts above {cpus} are oversubscribed (more threads than cores), "
                  "which still exposes lock and cache-line contention and the cost of threads that are "
                  "descheduled while holding allocator state")


def workload_argv(bindir, name, threads, quick):
    prog, args, qargs, _ = WORKLOADS[name]
    rest = qargs if quick else args
    if "T" in rest:
        return [str(bindir / prog)] + [str(threads) if a == "T" else a for a in rest]
    return [str(bindir / prog), str(threads)] + rest


def extra_of(res):
    """key=value pairs of a run for the CSV: the workload's key=value lines,
    chosen tokens of its summary line, and the status of a failed run."""
    vals = dict(res.values)
    for tok in res.summary_line().split():
        k, _, v = tok.partition("=")
        if k in SUMMARY_VALUES:
            vals[k] = v
    if not res.ok:
        vals["status"] = res.status.replace(" ", "_")
    return " ".join(f"{k}={v}" for k, v in vals.items())


def parse_extra(text):
    return dict(tok.partition("=")[::2] for tok in (text or "").split())


# ---------------------------------------------------------------------------
# CSV


def header_lines(argv):
    return [f"command: {shlex.join(['python3', 'benchmarks/run_suite.py'] + argv)}",
            f"commit: {commit_state()}",
            f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
            f"date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}"]


def read_csv(path):
    """(header comment lines, rows as dicts) of a CSV written by a run."""
    header, body = [], []
    with open(path, newline="") as f:
        for line in f:
            (header if line.startswith("#") else body).append(line)
    return [h[1:].strip() for h in header], list(csv.DictReader(body))


# ---------------------------------------------------------------------------
# medians, ratios, targets


def points(rows):
    """{(workload, threads): {allocator: {"time", "mem", "peak"} medians, or None if a run failed}}."""
    runs = {}
    for r in rows:
        runs.setdefault((r["workload"], int(r["threads"])), {}).setdefault(r["allocator"], []).append(r)
    out = {}
    for key, by_alloc in runs.items():
        out[key] = {}
        for a, rs in by_alloc.items():
            if any(not r["wall_s"] for r in rs):
                out[key][a] = None
                continue
            after_key = AFTER_KEY.get(key[0])
            afters = [float(parse_extra(r["extra"])[after_key]) for r in rs
                      if after_key and after_key in parse_extra(r["extra"])]
            out[key][a] = {"time": statistics.median(float(r["wall_s"]) for r in rs),
                           "mem": statistics.median(float(r["maxrss_kib"]) for r in rs),
                           "after": statistics.median(afters) if afters else None}
    return out


def order_of(pts):
    seen = {a for p in pts.values() for a in p}
    return [a for a in ORDER if a in seen] + sorted(seen - set(ORDER))


def geomeans(pts, allocs, metric):
    """{allocator: geometric mean over all points of metric / BASE's}."""
    out = {}
    for a in allocs:
        ratios = [p[a][metric] / p[BASE][metric] for p in pts.values()
                  if p.get(a) and p.get(BASE) and p[BASE][metric] > 0]
        out[a] = geomean(ratios)
    return out


def best_of(p, metric):
    ok = {a: v[metric] for a, v in p.items() if v}
    return min(ok, key=ok.get) if ok else None


def over_limit(p, a, metric, limit):
    """Whether allocator a failed at point p, or took more than limit x the best's metric."""
    best = best_of(p, metric)
    return p.get(a) is None or bool(best and p[a][metric] > limit * p[best][metric])


def target_lines(pts, allocs):
    if "walloc" not in allocs or BASE not in allocs:
        return ["(targets need walloc and mimalloc in the run)"]
    gt, gm = geomeans(pts, allocs, "time"), geomeans(pts, allocs, "mem")
    res = []

    def verdict(ok, text):
        res.append(f"- {'PASS' if ok else '**FAIL**'}: {text}")

    w_t, w_m = gt["walloc"], gm["walloc"]
    verdict(w_t is not None and w_t <= 0.95, f"geomean time <= 0.95x mimalloc's: {w_t:.3f}x")
    if "tcmalloc" in allocs and gt.get("tcmalloc"):
        verdict(w_t < gt["tcmalloc"], f"geomean time below tcmalloc's: {w_t:.3f}x vs {gt['tcmalloc']:.3f}x")
    verdict(w_m is not None and w_m <= 0.90, f"geomean memory <= 0.90x mimalloc's: {w_m:.3f}x")
    for metric, limit, what in (("time", 1.25, "slower than the fastest"), ("mem", 1.5, "the memory of the leanest")):
        bad = []
        for (w, t), p in sorted(pts.items()):
            if p.get("walloc") is None:
                bad.append(f"  - {w} at {t} threads: walloc FAILED")
            elif over_limit(p, "walloc", metric, limit):
                best = best_of(p, metric)
                bad.append(f"  - {w} at {t} threads: {p['walloc'][metric] / p[best][metric]:.2f}x {best}")
        verdict(not bad, f"no point more than {limit}x {what}: {len(bad)} violation(s)")
        res += bad
    res += ["", "Points beyond those limits, by allocator (how far the limits are from what any "
            "allocator does here):", ""]
    for a in allocs:
        slow, fat = (sum(over_limit(p, a, metric, limit) for p in pts.values())
                     for metric, limit in (("time", 1.25), ("mem", 1.5)))
        res.append(f"- {a}: {slow} more than 1.25x slower than the fastest, {fat} over 1.5x the leanest's memory")
    res += ["", "Points each allocator wins (fastest or leanest of all at that point):", ""]
    for a in allocs:
        for metric, word in (("time", "fastest"), ("mem", "leanest")):
            won = [f"{w}/{t}" for (w, t), p in sorted(pts.items()) if best_of(p, metric) == a]
            res.append(f"- {a} {word} ({len(won)}): {', '.join(won) if won else '-'}")
    return res


def also_lines(pts, allocs):
    """Each --also column against walloc, point by point: the geometric mean of its
    ratios, and the points where the two differ most either way. With a second copy
    of the same library (--also walloc-again=build/libwalloc.so) this is the machine's
    own spread, which any per-point limit has to clear."""
    res = []
    for a in [a for a in allocs if a not in ORDER]:
        if "walloc" not in allocs:
            break
        res += [f"### {a} against walloc, point by point", ""]
        for metric, word in (("time", "time"), ("mem", "memory")):
            pairs = [(p[a][metric] / p["walloc"][metric], w, t) for (w, t), p in sorted(pts.items())
                     if p.get(a) and p.get("walloc") and p["walloc"][metric] > 0]
            if not pairs:
                continue
            apart = sorted(pairs, key=lambda x: -max(x[0], 1 / x[0]))[:3]
            res.append(f"- {word}: geometric mean {geomean([x[0] for x in pairs]):.3f}x walloc's; furthest apart: "
                       + ", ".join(f"{w}/{t} {max(r, 1 / r):.2f}x ({a} {'above' if r > 1 else 'below'})"
                                   for r, w, t in apart))
        res.append("")
    return res


def cell(v, base, metric):
    if v is None:
        return "**FAILED**"
    x = v[metric] / 1024.0 if metric != "time" else v[metric]
    s = f"{x:.3f}" if metric == "time" else f"{x:.1f}"
    return s + (f" ({v[metric] / base[metric]:.2f}x)" if base and base[metric] > 0 else "")


def report(header, rows):
    """The markdown report of a run's rows (from the run or read back from its CSV)."""
    pts = points(rows)
    allocs = order_of(pts)
    threads = sorted({t for _, t in pts})
    cpus = next((h for h in header if h.startswith("machine:")), "machine: ?")
    ncpu = int(cpus.split(" CPUs")[0].rsplit(",", 1)[-1]) if " CPUs" in cpus else os.cpu_count()
    md = [f"- {h}" for h in header]
    md += [f"- thread sweep: {', '.join(map(str, threads))}; on this machine's "
           + OVERSUBSCRIBED.format(cpus=ncpu),
           f"- reps: {max(int(r['rep']) for r in rows)} per point (medians); ratios are to {BASE} "
           "(below 1: faster or leaner); memory is peak RSS (ru_maxrss) everywhere; peak-rss's RSS after "
           "freeing its peak is a table of its own, outside the means", ""]
    gt, gm = geomeans(pts, allocs, "time"), geomeans(pts, allocs, "mem")
    md += [f"### Geometric means over all {len(pts)} (workload, threads) points, ratio to {BASE}", "",
           md_table(["allocator", "time", "memory"],
                    [[a, f"{gt[a]:.3f}x" if gt[a] else "-", f"{gm[a]:.3f}x" if gm[a] else "-"] for a in allocs]),
           "", "### walloc's targets", ""] + target_lines(pts, allocs) + [""]
    md += also_lines(pts, allocs)
    md += ["### Per workload: median wall time in s and memory in MiB (ratio to mimalloc)", ""]
    for w in [w for w in WORKLOADS if any(k[0] == w for k in pts)]:
        md += [f"#### {w}: {WORKLOADS[w][3]}", ""]
        body = []
        for t in threads:
            p = pts.get((w, t))
            if p:
                b = p.get(BASE)
                body.append([str(t)] + [cell(p.get(a), b, "time") if a in p else "-" for a in allocs]
                            + [cell(p.get(a), b, "mem") if a in p else "-" for a in allocs])
        md += [md_table(["threads"] + [f"{a} s" for a in allocs] + [f"{a} MiB" for a in allocs], body), ""]
        if w in AFTER_KEY:
            rows_after = [[str(t)] + [f"{pts[(w, t)][a]['after'] / 1024:.1f}"
                                      if pts[(w, t)].get(a) and pts[(w, t)][a]["after"] is not None else "-"
                                      for a in allocs] for t in threads if (w, t) in pts]
            md += [f"{w}'s RSS after freeing its peak ({AFTER_KEY[w]}, MiB):", "",
                   md_table(["threads"] + allocs, rows_after), ""]
    return md


# ---------------------------------------------------------------------------
# charts and docs


def write_docs(path, md, csv_path):
    """Replaces the text between the suite markers of path with md."""
    begin, end = "<!-- suite-figures:begin -->", "<!-- suite-figures:end -->"
    text = Path(path).read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} ... {end} section to fill")
    rel = os.path.relpath(csv_path, REPO)
    body = [begin, f"<!-- written by: python3 benchmarks/run_suite.py --from-csv {rel} --docs {path}; "
                   "do not edit by hand -->", "", f"From `{rel}`:", ""] + md + [end]
    head, rest = text.split(begin, 1)
    Path(path).write_text(head + "\n".join(body) + rest.split(end, 1)[1])


def charts(csv_path, outdir):
    plot = Path(__file__).resolve().parent / "plot_suite.py"
    subprocess.run([sys.executable, str(plot), csv_path, "-o", outdir], check=True)


# ---------------------------------------------------------------------------
# running


def run_all(args, log):
    build = find_build(args.build, log)
    bindir = build / "benchmarks"
    walloc = os.path.abspath(args.walloc) if args.walloc else str(REPO / "build" / "libwalloc.so")
    libs = allocators(walloc)
    if not os.path.exists(walloc):
        libs.pop("walloc")
        log(f"note: walloc skipped: {walloc} does not exist")
    wanted = args.allocators.split(",") if args.allocators else ORDER
    allocs = [a for a in ORDER if a in wanted and a in libs]
    for a in set(wanted) - set(allocs):
        log(f"note: {a} skipped ({'unknown' if a not in ORDER else 'not installed'})")
    envs = {}  # allocator -> variables set for its runs (--also NAME=LIB,VAR=VALUE)
    for name, (lib, sets) in parse_also(args.also, libs).items():  # interleaved with the others
        libs[name], envs[name] = lib, sets
        allocs.append(name)
    sel = [w.removeprefix("bench-") for w in args.only.split(",")] if args.only else list(WORKLOADS)
    for w in sel:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w} (known: {', '.join(WORKLOADS)})")
    threads = [int(t) for t in (args.threads or ("1,2,4" if args.quick else "1,2,4,8,16,32")).split(",")]
    reps = args.reps or (1 if args.quick else 3)
    helper = str(bindir / "bench-spawn")

    header = header_lines(sys.argv[1:])
    header.append("allocators: " + ", ".join(f"{a}={libs[a] or 'no preload'}"
                                             + "".join(f" {k}={v}" for k, v in envs.get(a, {}).items())
                                             for a in allocs))
    rows, failures = [], []
    out = open(args.csv, "w", newline="") if args.csv else None
    if out:
        out.write("".join(f"# {h}\n" for h in header))
        writer = csv.DictWriter(out, FIELDS)
        writer.writeheader()
    total, k, t0 = len(sel) * len(threads) * reps * len(allocs), 0, time.time()
    for w in sel:
        for t in threads:
            argv = workload_argv(bindir, w, t, args.quick)
            for rep in range(reps):
                for a in allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]:
                    res = run_child(argv, libs[a], args.timeout, helper, envs.get(a))
                    if res.ok and not res.summary_line().endswith(" ok"):
                        res.ok, res.status = False, "no summary line ending in ok"
                    row = {"workload": w, "threads": t, "allocator": a, "rep": rep + 1,
                           "wall_s": f"{res.wall:.4f}" if res.ok else "",
                           "cpu_s": f"{res.cpu:.4f}" if res.ok else "",
                           "maxrss_kib": res.maxrss_kib if res.ok else "", "extra": extra_of(res)}
                    rows.append(row)
                    if out:
                        writer.writerow(row)
                        out.flush()
                    k += 1
                    el = time.time() - t0
                    log(f"{k}/{total} {el:.0f}s elapsed, ~{el / k * (total - k):.0f}s left: {w} {t}T {a} "
                        + (f"{res.wall:.3f}s {res.maxrss_kib / 1024:.1f}MiB" if res.ok else "FAILED " + res.status))
                    if not res.ok:
                        failures.append((w, t, a, res.status, repro_command(argv, libs[a], envs.get(a)),
                                         " / ".join(res.stderr.strip().splitlines()[-3:])))
    if out:
        out.close()
    return header, rows, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", help="build directory (default <repo>/build, then <repo>/build-bench)")
    ap.add_argument("--walloc", help="libwalloc.so to preload (default <repo>/build/libwalloc.so)")
    ap.add_argument("--threads", help="thread counts (default 1,2,4,8,16,32; 1,2,4 with --quick)")
    ap.add_argument("--reps", type=int, help="repetitions per point (default 3, 1 with --quick); medians")
    ap.add_argument("--quick", action="store_true", help="small arguments, 1 rep, few thread counts: a smoke run")
    ap.add_argument("--only", help="comma-separated workloads (of: %s)" % ", ".join(WORKLOADS))
    ap.add_argument("--allocators", help="comma-separated subset of " + ",".join(ORDER))
    ap.add_argument("--also", action="append", metavar="NAME=LIB[,VAR=VALUE...]",
                    help="also preload LIB as allocator NAME (another walloc build, say), interleaved with the "
                         "rest, with the variables given set (e.g. delay25=build/libwalloc.so,WALLOC_PURGE_DELAY=25)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds before a run is killed (default 120)")
    ap.add_argument("--csv", help="write one row per run to this CSV")
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--from-csv", help="run nothing: report (and --charts, --docs) from this CSV")
    ap.add_argument("--charts", help="draw the PNG charts into this directory (plot_suite.py; needs --csv or --from-csv)")
    ap.add_argument("--docs", help="fill the suite figures section of this markdown file (docs/benchmarks.md)")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    failures = []
    if args.from_csv:
        header, rows = read_csv(args.from_csv)
    else:
        header, rows, failures = run_all(args, log)
    md = report(header, rows)
    if failures:
        md += ["### FAILURES", ""] + [f"- **{w} at {t} threads under {a}: {s}**; reproduce: `{cmd}`; stderr: `{e}`"
                                      for w, t, a, s, cmd, e in failures] + [""]
    text = "\n".join(md)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        log(f"wrote {args.out}")
    csv_path = args.from_csv or args.csv
    if args.docs:
        if not csv_path:
            raise SystemExit("--docs needs the figures' CSV (--csv or --from-csv)")
        write_docs(args.docs, md, csv_path)
        log(f"wrote the suite section of {args.docs}")
    if args.charts:
        if not csv_path:
            raise SystemExit("--charts needs --csv or --from-csv")
        charts(csv_path, args.charts)
    if failures:
        log(f"{len(failures)} FAILED run(s): see the FAILURES section")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
