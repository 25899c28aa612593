"""preload.py: what the run_*.py drivers share: the allocators to compare
(preloaded into the same benchmark program), one timed run of it, the
callgrind counts, and for run_tiers.py and run_lifetimes.py the frame sizes,
the table of paths with their ratios and the JSON the chart is drawn from."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
ALLOCATORS = {
    "glibc": None,
    "walloc": "WALLOC",
    "jemalloc": f"{LIBDIR}/libjemalloc.so.2",
    "mimalloc": f"{LIBDIR}/libmimalloc.so.2",
    "tcmalloc": f"{LIBDIR}/libtcmalloc_minimal.so.4",
}


def allocators(walloc):
    """name -> library to preload (None: glibc), for those installed."""
    allocs = {k: (walloc if v == "WALLOC" else v) for k, v in ALLOCATORS.items()}
    return {k: v for k, v in allocs.items() if v is None or os.path.exists(v)}


def run(cmd, preload=None):
    """Runs cmd (with LD_PRELOAD=preload) and returns the ns_per_object it prints."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"FAILED ({out.returncode}): {' '.join(cmd)} preload={preload}\n{out.stdout}{out.stderr}")
    m = re.search(r"ns_per_object=([0-9.]+)", out.stdout)
    if not m:
        sys.exit(f"no ns_per_object in output of {' '.join(cmd)}:\n{out.stdout}")
    return float(m.group(1))


def parse_callgrind_total(path):
    """The instruction count a callgrind output file gives, or None."""
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or (line.startswith("summary:") and total is None):
                total = int(line.split()[1])
    return total


def callgrind_total(cmd, preload=None):
    """Instructions cmd executes (all threads), counted by callgrind, with
    LD_PRELOAD=preload (valgrind passes it on to the program)."""
    import tempfile
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    with tempfile.TemporaryDirectory(prefix="walloc-cg-") as tmp:
        outf = os.path.join(tmp, "callgrind.out")
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + outf] + cmd,
                           env=env, capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            sys.exit(f"callgrind FAILED ({p.returncode}): {' '.join(cmd)} preload={preload}\n{p.stderr[-2000:]}")
        total = parse_callgrind_total(outf)
        if total is None:
            sys.exit(f"no totals in the callgrind output of {' '.join(cmd)}")
        return total


def callgrind_per_object(cmd_for, f1, n, preload=None):
    """Instructions per object of a benchmark whose cmd_for(k) runs k frames
    (or rounds) of n objects: (I(2 f1) - I(f1)) / (f1 n), so start-up and
    set-up cancel out; and the command of f1 frames."""
    i1, i2 = callgrind_total(cmd_for(f1), preload), callgrind_total(cmd_for(2 * f1), preload)
    return (i2 - i1) / (f1 * n), " ".join(cmd_for(f1))


def add_callgrind_args(ap):
    """The options of the drivers' --callgrind mode."""
    ap.add_argument("--callgrind", action="store_true", help="count instructions per object instead of timing")
    ap.add_argument("--cg-frames", type=int, default=10, help="F for --callgrind (F and 2F frames or rounds)")
    ap.add_argument("--baseline-build", default=None, help="with --callgrind: an earlier build directory too")


def modes_of(exe):
    """The modes a benchmark program names in its usage line (an earlier
    build may predate some)."""
    p = subprocess.run([exe], capture_output=True, text=True)
    return set(re.split(r"[|\s]", p.stdout + p.stderr))


def callgrind_rows(paths, mallocs, builds, sizes, f1, cmd_for):
    """Rows of callgrind_lines: for each frame size n, walloc's paths (name,
    mode) in each build (tag, directory), then the malloc modes (name, mode,
    library to preload or None) in the first build; cmd_for(build, mode, n)
    returns the command's function of the frame count. A mode the build's
    program lacks gets '-'."""
    have = {}
    rows = []
    for n in sizes:
        runs = [(name + tag, mode, None, build, build) for name, mode in paths for tag, build in builds]
        runs += [(name, mode, lib, builds[0][1], lib or "(no preload)") for name, mode, lib in mallocs]
        for name, mode, lib, build, where in runs:
            cmd = cmd_for(build, mode, n)
            if build not in have:
                have[build] = modes_of(cmd(1)[0])
            if mode not in have[build]:
                rows.append((n, name, where, None, "(no such mode in that build)"))
            else:
                rows.append((n, name, where) + callgrind_per_object(cmd, f1, n, lib))
    return rows


def callgrind_lines(f1, what, rows):
    """The report of a --callgrind run: rows of (objects per frame, variant,
    build or library, instructions per object, command)."""
    lines = [f"- command: `python3 benchmarks/{os.path.basename(sys.argv[0])} {' '.join(sys.argv[1:])}`"]
    lines += commit_machine_lines()
    lines += [f"- work: {what}; one thread; instructions per object = (I({2 * f1} frames) - I({f1} frames)) / "
              f"({f1} x N), counted by valgrind --tool=callgrind", "",
              "| N | variant | instructions per object | build or library | command (F frames) |",
              "|---:|---|---:|---|---|"]
    for n, name, where, v, cmd in rows:
        lines.append(f"| {n} | {name} | {'-' if v is None else f'{v:.2f}'} | `{where}` | `{cmd}` |")
    return lines


def add_frame_args(ap):
    """The frame sizes and the work per timed run of run_tiers.py and run_lifetimes.py."""
    ap.add_argument("--n", type=int, nargs="+", default=[4096, 50000],
                    help="objects per frame (several: one table row group each)")
    ap.add_argument("--objects", type=int, default=4000000,
                    help="objects per thread and timed run (frames = objects / N, at least 2)")
    ap.add_argument("--json", default=None, help="also write the medians as JSON (plot_engine.py draws them)")


def frames_for(args, n):
    return max(2, args.objects // n)


def by_frame_size(sizes, variants, reps, thread_counts, run_one):
    """{(n, threads): {variant: median ns}}; run_one(variant, n, threads)."""
    results = {}
    for n in sizes:
        for threads, r in interleaved(variants, reps, thread_counts, lambda v, t: run_one(v, n, t)).items():
            results[(n, threads)] = r
    return results


def timed_paths(args, exe, variants, allocs, extra=()):
    """Times exe's variants ("mode", or "mode/allocator" for a malloc mode
    run under that allocator) at each frame size of args.n, one thread and
    every thread; returns the medians (by_frame_size) and the report's
    context lines."""
    load_before = os.getloadavg()[0]
    t_start = time.time()

    def run_one(v, n, threads):
        cmd = [exe, v.split("/")[0], str(n), str(frames_for(args, n)), str(threads)] + list(extra)
        return run(cmd, allocs[v.split("/")[1]] if "/" in v else None)

    results = by_frame_size(args.n, variants, args.reps, (1, os.cpu_count() or 2), run_one)
    return results, context_lines(os.path.basename(sys.argv[0]), t_start, load_before)


def path_report(head, what, results, rows, bases, measured):
    """The report of a timed run: head (context_lines), the work, the table
    of paths with their ratios to bases, what the ns measure, the fastest."""
    lines = head + [f"- work: {what}", ""] + path_table(results, rows, list(bases))
    lines += ["", f"ns per object ({measured}) of the slowest thread; vs X: X's ns / this path's ns "
              "(above 1: this path is faster).", ""]
    return lines + fastest_lines(results, rows)


def path_table(results, rows, bases):
    """A markdown table: for each (n, threads), one row per path (label,
    variant, {base name: base variant}) with its ns per object and how many
    times faster it is than each base (base ns / ns; below 1: slower)."""
    lines = ["| N | threads | path | ns per object | " + " | ".join(f"vs {b}" for b in bases) + " |",
             "|---:|---:|---|---:|" + "---:|" * len(bases)]
    for (n, threads), r in results.items():
        for label, variant, base_of in rows:
            ns = r[variant]
            cells = [f"{r[base_of[b]] / ns:.2f}x" if base_of.get(b) in r else "" for b in bases]
            lines.append(f"| {n} | {threads} | {label} | {ns:.2f} | " + " | ".join(cells) + " |")
    return lines


def fastest_lines(results, rows):
    """Which path is fastest at each frame size and thread count."""
    out = []
    for (n, threads), r in results.items():
        ranked = sorted(rows, key=lambda row: r[row[1]])
        out.append(f"- N={n}, {threads} thread(s): fastest {ranked[0][0]} ({r[ranked[0][1]]:.2f} ns), "
                   f"then {ranked[1][0]} ({r[ranked[1][1]]:.2f} ns), then {ranked[2][0]} ({r[ranked[2][1]]:.2f} ns)")
    return out


def write_json(path, driver, what, results, rows):
    """The medians by frame size, threads and path, for plot_engine.py."""
    if not path:
        return
    data = {"driver": driver, "work": what, "results": [
        {"n": n, "threads": t, "path": label, "variant": str(v), "ns": r[v]}
        for (n, t), r in results.items() for label, v, _ in rows]}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def add_common_args(ap, repo):
    """The options every driver takes."""
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--walloc", default=None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=None)


def interleaved(variants, reps, thread_counts, run_one):
    """{threads: {variant: median}}; run_one(variant, threads) returns one
    sample. Each repetition runs every variant, starting one further along,
    so that drift in the machine's speed spreads over all of them."""
    results = {}
    for threads in thread_counts:
        samples = {v: [] for v in variants}
        for rep in range(reps):
            k = rep % len(variants)
            for v in variants[k:] + variants[:k]:
                samples[v].append(run_one(v, threads))
        results[threads] = {v: statistics.median(s) for v, s in samples.items()}
    return results


def commit_state():
    """The commit measured, with ' + uncommitted changes' if the tree differs."""
    here = os.path.dirname(os.path.abspath(__file__))
    git = ["git", "-C", here]
    commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return f"{commit or 'unknown'}{' + uncommitted changes' if dirty.stdout.strip() else ''}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown CPU")
    except OSError:
        return "unknown CPU"


def commit_machine_lines():
    """The commit measured (with '+ changes' if the tree differs) and the CPU."""
    return [f"- commit: {commit_state()}; machine: {cpu_model()}, {os.cpu_count()} CPUs"]


def context_lines(script, t_start, load_before):
    """The command, commit, machine, date and load lines every report starts with."""
    return [f"- command: `python3 benchmarks/{script} {' '.join(sys.argv[1:])}`"] + commit_machine_lines() + [
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; "
            f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)"]


def pyplot(script):
    """matplotlib.pyplot with the Agg backend, for the chart scripts. When
    the python3 running them lacks matplotlib (a pyenv one, say), the script
    runs itself again under /usr/bin/python3 (Debian's, with
    python3-matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        raise SystemExit(f"{script} needs matplotlib: apt-get install python3-matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot
    return matplotlib.pyplot


def emit(lines, out):
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
