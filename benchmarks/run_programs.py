#!/usr/bin/env python3
"""run_programs.py: real programs under glibc, walloc, jemalloc, mimalloc and tcmalloc.

    python3 benchmarks/run_programs.py --build build --walloc $PWD/build/libwalloc.so --reps 5

The synthetic workloads of run.py show where an allocator stands; this shows
what a user of LD_PRELOAD=libwalloc.so gets: the same unmodified Debian
programs, each allocator preloaded in turn, interleaved and rotated every
repetition, wall time, CPU time and peak RSS as medians with ratios to glibc.

  python     /usr/bin/python3 benchmarks/programs/pywork.py (JSON, dicts,
             sets, object trees, regex, zlib, sorting)
  python-malloc  the same with PYTHONMALLOC=malloc: every object, even the
             small ones Python otherwise keeps in its own pools, from malloc
  sqlite     sqlite3 building and querying a 300,000-row database
  gcc        gcc -O2 -c of a generated 500-function C file (driver + cc1 + as)
  git-repack git repack -adf of a generated repository (pack-objects, 2 threads)
  git-log    git log -p over the same repository
  shell      bash starting 300 short processes (every one of them loads the
             preloaded allocator: what a build or a shell script pays)
  redis      redis-server (linked against jemalloc by Debian, so its glibc
             column preloads benchmarks/libc-malloc-shim.c) loaded with 50,000
             keys through redis-cli --pipe, then redis-benchmark with 50
             clients (the clients run without a preload); wall time is the
             clients', peak RSS the server's, plus the server's RSS 1 s and
             5 s after FLUSHALL (the server idle)

--also NAME=LIB[,VAR=VALUE...] adds a column with LIB preloaded: with
build/benchmarks/libempty-preload.so (a library that replaces nothing) it
shows what LD_PRELOAD itself costs, the floor under every preloaded
allocator (for redis it preloads into Debian's jemalloc-linked server).

Peak RSS is ru_maxrss from wait4 in bench-spawn (a program's children
included). The machine is a shared 2-core VM: compare ratios within one run.
"""
import argparse
import datetime
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (run.py: run_child, Result, tables, git_state)

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PROGRAMS = {
    "python": "/usr/bin/python3",
    "python-malloc": "/usr/bin/python3",
    "sqlite": "/usr/bin/sqlite3",
    "gcc": "/usr/bin/gcc",
    "git-repack": "/usr/bin/git",
    "git-log": "/usr/bin/git",
    "shell": "/bin/bash",
    "redis": "/usr/bin/redis-server",
}
PACKAGES = {"python": "python3", "python-malloc": "python3", "sqlite": "sqlite3", "gcc": "gcc", "git-repack": "git",
            "git-log": "git", "shell": "bash", "redis": "redis-server redis-tools"}

SQLITE_JOB = """
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, item TEXT, qty INT, price REAL, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
INSERT INTO orders(customer, item, qty, price, note)
  SELECT 'customer-' || (i * 7919 % 5000), 'item-' || (i * 104729 % 1200), 1 + i % 17, (i % 1000) / 10.0,
         substr(hex(randomblob(8)) || hex(i * 31), 1, 4 + i % 40) FROM n;
CREATE INDEX by_customer ON orders(customer);
CREATE INDEX by_item ON orders(item, qty);
SELECT count(*), count(DISTINCT customer), round(sum(qty * price), 2) FROM orders;
SELECT item, sum(qty) AS units FROM orders GROUP BY item ORDER BY units DESC, item LIMIT 3;
SELECT customer, length(group_concat(item, ',')), count(*) FROM orders GROUP BY customer ORDER BY 3 DESC, 1 LIMIT 3;
SELECT count(*) FROM (SELECT note FROM orders ORDER BY note, id);
UPDATE orders SET note = note || '-' || qty WHERE id % 3 = 0;
DELETE FROM orders WHERE qty < 4;
SELECT count(*), sum(length(note)) FROM orders;
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_inputs(tmp):
    """Inputs every run reads, made once, without any preload."""
    env = common.env_without_preload()
    (tmp / "job.sql").write_text(SQLITE_JOB)
    with open(tmp / "gen.c", "w") as f:
        subprocess.run(["awk", "-v", "N=500", "-f", str(REPO / "tests/programs/gen_c.awk")],
                       stdout=f, check=True, env=env)
    # A repository: 600 files, 120 commits each touching 40 of them.
    repo = tmp / "repo"
    repo.mkdir()
    genv = dict(env, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.invalid",
                GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.invalid",
                GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=genv)
    x = 12345
    for c in range(120):
        for k in range(40):
            x = (x * 1103515245 + 12345) % 2147483648
            i = (x >> 8) % 600
            p = repo / ("d%02d" % (i % 20)) / ("f%03d.txt" % i)
            p.parent.mkdir(exist_ok=True)
            lines = p.read_text().splitlines() if p.exists() else []
            pos = (x >> 4) % (len(lines) + 1)
            lines[pos:pos] = ["commit %d change %d: %s" % (c, k, "word " * ((x >> 12) % 30))] * (1 + x % 5)
            p.write_text("\n".join(lines) + "\n")
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=genv)
        subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "commit %d" % c], check=True, env=genv)
    # The Redis data, as the protocol (deterministic).
    with open(tmp / "load.resp", "wb") as out:
        x = 777
        for i in range(50000):
            x = (x * 1103515245 + 12345) % 2147483648
            k = i % 5
            if k < 3:
                args = [b"SET", b"s:%d" % i, b"v" * (8 + (x >> 8) % 600)]
            elif k == 3:
                args = [b"HSET", b"h:%d" % (i % 2000)] + [b"f%d" % (x % 97), b"x" * (1 + (x >> 9) % 200)]
            else:
                args = [b"RPUSH", b"l:%d" % (i % 500), b"e" * (1 + (x >> 7) % 120)]
            out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return repo


def argv_for(w, tmp, repo):
    return {
        "python": ["/usr/bin/python3", str(HERE / "programs/pywork.py"), "1"],
        "python-malloc": ["/usr/bin/env", "PYTHONMALLOC=malloc", "/usr/bin/python3",
                          str(HERE / "programs/pywork.py"), "1"],
        "sqlite": ["/usr/bin/sqlite3", str(tmp / "run.db"), ".read %s" % (tmp / "job.sql")],
        "gcc": ["/usr/bin/gcc", "-O2", "-w", "-c", str(tmp / "gen.c"), "-o", str(tmp / "gen.o")],
        "git-repack": ["/usr/bin/git", "-C", str(repo), "-c", "pack.threads=2", "repack", "-adfq",
                       "--window=50"],
        "git-log": ["/usr/bin/git", "-C", str(repo), "log", "-p", "--output=/dev/null"],
        "shell": ["/bin/bash", "-c", "for i in $(seq 150); do /bin/true; x=$(echo $i); done"],
    }[w]


def redis_cli(sock, *args, stdin=None, timeout=120):
    env = common.env_without_preload()
    return subprocess.run(["redis-cli", "-s", str(sock)] + list(args), stdin=stdin, env=env,
                          capture_output=True, text=True, timeout=timeout)


def info_rss(sock):
    for line in redis_cli(sock, "INFO", "memory").stdout.splitlines():
        if line.startswith("used_memory_rss:"):
            return int(line.split(":")[1]) // 1024
    return None


def run_redis(preload, tmp, helper, timeout, env_extra=None):
    """One redis run: a Result with wall (the clients' time), maxrss_kib (the
    server's peak) and values['rss_1s_after_flush_kib'], ['rss_5s_after_flush_kib']."""
    res = common.Result()
    sock, rep = tmp / "redis.sock", tmp / "redis.report"
    for f in (sock, rep):
        f.unlink(missing_ok=True)
    env = common.env_without_preload()
    server = subprocess.Popen(
        [helper, "-t", str(timeout), "-p", preload or "", "-o", str(rep), "--", "/usr/bin/redis-server",
         "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(tmp), "--logfile", str(tmp / "redis.log")],
        env=dict(env, **(env_extra or {})), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if sock.exists() and redis_cli(sock, "PING").stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        else:
            res.status = "server did not start"
            return res
        t0 = time.perf_counter()
        with open(tmp / "load.resp", "rb") as f:
            load = subprocess.run(["redis-cli", "-s", str(sock), "--pipe"], stdin=f, env=env,
                                  capture_output=True, timeout=timeout)
        bench = subprocess.run(["redis-benchmark", "-s", str(sock), "-n", "100000", "-c", "50", "-P", "8",
                                "-r", "100000", "-d", "200", "-q", "-t",
                                "set,get,incr,lpush,rpop,sadd,hset,spop,zadd,lrange_100,mset"],
                               env=env, capture_output=True, timeout=timeout)
        res.wall = time.perf_counter() - t0
        if load.returncode or b"errors: 0" not in load.stdout or bench.returncode:
            res.status = "client failed: %s %s" % (load.stdout[-200:], bench.stderr[-200:])
            return res
        redis_cli(sock, "FLUSHALL")
        time.sleep(1.0)
        res.values["rss_1s_after_flush_kib"] = str(info_rss(sock))
        time.sleep(4.0)
        res.values["rss_5s_after_flush_kib"] = str(info_rss(sock))
        redis_cli(sock, "SHUTDOWN", "NOSAVE")
        server.wait(timeout=60)
        report = common._parse_values(common._read(rep).replace(" ", "\n"))
        if not report or report.get("exit") != "0" or report.get("signal") != "0":
            res.status = "server: %s %s" % (report, server.stderr.read().decode(errors="replace")[-300:])
            return res
        res.maxrss_kib = int(report["maxrss_kib"])
        res.cpu = float(report["utime_s"]) + float(report["stime_s"])
        res.ok, res.status = True, "ok"
        return res
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", help="build directory with benchmarks/bench-spawn (default <repo>/build)")
    ap.add_argument("--walloc", help="libwalloc.so to preload (default <build>/libwalloc.so)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(PROGRAMS))
    ap.add_argument("--allocators", help="comma-separated subset of glibc,walloc,jemalloc,mimalloc,tcmalloc")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=LIB[,VAR=VALUE...]",
                    help="one more column: LIB preloaded, with the variables given set (e.g. "
                         "empty=build/benchmarks/libempty-preload.so, what LD_PRELOAD itself costs; or a "
                         "second walloc build)")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--out", help="also write the markdown report to this file")
    args = ap.parse_args()

    build = Path(args.build or REPO / "build").resolve()
    helper = build / "benchmarks" / "bench-spawn"
    shim = build / "benchmarks" / "libc-malloc-shim.so"
    walloc = args.walloc or str(build / "libwalloc.so")
    for f in (helper, shim, Path(walloc)):
        if not f.exists():
            raise SystemExit("%s not found (build with: meson setup %s && ninja -C %s)" % (f, build, build))
    paths = {"glibc": None, "walloc": walloc}
    for name, lib in (("jemalloc", "libjemalloc.so.2"), ("mimalloc", "libmimalloc.so.2"),
                      ("tcmalloc", "libtcmalloc_minimal.so.4")):
        p = Path(common.LIBDIR) / lib
        if p.exists():
            paths[name] = str(p)
    also = common.parse_also(args.also, paths)
    envs = {name: sets for name, (_, sets) in also.items()}  # variables set for that column's runs
    paths.update({name: lib for name, (lib, _) in also.items()})
    allocs = [a for a in (args.allocators.split(",") if args.allocators else paths) if a in paths]
    allocs += [name for name in also if name not in allocs]
    sel = args.only.split(",") if args.only else list(PROGRAMS)
    for w in sel:
        if w not in PROGRAMS:
            raise SystemExit("unknown workload %s (known: %s)" % (w, ", ".join(PROGRAMS)))
        if not os.access(PROGRAMS[w], os.X_OK) or (w == "redis" and not shutil.which("redis-benchmark")):
            raise SystemExit("%s is missing: apt-get install %s" % (PROGRAMS[w], PACKAGES[w]))

    tmp = Path(tempfile.mkdtemp(prefix="walloc-programs-"))
    try:
        log("making inputs in %s" % tmp)
        repo = make_inputs(tmp)
        started = datetime.datetime.now().astimezone()
        load0 = os.getloadavg()[0]
        t_start = time.time()
        results, failures = {}, []
        for w in sel:
            results[w] = {a: [] for a in allocs}
            for rep in range(args.reps):
                k = rep % len(allocs)
                for a in allocs[k:] + allocs[:k]:
                    if w == "redis":
                        pre = str(shim) if a == "glibc" else paths[a]
                        r = run_redis(pre, tmp, str(helper), args.timeout, envs.get(a))
                    else:
                        (tmp / "run.db").unlink(missing_ok=True)
                        r = common.run_child(argv_for(w, tmp, repo), paths[a], args.timeout, str(helper),
                                             envs.get(a))
                    results[w][a].append(r)
                    if r.ok:
                        log("%-10s rep %d %-9s %7.3f s %8.1f MiB" % (w, rep + 1, a, r.wall, r.maxrss_kib / 1024))
                    else:
                        log("*** FAILED: %s under %s: %s\n%s" % (w, a, r.status, r.stderr[-500:]))
                        failures.append((w, a, r.status))
        took = time.time() - t_start
        load1 = os.getloadavg()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    md = ["# walloc: real programs", "",
          "- command: `%s`" % shlex.join([sys.executable] + sys.argv),
          "- date: %s" % started.strftime("%Y-%m-%d %H:%M:%S %Z"),
          "- host: %s, %s, %d CPUs" % (platform.node(), platform.platform(), os.cpu_count() or 0),
          "- repo: %s at %s" % (REPO, common.git_state()),
          "- allocators: " + ", ".join("%s (%s)" % (a, paths[a] or "no preload; redis: libc-malloc-shim.so")
                                       + "".join(" %s=%s" % kv for kv in envs.get(a, {}).items())
                                       for a in allocs),
          "- repetitions: %d, allocators interleaved and rotated; runs took %.0f s; load average "
          "(1 min) %.2f before, %.2f after" % (args.reps, took, load0, load1), "",
          "## Wall time (median seconds, ratio to glibc)", "",
          common.metric_table(results, sel, allocs, "glibc", lambda r: r.wall, lambda v: "%.3f" % v), "",
          "## CPU time, user + system (median seconds, ratio to glibc; redis: the server's)", "",
          common.metric_table(results, sel, allocs, "glibc", lambda r: r.cpu, lambda v: "%.3f" % v), "",
          "## Peak RSS (median MiB of ru_maxrss, ratio to glibc)", "",
          common.metric_table(results, sel, allocs, "glibc", lambda r: r.maxrss_kib,
                              lambda v: "%.1f" % (v / 1024.0)), ""]
    if "redis" in results:
        md += ["## redis-server RSS 1 s and 5 s after FLUSHALL (median KiB)", "",
               common.md_table(["value"] + allocs,
                               [[k] + common.value_row(results, "redis", allocs, k, "glibc")
                                for k in ("rss_1s_after_flush_kib", "rss_5s_after_flush_kib")]), ""]
    if args.reps > 1:
        md += ["## Wall time spread (min-max seconds, ±half-range as % of median)", "",
               common.spread_table(results, sel, allocs), ""]
    if failures:
        md += ["## FAILURES", ""] + ["- %s under %s: %s" % f for f in failures] + [""]
    text = "\n".join(md)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        log("wrote %s" % args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
