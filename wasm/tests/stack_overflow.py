#!/usr/bin/env python3
"""stack_overflow.py: run stack_overflow.js under node and check that the
recursion ended in a report (`--checked`: "stack overflow") or a trap, after
rounds that found the heap intact, and never in "heap corrupted"."""
import subprocess
import sys

js, checked = sys.argv[1], "--checked" in sys.argv[2:]
out = subprocess.run(["node", "--no-experimental-fetch", js], capture_output=True, text=True, timeout=120)
text = out.stdout + out.stderr
rounds = text.count(" ok\n")
fail = []
if out.returncode == 0:
    fail.append("the program finished: the recursion never overflowed")
if "heap corrupted" in text:
    fail.append("a heap block changed under the recursion")
if rounds < 3:
    fail.append(f"only {rounds} rounds ran before the end")
if checked and "stack overflow" not in text:
    fail.append("no 'stack overflow' report")
if not checked and "stack overflow" not in text and "out of bounds" not in text:
    fail.append("neither a report nor a trap")
if fail:
    print("\n".join(fail))
    print(text[-2000:])
    sys.exit(1)
print(f"{rounds} rounds with the heap intact, then: "
      + ("stack overflow reported" if "stack overflow" in text else "trap (memory access out of bounds)"))
