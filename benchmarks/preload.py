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
