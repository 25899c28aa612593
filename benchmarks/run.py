#!/usr/bin/env python3
"""Benchmark driver: run the walloc workloads under several allocators.

Every workload binary uses the C library's malloc; the allocator under test is
picked with LD_PRELOAD (glibc = no preload). For each workload and repetition
all allocators run interleaved (the order rotates by one each repetition), so
slow drifts of a noisy machine hit every allocator alike. Wall time and peak
RSS (ru_maxrss from wait4) of each run are recorded; the output is markdown
tables of medians and ratios to glibc, plus the geometric mean of the ratios.

A run that exits non-zero, is killed by a signal or times out is reported as
FAILED (at once on stderr, in the tables and in a failure list with the command
that reproduces it) and the driver exits with status 1.

    python3 benchmarks/run.py [--build DIR] [--walloc LIB] [--reps N] [--quick]
                              [--only NAME,...] [--allocators a,b,...] [--out FILE]
    python3 benchmarks/run.py --callgrind [--timing] ...

--callgrind counts instructions per malloc+free pair with callgrind (see
README.md); alone it runs only that count, with --timing also the workloads.

Standard library only.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from preload import parse_callgrind_total  # shared with the run_*.py drivers

REPO = Path(__file__).resolve().parent.parent
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")

# name -> (default arguments, --quick arguments, what it models)
WORKLOADS = {
    "bench-live-set": (["2", "100000", "2000000"], ["2", "20000", "200000"],
                       "large live set of small objects (8-512 B), random replace"),
    "bench-prod-cons": (["4", "4", "1000000", "64"], ["4", "4", "100000", "64"],
                        "4 producers -> 4 consumers, cross-thread free (16 B-4 KiB)"),
    "bench-server": (["8", "150000", "100"], ["8", "15000", "100"],
                     "server-like mix of sizes and lifetimes, 8 threads"),
    "bench-realloc": (["2", "2000000", "2", "1000"], ["2", "200000", "1", "1000"],
                      "realloc growth of many vectors, doubling to 64 MiB"),
    "bench-large": (["2", "700", "8"], ["2", "70", "8"],
                    "large blocks 64 KiB-32 MiB, every page touched"),
    "bench-peak-rss": (["512", "1", "200"], ["128", "1", "100"],
                       "peak of MIB MiB (1st arg) small+medium, free all, light work, then RSS"),
    "bench-peak-rss-xthread": (["512", "2", "200"], ["128", "2", "100"],
                               "bench-peak-rss with 2 threads, each freeing the other's objects"),
    "bench-fastpath": (["50000000", "32"], ["5000000", "32"],
                       "malloc(32)+free pair in a loop"),
}
# rows that run another row's program with other arguments
PROGRAM = {"bench-peak-rss-xthread": "bench-peak-rss"}
# --cg-workloads: arguments where the --quick ones would count time, not work
# (bench-peak-rss's last phase runs for MS milliseconds: 1 ms here, the least it takes)
CG_ARGS = {"bench-peak-rss": ["128", "1", "1"], "bench-peak-rss-xthread": ["128", "2", "1"]}

SPAWN_HELPER = "bench-spawn"


# ---------------------------------------------------------------------------
# running one child


class Result:
    def __init__(self):
        self.ok = False
        self.status = ""          # "ok", "exit 2", "SIGSEGV", "TIMEOUT (120 s)"
        self.wall = None          # seconds
        self.maxrss_kib = None
        self.cpu = None           # user + system seconds
        self.stdout = ""
        self.stderr = ""
        self.values = {}          # key=value lines from the workload's stdout

    def summary_line(self):
        for line in self.stdout.splitlines():
            if line.startswith("bench-"):
                return line.strip()
        return ""


def _signame(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


def _read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _parse_values(text):
    vals = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and " " not in line:
            k, v = line.split("=", 1)
            vals[k] = v
    return vals


def env_without_preload():
    """This process's environment minus LD_PRELOAD: what every child starts from."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


def run_child(argv, preload, timeout, helper, env_extra=None):
    """Run argv with LD_PRELOAD=preload (None: no preload), and env_extra's
    variables (a dict) set.

    With helper (path of bench-spawn) the workload is forked by that small C
    program, which wait4()s it and reports wall time and ru_maxrss; otherwise
    the workload is spawned from here and measured with os.wait4 directly (its
    ru_maxrss then cannot be lower than the size of this Python process, see
    bench-spawn.c).
    """
    res = Result()
    env = env_without_preload()
    env.update(env_extra or {})
    with tempfile.TemporaryDirectory(prefix="walloc-bench-") as tmp:
        out_path = os.path.join(tmp, "stdout")
        err_path = os.path.join(tmp, "stderr")
        rep_path = os.path.join(tmp, "report")
        if helper:
            cmd = [helper, "-t", str(int(timeout)), "-p", preload or "", "-o", rep_path,
                   "--"] + argv
            backstop = timeout + 30
        else:
            cmd = list(argv)
            if preload:
                env["LD_PRELOAD"] = preload
            backstop = timeout
        fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            t0 = time.perf_counter()
            pid = os.posix_spawn(cmd[0], cmd, env, setsid=True, file_actions=[
                (os.POSIX_SPAWN_DUP2, fd_out, 1),
                (os.POSIX_SPAWN_DUP2, fd_err, 2),
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            ])
        finally:
            os.close(fd_out)
            os.close(fd_err)
        # A timer kills the child through a pidfd (never a recycled pid).
        pidfd = os.pidfd_open(pid)
        killed = threading.Event()

        def kill():
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                killed.set()
            except OSError:
                pass

        timer = threading.Timer(backstop, kill)
        timer.daemon = True
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(pid, 0)
                    break
                except InterruptedError:
                    continue
        finally:
            timer.cancel()
            os.close(pidfd)
        t1 = time.perf_counter()

        res.stdout = _read(out_path)
        res.stderr = _read(err_path)
        res.values = _parse_values(res.stdout)

        if helper:
            rep = _parse_values(_read(rep_path).replace(" ", "\n"))
            if not rep:
                res.status = "TIMEOUT (%d s, helper killed)" % backstop if killed.is_set() \
                    else "bench-spawn gave no report (status %#x)" % status
                return res
            code, sig = int(rep["exit"]), int(rep["signal"])
            if rep.get("timeout") == "1":
                res.status = "TIMEOUT (%d s)" % timeout
            elif sig:
                res.status = "killed by %s" % _signame(sig)
            elif code == 127 and "bench-spawn: cannot run" in res.stderr:
                res.status = "cannot run"
            elif code != 0:
                res.status = "exit %d" % code
            else:
                res.ok = True
                res.status = "ok"
            res.wall = float(rep["wall_s"])
            res.maxrss_kib = int(rep["maxrss_kib"])
            res.cpu = float(rep["utime_s"]) + float(rep["stime_s"])
        else:
            res.wall = t1 - t0
            res.maxrss_kib = ru.ru_maxrss
            res.cpu = ru.ru_utime + ru.ru_stime
            if killed.is_set():
                res.status = "TIMEOUT (%d s)" % timeout
            elif os.WIFSIGNALED(status):
                res.status = "killed by %s" % _signame(os.WTERMSIG(status))
            elif os.WEXITSTATUS(status) != 0:
                res.status = "exit %d" % os.WEXITSTATUS(status)
            else:
                res.ok = True
                res.status = "ok"
    return res


def parse_also(specs, taken):
    """The --also NAME=LIB[,VAR=VALUE...] items of a driver: {NAME: (LIB made
    absolute, {VAR: VALUE})}, in the order given. Exits on a NAME already in
    `taken` or given twice, a LIB that does not exist, or a setting without '='."""
    out = {}
    for spec in specs or []:
        name, _, rest = spec.partition("=")
        lib, *sets = rest.split(",")
        if not name or not lib or not os.path.exists(lib) or name in taken or name in out \
                or not all("=" in v for v in sets):
            raise SystemExit("--also %s: give a new NAME=LIB[,VAR=VALUE...] with an existing library" % spec)
        out[name] = (os.path.abspath(lib), dict(v.split("=", 1) for v in sets))
    return out


def repro_command(argv, preload, env_extra=None):
    pre = "".join("%s=%s " % (k, shlex.quote(v)) for k, v in (env_extra or {}).items())
    pre += "LD_PRELOAD=%s " % shlex.quote(preload) if preload else ""
    return pre + shlex.join(argv)


# ---------------------------------------------------------------------------
# statistics and tables


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def metric_table(results, workloads, allocs, base, get, fmt):
    """Median of get(result) per cell with the ratio to the base allocator."""
    header = ["workload"] + allocs
    rows = []
    ratios = {a: [] for a in allocs}
    for w in workloads:
        row = [w]
        meds = {}
        for a in allocs:
            runs = results.get(w, {}).get(a, [])
            fails = [r for r in runs if not r.ok]
            vals = [get(r) for r in runs if r.ok and get(r) is not None]
            if fails:
                meds[a] = None
            else:
                meds[a] = median(vals)
        for a in allocs:
            runs = results.get(w, {}).get(a, [])
            fails = [r for r in runs if not r.ok]
            if not runs:
                row.append("-")
            elif fails:
                row.append("**FAILED %d/%d**" % (len(fails), len(runs)))
            elif meds[a] is None:
                row.append("-")
            else:
                b = meds.get(base)
                if b:
                    ratio = meds[a] / b
                    ratios[a].append(ratio)
                    row.append("%s (%.2fx)" % (fmt(meds[a]), ratio))
                else:
                    row.append(fmt(meds[a]))
        rows.append(row)
    gm = ["geomean of ratios"]
    for a in allocs:
        g = geomean(ratios[a])
        n_all = len(workloads)
        note = "" if len(ratios[a]) == n_all else " (%d/%d)" % (len(ratios[a]), n_all)
        gm.append("**%.3fx**%s" % (g, note) if g else "-")
    rows.append(gm)
    return md_table(header, rows)


def spread_table(results, workloads, allocs):
    header = ["workload"] + allocs
    rows = []
    for w in workloads:
        row = [w]
        for a in allocs:
            vals = [r.wall for r in results.get(w, {}).get(a, []) if r.ok]
            if len(vals) < 2:
                row.append("-")
            else:
                m = median(vals)
                row.append("%.3f-%.3f (±%.0f%%)" % (min(vals), max(vals),
                                                   50.0 * (max(vals) - min(vals)) / m))
        rows.append(row)
    return md_table(header, rows)


def value_row(results, w, allocs, key, base):
    row = []
    meds = {}
    for a in allocs:
        runs = [r for r in results.get(w, {}).get(a, []) if r.ok and key in r.values]
        meds[a] = median([int(r.values[key]) for r in runs]) if runs else None
    for a in allocs:
        m = meds[a]
        if m is None:
            row.append("-")
        elif meds.get(base):
            row.append("%d (%.1f MiB, %.2fx)" % (m, m / 1024.0, m / meds[base]))
        else:
            row.append("%d (%.1f MiB)" % (m, m / 1024.0))
    return row


def baseline_table(results, sel):
    """walloc / walloc-base per workload: wall, CPU, peak RSS (medians)."""
    rows = []
    for w in sel:
        if w not in results:
            continue
        row = [w]
        for get in (lambda r: r.wall, lambda r: r.cpu, lambda r: r.maxrss_kib):
            new = [get(r) for r in results[w]["walloc"] if r.ok and get(r) is not None]
            old = [get(r) for r in results[w]["walloc-base"] if r.ok and get(r) is not None]
            row.append("%.3f" % (statistics.median(new) / statistics.median(old)) if new and old and
                       statistics.median(old) > 0 else "-")
        rows.append(row)
    return md_table(["workload", "wall", "CPU", "peak RSS"], rows)


# ---------------------------------------------------------------------------
# callgrind


def callgrind_count(valgrind, fastpath, preload, n, size, timeout):
    """Instructions executed by bench-fastpath n size, and the library that served malloc."""
    env = env_without_preload()
    if preload:
        env["LD_PRELOAD"] = preload  # valgrind passes it on to the client
    with tempfile.TemporaryDirectory(prefix="walloc-cg-") as tmp:
        outf = os.path.join(tmp, "callgrind.out")
        cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=" + outf,
               fastpath, str(n), str(size)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("callgrind run failed (status %d): %s\n%s" %
                               (p.returncode, repro_command(cmd, preload), p.stderr[-2000:]))
        total = parse_callgrind_total(outf)
        if total is None:
            raise RuntimeError("no totals in callgrind output of " + repro_command(cmd, preload))
        served = _parse_values(p.stdout).get("malloc_from", "?")
        return total, main_self_cost(outf), served, repro_command(cmd, preload)


def run_cg_workloads(sel, allocs, paths, bindir, timeout, reps, log):
    """Total instructions of each workload (quick arguments) under each allocator,
    counted by callgrind (all threads; valgrind runs them one at a time): the median
    of `reps` runs, the allocators interleaved. Threaded workloads vary by about 1 %
    with the scheduling; workloads that wait for time (bench-peak-rss) count what
    the waiting gives."""
    valgrind = _which("valgrind")
    if not valgrind:
        raise SystemExit("--cg-workloads: valgrind not found")
    problems, rows = [], []
    base = "walloc-base" if "walloc-base" in allocs else ("glibc" if "glibc" in allocs else allocs[0])
    for w in sel:
        argv = [str(bindir / PROGRAM.get(w, w))] + CG_ARGS.get(w, WORKLOADS[w][1])
        runs = {a: [] for a in allocs}
        for rep in range(reps):
            for a in allocs:
                env = env_without_preload()
                if paths[a]:
                    env["LD_PRELOAD"] = paths[a]
                with tempfile.TemporaryDirectory(prefix="walloc-cgw-") as tmp:
                    outf = os.path.join(tmp, "callgrind.out")
                    cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=" + outf] + argv
                    try:
                        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
                        total = parse_callgrind_total(outf) if p.returncode == 0 else None
                    except subprocess.TimeoutExpired:
                        total = None
                    if total is None:
                        problems.append("%s under %s: callgrind run failed: %s" % (w, a, repro_command(cmd, paths[a])))
                    else:
                        runs[a].append(total)
                    log("callgrind %-22s rep %d %-11s %s" % (w, rep + 1, a, total))
        counts = {a: statistics.median(v) if len(v) == reps else None for a, v in runs.items()}
        row = [w]
        for a in allocs:
            v = counts.get(a)
            row.append("**FAILED**" if v is None else
                       "%.1f M (%.3fx)" % (v / 1e6, v / counts[base]) if counts.get(base) else "%.1f M" % (v / 1e6))
        rows.append(row)
    md = [md_table(["workload"] + allocs, rows), "",
          "Total instructions of the whole process (start-up and the workload's own checks included), "
          "median of %d runs, ratios to %s. Arguments: --quick's, but %s." %
          (reps, base, "; ".join("%s %s" % (w, " ".join(a)) for w, a in CG_ARGS.items()))]
    return "\n".join(md), problems


def main_self_cost(outf):
    """Instructions executed in bench-fastpath's main() itself (the loop), from
    callgrind_annotate; None when that is not available."""
    ann = _which("callgrind_annotate")
    if not ann:
        return None
    try:
        p = subprocess.run([ann, "--threshold=100", outf], capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in p.stdout.splitlines():
        parts = line.split()
        if parts and ":main [" in line and "bench-fastpath" in line:
            try:
                return int(parts[0].replace(",", ""))
            except ValueError:
                return None
    return None


def run_callgrind(args, fastpath, allocs, paths, log):
    valgrind = _which("valgrind")
    if not valgrind:
        raise SystemExit("--callgrind: valgrind not found")
    ns = [int(x) for x in args.cg_n.split(",")]
    if len(ns) != 2 or ns[0] == ns[1]:
        raise SystemExit("--cg-n wants two different counts, e.g. 100000,200000")
    sizes = [int(x) for x in args.cg_sizes.split(",")]
    table = {}
    loop = {}
    served_by = {}
    problems = []
    for a in allocs:
        for s in sizes:
            try:
                i1, m1, srv1, _ = callgrind_count(valgrind, fastpath, paths[a], ns[0], s,
                                                  args.timeout * 5)
                i2, m2, srv2, cmd2 = callgrind_count(valgrind, fastpath, paths[a], ns[1], s,
                                                     args.timeout * 5)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                problems.append("%s size %d: %s" % (a, s, e))
                log("CALLGRIND FAILED: %s size %d: %s" % (a, s, e))
                table[(a, s)] = None
                continue
            per = (i2 - i1) / (ns[1] - ns[0])
            table[(a, s)] = per
            if m1 is not None and m2 is not None:
                loop[(a, s)] = (m2 - m1) / (ns[1] - ns[0])
            served_by[a] = srv2
            log("callgrind %-9s size %4d: %d / %d instructions -> %.1f per pair, %s in main's "
                "loop (malloc from %s)" % (a, s, i1, i2, per,
                                           "%.1f" % loop[(a, s)] if (a, s) in loop else "?", srv2))
            # make sure the preload took effect
            want = os.path.realpath(paths[a]) if paths[a] else None
            got = os.path.realpath(srv2) if srv2 not in ("?", "") else srv2
            if want and got != want:
                problems.append("%s: malloc came from %s, not %s" % (a, srv2, paths[a]))
            if not want and "libc.so" not in got:
                problems.append("%s: malloc came from %s, not the C library" % (a, srv2))
    header = ["size"] + allocs
    rows = []
    for s in sizes:
        row = ["%d B" % s]
        for a in allocs:
            v = table.get((a, s))
            if v is None:
                row.append("**FAILED**")
            elif table.get(("glibc", s)):
                row.append("%.1f (%.2fx)" % (v, v / table[("glibc", s)]))
            else:
                row.append("%.1f" % v)
        rows.append(row)
    md = [md_table(header, rows), "",
          "Instructions per `p = malloc(size); free(p);` pair = (I(N2) - I(N1)) / (N2 - N1) "
          "with N1=%d, N2=%d, counted by `valgrind --tool=callgrind`. This includes the "
          "benchmark loop itself (main's own instructions per iteration: %s)."
          % (ns[0], ns[1], ", ".join(sorted({"%.1f" % v for v in loop.values()})) or "?"),
          "", "malloc was served by:", ""]
    for a in allocs:
        md.append("- %s: `%s`" % (a, served_by.get(a, "?")))
    if loop:
        rows2 = []
        for s in sizes:
            row = ["%d B" % s]
            for a in allocs:
                v, l = table.get((a, s)), loop.get((a, s))
                row.append("**FAILED**" if v is None else ("%.1f" % (v - l) if l is not None else "?"))
            rows2.append(row)
        md += ["", "Without main's loop (instructions inside malloc and free, PLT stubs included):",
               "", md_table(header, rows2)]
    vals = {a: tuple(table.get((a, s)) for s in sizes) for a in allocs}
    seen = {}
    for a, v in vals.items():
        if None not in v and v in seen.values():
            problems.append("%s has exactly the same counts as %s: preload not effective?"
                            % (a, [b for b, w in seen.items() if w == v]))
        seen[a] = v
    return "\n".join(md), problems


# ---------------------------------------------------------------------------
# main


def _which(name):
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def find_build(arg, log):
    cands = [Path(arg)] if arg else [REPO / "build", REPO / "build-bench"]
    for c in cands:
        c = c if c.is_absolute() else (Path.cwd() / c)
        if (c / "benchmarks" / "bench-live-set").is_file():
            if not arg and c != cands[0]:
                log("note: %s has no benchmark binaries, using %s" % (cands[0], c))
            return c.resolve()
    raise SystemExit("no benchmark binaries in %s (build with: meson setup DIR && ninja -C DIR)"
                     % " or ".join(str(c / "benchmarks") for c in cands))


def git_state():
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", help="build directory (default <repo>/build, then <repo>/build-bench)")
    ap.add_argument("--walloc", help="libwalloc.so to preload (default <repo>/build/libwalloc.so)")
    ap.add_argument("--reps", type=int, help="repetitions per workload and allocator (default 5, 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smaller arguments for a fast smoke run")
    ap.add_argument("--only", help="comma-separated workloads (with or without the bench- prefix)")
    ap.add_argument("--allocators", help="comma-separated subset of glibc,walloc,jemalloc,mimalloc,tcmalloc"
                    " (and walloc-base with --baseline)")
    ap.add_argument("--baseline", help="another libwalloc.so (an earlier commit's build) to run as allocator "
                    "walloc-base beside walloc, for before/after ratios of a change in one interleaved run")
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--json", help="also write every run's raw numbers to this JSON file")
    ap.add_argument("--timeout", type=int, default=120, help="seconds before a run is killed (default 120)")
    ap.add_argument("--direct", action="store_true",
                    help="spawn workloads from Python instead of through bench-spawn "
                         "(peak RSS then has a floor: the driver's own peak RSS, >= ~14 MiB)")
    ap.add_argument("--callgrind", action="store_true",
                    help="count instructions per malloc+free pair with callgrind (alone: only that)")
    ap.add_argument("--timing", action="store_true", help="with --callgrind: also run the timed workloads")
    ap.add_argument("--cg-n", default="100000,200000", help="the two loop counts for --callgrind")
    ap.add_argument("--cg-sizes", default="16,32,64,256", help="sizes for --callgrind")
    ap.add_argument("--cg-workloads", action="store_true",
                    help="also count the instructions of each selected workload (its --quick arguments) "
                    "under callgrind: repeatable where wall times on a shared machine are not")
    ap.add_argument("--cg-reps", type=int, default=3,
                    help="runs per workload and allocator for --cg-workloads; the median is shown (threaded "
                    "workloads vary by about 1 %% from run to run with the scheduling; default 3)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each run's summary line")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    build = find_build(args.build, log)
    bindir = build / "benchmarks"

    # allocators
    walloc = args.walloc
    if walloc:
        walloc = os.path.abspath(walloc)
    else:
        walloc = str(REPO / "build" / "libwalloc.so")
        if not os.path.exists(walloc) and (build / "libwalloc.so").exists():
            log("note: %s does not exist, using %s" % (walloc, build / "libwalloc.so"))
            walloc = str(build / "libwalloc.so")
    known = [("glibc", None), ("walloc", walloc),
             ("jemalloc", str(LIBDIR / "libjemalloc.so.2")),
             ("mimalloc", str(LIBDIR / "libmimalloc.so.2")),
             ("tcmalloc", str(LIBDIR / "libtcmalloc_minimal.so.4"))]
    if args.baseline:
        known.insert(2, ("walloc-base", os.path.abspath(args.baseline)))
    wanted = [a.strip() for a in args.allocators.split(",")] if args.allocators else [a for a, _ in known]
    unknown = set(wanted) - {a for a, _ in known}
    if unknown:
        raise SystemExit("unknown allocator(s): %s" % ", ".join(sorted(unknown)))
    notes = []
    allocs, paths = [], {}
    for name, path in known:
        if name not in wanted:
            continue
        if path and not os.path.exists(path):
            msg = "%s skipped: %s does not exist" % (name, path)
            notes.append(msg)
            log("note: " + msg)
            continue
        allocs.append(name)
        paths[name] = path
    if not allocs:
        raise SystemExit("no allocator to run")
    base = "glibc" if "glibc" in allocs else allocs[0]

    # workloads
    if args.only:
        sel = []
        for w in args.only.split(","):
            w = w.strip()
            if not w:
                continue
            w = w if w.startswith("bench-") else "bench-" + w
            if w not in WORKLOADS:
                raise SystemExit("unknown workload %s (known: %s)" % (w, ", ".join(WORKLOADS)))
            sel.append(w)
    else:
        sel = list(WORKLOADS)
    do_timing = not (args.callgrind or args.cg_workloads) or args.timing
    reps = args.reps if args.reps else (1 if args.quick else 5)

    helper = None if args.direct else str(bindir / SPAWN_HELPER)
    if helper and not os.access(helper, os.X_OK):
        msg = "%s not found: spawning from Python, peak RSS has the driver's own peak RSS as a floor" % helper
        notes.append(msg)
        log("note: " + msg)
        helper = None

    started = datetime.datetime.now().astimezone()
    md = ["# walloc benchmarks", "",
          "- command: `%s`" % shlex.join([sys.executable] + sys.argv),
          "- date: %s" % started.strftime("%Y-%m-%d %H:%M:%S %Z"),
          "- host: %s, %s, %d CPUs; Python %s" % (platform.node(), platform.platform(),
                                                  os.cpu_count() or 0, platform.python_version()),
          "- repo: %s at %s; build dir %s" % (REPO, git_state(), build),
          "- allocators: " + ", ".join("%s (%s)" % (a, paths[a] or "no preload") for a in allocs),
          ]
    if do_timing:
        md += ["- repetitions: %d%s, allocators interleaved and rotated each repetition; "
               "timeout %d s per run" % (reps, " (--quick arguments)" if args.quick else "", args.timeout),
               "- peak RSS: ru_maxrss from wait4 %s" %
               ("in bench-spawn, which forks the workload (so it has no floor from the Python driver)"
                if helper else "on the workload spawned by this driver (floored at the driver's own peak RSS)")]
    load0 = os.getloadavg()
    for n in notes:
        md.append("- note: " + n)
    header_end = len(md)
    md.append("")

    failures = []
    results = {}
    raw = []
    if do_timing:
        t_start = time.time()
        for w in sel:
            wargs = WORKLOADS[w][1] if args.quick else WORKLOADS[w][0]
            argv = [str(bindir / PROGRAM.get(w, w))] + wargs
            if not os.access(argv[0], os.X_OK):
                log("FAILED: %s is missing from %s" % (w, bindir))
                failures.append((w, "all", "binary missing", "", ""))
                continue
            results[w] = {a: [] for a in allocs}
            for rep in range(reps):
                k = rep % len(allocs)
                for a in allocs[k:] + allocs[:k]:
                    r = run_child(argv, paths[a], args.timeout, helper)
                    results[w][a].append(r)
                    raw.append({"workload": w, "allocator": a, "rep": rep + 1, "ok": r.ok,
                                "status": r.status, "wall_s": r.wall, "cpu_s": r.cpu,
                                "maxrss_kib": r.maxrss_kib,
                                "values": r.values, "summary": r.summary_line()})
                    if r.ok:
                        log("%-16s rep %d %-9s %7.3f s %8.1f MiB  %s" % (
                            w, rep + 1, a, r.wall, (r.maxrss_kib or 0) / 1024.0,
                            r.summary_line() if args.verbose else ""))
                    else:
                        cmd = repro_command(argv, paths[a])
                        tail = "\n".join((r.stderr.strip().splitlines() or [""])[-5:])
                        log("\n*** FAILED: %s under %s (rep %d): %s\n*** reproduce: %s\n%s\n" % (
                            w, a, rep + 1, r.status, cmd, tail))
                        failures.append((w, a, r.status, cmd, tail))
        log("timed runs took %.0f s" % (time.time() - t_start))
        load1 = os.getloadavg()
        md.insert(header_end,
                  "- timed runs took %.0f s; load average (1 min) %.2f before, %.2f after (%d CPUs: "
                  "a higher load means other processes competed with the runs and wall times are "
                  "noisy)" % (time.time() - t_start, load0[0], load1[0], os.cpu_count() or 0))

        md += ["## Wall time (median seconds, ratio to %s)" % base, "",
               metric_table(results, sel, allocs, base, lambda r: r.wall, lambda v: "%.3f" % v), "",
               "## CPU time, user + system (median seconds, ratio to %s)" % base, "",
               metric_table(results, sel, allocs, base, lambda r: r.cpu, lambda v: "%.3f" % v), "",
               "## Peak RSS (median MiB of ru_maxrss, ratio to %s)" % base, "",
               metric_table(results, sel, allocs, base, lambda r: r.maxrss_kib,
                            lambda v: "%.1f" % (v / 1024.0)), ""]
        if "walloc" in allocs and "walloc-base" in allocs:
            md += ["## walloc against walloc-base (the --baseline build): ratio of medians, "
                   "above 1 = walloc slower or bigger", "", baseline_table(results, sel), ""]
        rss_rows = []
        for w in sel:
            if PROGRAM.get(w, w) == "bench-peak-rss" and w in results:
                for key in ("rss_peak_kib", "rss_after_free_kib"):
                    rss_rows.append(["%s %s" % (w, key)] + value_row(results, w, allocs, key, base))
        if rss_rows:
            md += ["## bench-peak-rss: resident memory at the peak and after freeing it "
                   "(median KiB, as reported by the workload)", "",
                   md_table(["workload / value"] + allocs, rss_rows), ""]
        if reps > 1:
            md += ["## Wall time spread (min-max seconds, ±half-range as % of median)", "",
                   spread_table(results, sel, allocs), ""]
        md += ["Workload arguments:", ""]
        for w in sel:
            wargs = WORKLOADS[w][1] if args.quick else WORKLOADS[w][0]
            md.append("- `%s %s`: %s" % (w, " ".join(wargs), WORKLOADS[w][2]))
        md.append("")

    if args.cg_workloads:
        cg_md, problems = run_cg_workloads(sel, allocs, paths, bindir, args.timeout * 20, args.cg_reps, log)
        md += ["## Instructions per workload (callgrind, --quick arguments)", "", cg_md, ""]
        for p in problems:
            failures.append(("callgrind workloads", "", p, "", ""))

    if args.callgrind:
        fastpath = str(bindir / "bench-fastpath")
        cg_md, problems = run_callgrind(args, fastpath, allocs, paths, log)
        md += ["## Instructions per malloc+free pair (callgrind)", "", cg_md, ""]
        for p in problems:
            failures.append(("callgrind", "", p, "", ""))

    if failures:
        md += ["## FAILURES", ""]
        for w, a, status, cmd, tail in failures:
            md.append("- **%s under %s: %s**" % (w, a, status))
            if cmd:
                md.append("  - reproduce: `%s`" % cmd)
            if tail:
                md.append("  - stderr: `%s`" % tail.replace("\n", " / ").replace("`", "'"))
        md.append("")
    else:
        md += ["All runs passed their own verification." if do_timing else "No failures.", ""]

    text = "\n".join(md)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        log("wrote %s" % args.out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "date": started.isoformat(), "runs": raw}, f, indent=1)
        log("wrote %s" % args.json)
    if failures:
        log("\n%d FAILURE(S) - see the FAILURES section" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
