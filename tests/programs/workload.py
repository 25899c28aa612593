"""workload.py: a deterministic Python workload that allocates a lot.

Large dicts, lists and strings, sorting, a JSON round trip, threads and a
subprocess. Prints results (digests and samples) that must not depend on the
allocator. Run with PYTHONHASHSEED=0 so set iteration order is fixed.
"""
import hashlib
import json
import random
import subprocess
import sys
import threading
import zlib
from collections import Counter, OrderedDict, defaultdict, deque


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def section(name, value):
    print(f"{name}: {value}")


rng = random.Random(20240611)

# --- big dicts and lists -----------------------------------------------------
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
         for _ in range(120_000)]
section("words", digest(words))
counts = Counter(words)
section("distinct words", len(counts))
section("most common", counts.most_common(5))

index = defaultdict(list)
for i, w in enumerate(words):
    index[w[:2]].append(i)
section("prefix buckets", len(index))
section("bucket sizes", digest(sorted((k, len(v)) for k, v in index.items())))

table = {i: (str(i) * (i % 7 + 1), float(i) / 3, [i] * (i % 5)) for i in range(200_000)}
for i in range(0, 200_000, 3):
    del table[i]
for i in range(200_000, 260_000):
    table[i] = ("x" * (i % 50), i)
section("table", (len(table), digest(list(table.items())[::997])))

# --- sorting ------------------------------------------------------------------
nums = [rng.randrange(-10**9, 10**9) for _ in range(300_000)]
section("sorted nums", digest(sorted(nums)[::1000]))
section("sorted words", digest(sorted(words, key=lambda w: (len(w), w[::-1]))[::500]))
records = [{"id": i, "name": words[i], "score": nums[i] % 1000} for i in range(100_000)]
records.sort(key=lambda r: (r["score"], r["name"], r["id"]))
section("sorted records", digest([r["id"] for r in records[::250]]))

# --- strings ------------------------------------------------------------------
big = "".join(f"{w}:{n};" for w, n in zip(words, nums))
section("big string", (len(big), hashlib.sha256(big.encode()).hexdigest()[:16]))
parts = big.split(";")
section("split/join", len(";".join(reversed(parts))))
replaced = big.replace("a", "AAAA").upper().lower()
section("replace", hashlib.md5(replaced.encode()).hexdigest())
section("zlib", len(zlib.compress(big.encode(), 6)))
buf = bytearray()
for i in range(50_000):
    buf += words[i].encode() * (i % 4)
    if i % 1000 == 0:
        del buf[: len(buf) // 3]
section("bytearray", (len(buf), hashlib.sha1(buf).hexdigest()[:16]))

# --- JSON round trip ----------------------------------------------------------
doc = {
    "records": records[:40_000],
    "nested": [{"k": i, "v": [str(j) * 3 for j in range(i % 20)], "d": {"a": i / 7}} for i in range(20_000)],
    "text": big[:200_000],
}
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
section("json", (len(text), back == doc, hashlib.sha256(text.encode()).hexdigest()[:16]))
text2 = json.dumps(back, sort_keys=True, indent=1)
section("json indent", (len(text2), json.loads(text2) == doc))

# --- churn: many objects of many sizes, freed out of order --------------------
live = deque()
total = 0
for i in range(200_000):
    size = (i * 7919) % 4000 + 1
    live.append(b"z" * size)
    total += size
    if len(live) > 5000:
        total -= len(live.popleft())
    if i % 3 == 0 and live:
        live.rotate(17)
section("churn", (len(live), total))
od = OrderedDict((i, str(i)) for i in range(50_000))
for i in range(0, 50_000, 2):
    od.move_to_end(i)
section("ordereddict", digest(list(od)[:100]))

# --- threads ------------------------------------------------------------------
results = [None] * 8
lock = threading.Lock()
shared = []


def worker(n):
    r = random.Random(n)
    local = {}
    for i in range(40_000):
        key = f"{n}-{r.randrange(5000)}"
        local[key] = local.get(key, "") + chr(65 + i % 26)
        if i % 5000 == 0:
            with lock:
                shared.append((n, i))
    results[n] = digest(sorted(local.items()))


threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
section("threads", results)
section("shared", sorted(shared) == sorted((n, i) for n in range(8) for i in range(0, 40_000, 5000)))

# --- a subprocess ----------------------------------------------------------------
child_code = (
    "import sys, json\n"
    "data = json.load(sys.stdin)\n"
    "data.sort(key=lambda r: (r['score'], r['id']))\n"
    "json.dump([r['id'] for r in data], sys.stdout)\n"
)
payload = json.dumps(records[:30_000])
proc = subprocess.run([sys.executable, "-c", child_code], input=payload, capture_output=True,
                      text=True, check=True)
ids = json.loads(proc.stdout)
section("subprocess", (len(ids), digest(ids[::100]), proc.stderr))
proc = subprocess.run(["sort", "-n"], input="\n".join(str(n) for n in nums[:50_000]) + "\n",
                      capture_output=True, text=True, check=True)
section("sort subprocess", digest(proc.stdout.split()[::100]))
print("done")
