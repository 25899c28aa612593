#!/usr/bin/env python3
"""stats_check.py: walloc's statistics as other programs read them.

    stats_check.py CHECK STATS_PROG MALLOC_INFO_PROG LIBWALLOC VERSION

CHECK is one of:
  json-doc     stats-prog doc prints walloc_stats_json's document: it passes
               through `python3 -m json.tool`, and every section holds the
               figures of what the program used
  exit-json    WALLOC_STATS=json: the exit report on stderr is the document
  stats-file   WALLOC_STATS_FILE with %p: a program and the children it
               forks each write their own file, named with their pid and
               holding their own report (JSON and table); a file that cannot
               be opened is said so on stderr, where the report goes
  table-header WALLOC_STATS=1: the table's first line names the pid and program
  malloc-info  malloc_info under the preloaded library: XML that
               xml.etree parses, in glibc's shape, with non-zero figures
Exit status 0 when the check passes, 1 (with the reasons) when it fails.
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

check, prog, info_prog, libwalloc, version = sys.argv[1:6]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def run(args, env_extra=None, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLOC_") and k != "LD_PRELOAD"}
    env.update(env_extra or {})
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out, err = p.communicate(timeout=120)
    if p.returncode != 0:
        fail(f"{' '.join(args)} exited with {p.returncode}: {err}")
    return p.pid, out, err


def check_document(doc, pid, what, used_everything=True):
    """The keys every document has, and the figures of stats-prog's use."""
    for key in ("version", "walloc", "pid", "program", "heap", "size_classes", "large", "huge", "tiers",
                "scopes", "frames", "pools", "rings", "assets"):
        if key not in doc:
            fail(f"{what}: no '{key}' key")
            return
    if doc["version"] < 1 or doc["walloc"] != version or doc["pid"] != pid or doc["program"] != "stats-prog":
        fail(f"{what}: version {doc['version']}, walloc {doc['walloc']}, pid {doc['pid']} (expected {pid}), "
             f"program {doc['program']!r}")
    heap = doc["heap"]
    for key in ("allocations", "live_blocks", "live_bytes", "mapped_bytes", "rss_bytes"):
        if not isinstance(heap.get(key), int) or heap[key] <= 0:
            fail(f"{what}: heap.{key} = {heap.get(key)!r}, expected a positive integer")
    classes = doc["size_classes"]
    if not classes or any(set(c) != {"block_size", "allocations", "live_blocks", "peak_blocks", "live_bytes"}
                          for c in classes):
        fail(f"{what}: size_classes {classes!r}")
    if sum(c["live_blocks"] for c in classes) + doc["large"]["live_blocks"] + doc["huge"]["live_blocks"] != heap["live_blocks"]:
        fail(f"{what}: the classes' live blocks do not add up to heap.live_blocks")
    if not used_everything:
        return
    if doc["large"]["live_blocks"] < 1:
        fail(f"{what}: large.live_blocks = {doc['large']['live_blocks']}")
    tiers = doc["tiers"]
    for name in ("render", "scene", "entity", "fallback"):
        if tiers.get(name, {}).get("allocations", 0) < 1:
            fail(f"{what}: tiers.{name} = {tiers.get(name)!r}, expected allocations")
    expect = {("scopes", "open"): 1, ("scopes", "entered"): 1, ("frames", "allocations"): 1,
              ("pools", "pools"): 1, ("pools", "objects"): 1, ("rings", "live"): 1}
    for (section, key), least in expect.items():
        if doc[section].get(key, 0) < least:
            fail(f"{what}: {section}.{key} = {doc[section].get(key)!r}, expected at least {least}")
    if "requests" not in doc["assets"]:
        fail(f"{what}: assets has no requests")


def table_header(pid):
    return f"walloc {version} statistics: pid {pid} (stats-prog)"


if check == "json-doc":
    pid, out, _ = run([prog, "doc"])
    tool = subprocess.run([sys.executable, "-m", "json.tool"], input=out, capture_output=True, text=True)
    if tool.returncode != 0:
        fail(f"python3 -m json.tool refuses the document: {tool.stderr.strip()}\n{out[:2000]}")
    else:
        print(tool.stdout[:1500])
        check_document(json.loads(out), pid, "walloc_stats_json")

elif check == "exit-json":
    pid, _, err = run([prog, "exit"], {"WALLOC_STATS": "json"})
    try:
        check_document(json.loads(err), pid, "WALLOC_STATS=json at exit")
        print(f"the exit report of pid {pid} is a JSON document of {len(err)} bytes")
    except json.JSONDecodeError as e:
        fail(f"WALLOC_STATS=json: stderr is not one JSON document ({e}):\n{err[:2000]}")

elif check == "stats-file":
    with tempfile.TemporaryDirectory() as tmp:
        for form in ("json", "1"):
            d = os.path.join(tmp, "form-" + form)
            os.mkdir(d)
            pid, out, err = run([prog, "fork", "3"], {"WALLOC_STATS": form,
                                                      "WALLOC_STATS_FILE": os.path.join(d, "stats.%p.txt")})
            children = [int(x) for x in out.split()]
            if err:
                fail(f"WALLOC_STATS={form} with a file: stderr not empty: {err}")
            want = sorted([pid] + children)
            got = sorted(int(f.split(".")[1]) for f in os.listdir(d))
            if got != want or len(children) != 3:
                fail(f"WALLOC_STATS={form}: files for pids {got}, expected {want}")
            for p in got:
                text = open(os.path.join(d, f"stats.{p}.txt")).read()
                if form == "json":
                    try:
                        check_document(json.loads(text), p, f"file of pid {p}", used_everything=p != pid)
                    except json.JSONDecodeError as e:
                        fail(f"file of pid {p} is not JSON ({e}): {text[:500]}")
                elif text.split("\n")[0] != table_header(p):
                    fail(f"file of pid {p} starts with {text.splitlines()[:1]!r}, expected {table_header(p)!r}")
            print(f"WALLOC_STATS={form}: one file each for pids {got}")
        # a file that cannot be opened: one line on stderr, then the report there
        pid, _, err = run([prog, "exit"], {"WALLOC_STATS": "1",
                                           "WALLOC_STATS_FILE": os.path.join(tmp, "missing", "s.%p")})
        lines = err.splitlines()
        if len(lines) < 2 or "cannot open WALLOC_STATS_FILE" not in lines[0] or \
                os.path.join(tmp, "missing", f"s.{pid}") not in lines[0] or lines[1] != table_header(pid):
            fail(f"an unopenable WALLOC_STATS_FILE: stderr {lines[:2]!r}")
        else:
            print("an unopenable file: " + lines[0])

elif check == "table-header":
    pid, _, err = run([prog, "exit"], {"WALLOC_STATS": "1"})
    first = err.split("\n")[0]
    if first != table_header(pid):
        fail(f"the table starts with {first!r}, expected {table_header(pid)!r}")
    else:
        print(first)

elif check == "malloc-info":
    _, out, _ = run([info_prog], {"LD_PRELOAD": libwalloc})
    try:
        root = ET.fromstring(out)
    except ET.ParseError as e:
        fail(f"malloc_info's output is not XML ({e}):\n{out[:2000]}")
    else:
        heaps = root.findall("heap")
        if root.tag != "malloc" or root.get("version") != "1" or len(heaps) != 1 or heaps[0].get("nr") != "0":
            fail(f"not glibc's shape: <{root.tag} version={root.get('version')}> with {len(heaps)} heaps")
        else:
            sizes = heaps[0].findall("sizes/size")
            if not sizes or sum(int(s.get("count")) for s in sizes) < 100 or \
                    any(int(s.get("from")) > int(s.get("to")) for s in sizes):
                fail(f"<sizes>: {[s.attrib for s in sizes]}")
            for where in (heaps[0], root):
                rest = where.find("total[@type='rest']")
                system = where.find("system[@type='current']")
                if rest is None or int(rest.get("count")) < 100 or int(rest.get("size")) <= 0 or \
                        system is None or int(system.get("size")) <= 0:
                    fail(f"<{where.tag}>: totals missing or zero")
            print(out[:1200])
else:
    fail(f"unknown check {check}")

sys.exit(1 if failures else 0)
