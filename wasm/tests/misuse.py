#!/usr/bin/env python3
"""misuse.py: run misuse.js under node once per scenario; each must end in
an abort (non-zero exit, "Aborted" from Emscripten's runtime) right at the
misuse: after "before", never "survived", never "heap corrupted"."""
import subprocess
import sys

js = sys.argv[1]
fail = []
for what in ["double_free", "double_free_large", "interior", "realloc_freed", "never_handed_out"]:
    out = subprocess.run(["node", "--no-experimental-fetch", js, what], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    problems = []
    if "before " + what not in text:
        problems.append("did not start")
    if out.returncode == 0 or "survived" in text:
        problems.append("went on after the misuse")
    if "heap corrupted" in text:
        problems.append("a live block changed")
    if "Aborted" not in text:
        problems.append("no abort")
    if problems:
        fail.append("%s: %s\n%s" % (what, ", ".join(problems), text[-1500:]))
    else:
        print("%s: aborted at the misuse" % what)
if fail:
    print("\n".join(fail))
    sys.exit(1)
