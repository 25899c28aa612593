"""preload.py: what the run_*.py drivers share: the allocators to compare
(preloaded into the same benchmark program) and one timed run of it."""
import os
import re
import subprocess
import sys

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
