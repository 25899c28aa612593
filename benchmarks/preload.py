"""preload.py: what the run_*.py drivers share: the allocators to compare
(preloaded into the same benchmark program) and one timed run of it."""
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
        total = None
        with open(outf, errors="replace") as f:
            for line in f:
                if line.startswith("totals:") or (line.startswith("summary:") and total is None):
                    total = int(line.split()[1])
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


def callgrind_lines(f1, n, what, rows):
    """The report of a --callgrind run: rows of (variant, build or library,
    instructions per object, command)."""
    lines = [f"- command: `python3 benchmarks/{os.path.basename(sys.argv[0])} {' '.join(sys.argv[1:])}`",
             f"- work: {what}; one thread; instructions per object = (I({2 * f1} frames) - I({f1} frames)) / "
             f"({f1} x {n}), counted by valgrind --tool=callgrind", "",
             "| variant | instructions per object | build or library | command (F frames) |", "|---|---:|---|---|"]
    for name, where, v, cmd in rows:
        lines.append(f"| {name} | {'-' if v is None else f'{v:.2f}'} | `{where}` | `{cmd}` |")
    return lines


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


def context_lines(script, t_start, load_before):
    """The command, date and machine load lines every report starts with."""
    return [f"- command: `python3 benchmarks/{script} {' '.join(sys.argv[1:])}`",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))}; "
            f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)"]


def emit(lines, out):
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
