#!/usr/bin/env python3
"""funcsizes.py: code bytes per function of a .wasm built with --profiling-funcs
(the name section names every function), largest first, with totals by
name prefix (wl_, walloc_, other).

  python3 benchmarks/wasm/funcsizes.py build-wasm/wasm/plain_walloc_named.wasm [TOP=40]
  python3 benchmarks/wasm/funcsizes.py --diff BEFORE.wasm AFTER.wasm

--diff prints a Markdown table of the functions whose code size differs
between two builds of one program (largest growth first) and the totals.
"""
import sys


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80:
            return r, i


def functions(path):
    """(code bytes, name) of every function of a .wasm, and its file size."""
    b = open(path, 'rb').read()
    i, imports, bodies, names = 8, 0, [], {}
    while i < len(b):
        sid = b[i]; size, i = leb(b, i + 1); end = i + size
        if sid == 2:                                   # imports: functions count first
            n, j = leb(b, i)
            for _ in range(n):
                for _ in range(2):
                    l, j = leb(b, j); j += l
                kind = b[j]; j += 1
                if kind == 0: _, j = leb(b, j); imports += 1
                elif kind == 1: j += 1; f, j = leb(b, j); _, j = leb(b, j); j = leb(b, j)[1] if f & 1 else j
                elif kind == 2: f, j = leb(b, j); _, j = leb(b, j); j = leb(b, j)[1] if f & 1 else j
                elif kind == 3: j += 2
        elif sid == 10:
            n, j = leb(b, i)
            for _ in range(n):
                l, j = leb(b, j); bodies.append(l); j += l
        elif sid == 0:
            l, j = leb(b, i); nm = b[j:j + l]; j += l
            if nm == b'name':
                while j < end:
                    sub = b[j]; sl, j = leb(b, j + 1); se = j + sl
                    if sub == 1:
                        n, k = leb(b, j)
                        for _ in range(n):
                            idx, k = leb(b, k); l2, k = leb(b, k); names[idx] = b[k:k + l2].decode(); k += l2
                    j = se
        i = end
    return [(s, names.get(imports + k, f'func{imports + k}')) for k, s in enumerate(bodies)], len(b)


def diff(before, after):
    o = {n: s for s, n in functions(before)[0]}
    a = {n: s for s, n in functions(after)[0]}
    rows = sorted(((a.get(n, 0) - o.get(n, 0), n) for n in set(o) | set(a)), key=lambda r: (-r[0], r[1]))
    print('| function | before | after | change |\n|---|---:|---:|---:|')
    for d, n in rows:
        if d:
            print(f'| {n} | {o.get(n, 0)} | {a.get(n, 0)} | {d:+d} |')
    print(f'| **all code** | {sum(o.values())} | {sum(a.values())} | {sum(a.values()) - sum(o.values()):+d} |')


def main():
    if sys.argv[1] == '--diff':
        return diff(sys.argv[2], sys.argv[3])
    rows, size = functions(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    bodies = [s for s, _ in rows]
    rows.sort(reverse=True)
    groups = {}
    for s, n in rows:
        g = 'wl_' if n.startswith('wl_') else 'walloc_' if n.startswith('walloc_') else 'other'
        groups[g] = groups.get(g, 0) + s
    print(f'{size} bytes in all, {sum(bodies)} of code in {len(bodies)} functions; '
          + ', '.join(f'{g}* {v}' for g, v in sorted(groups.items())))
    for s, n in rows[:top]:
        print(f'{s:7} {n}')


if __name__ == '__main__':
    main()
