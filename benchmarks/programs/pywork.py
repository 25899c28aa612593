"""pywork.py: an allocation-heavy Python workload for run_programs.py.

Python serves objects up to 512 bytes from its own pools (pymalloc); what
reaches malloc is everything larger and every growing buffer: dict and set
tables, list arrays, long strings and bytes, JSON text. This script makes
plenty of both kinds, deterministically, and prints a checksum so a wrong
result would show.

    python3 pywork.py [SCALE]     # SCALE 1 takes about a second
"""
import json
import re
import sys
import zlib

scale = int(sys.argv[1]) if len(sys.argv) > 1 else 1
check = 0

class Node:
    __slots__ = ("key", "children", "payload")

    def __init__(self, key, payload):
        self.key = key
        self.children = []
        self.payload = payload

x = 12345
def rnd(n):
    global x
    x = (x * 1103515245 + 12345) % 2147483648
    return (x >> 8) % n

for round_ in range(scale):
    # Records: dicts, lists and strings of every size, JSON out and back.
    records = []
    for i in range(40000):
        records.append({
            "id": i,
            "name": "user-%06d" % rnd(1000000),
            "tags": ["t%d" % rnd(50) for _ in range(rnd(8))],
            "bio": "lorem ipsum " * rnd(60),
            "scores": [rnd(1000) for _ in range(rnd(30))],
        })
    text = json.dumps(records)
    back = json.loads(text)
    check ^= len(text) ^ sum(len(r["bio"]) for r in back)

    # An index: big dict and set tables, grown and shrunk.
    index = {}
    for r in back:
        for t in r["tags"]:
            index.setdefault(t, set()).add(r["id"])
    check ^= sum(len(v) for v in index.values())
    by_name = {r["name"]: r for r in back}
    for k in list(by_name)[::3]:
        del by_name[k]
    check ^= len(by_name)

    # A tree of objects, then torn down.
    root = Node(0, b"")
    nodes = [root]
    for i in range(1, 60000):
        n = Node(i, bytes(rnd(200)))
        nodes[rnd(len(nodes))].children.append(n)
        nodes.append(n)
    check ^= sum(len(n.children) for n in nodes) ^ sum(len(n.payload) for n in nodes)
    del nodes, root

    # Text processing: a growing document, regex, split, join, compression.
    parts = []
    for i in range(20000):
        parts.append("line %d: %s %s\n" % (i, "word" * rnd(20), "x" * rnd(300)))
    doc = "".join(parts)
    words = re.findall(r"[a-z]+", doc)
    check ^= len(words) ^ len(doc.split("\n"))
    packed = zlib.compress(doc.encode(), 6)
    check ^= len(zlib.decompress(packed)) ^ len(packed)

    # Sorting and large temporary lists.
    keys = [(rnd(1000), "k%d" % rnd(100000), i) for i in range(150000)]
    keys.sort()
    check ^= keys[len(keys) // 2][2]
    del records, back, text, index, by_name, parts, doc, words, keys

print("pywork checksum %d" % check)
