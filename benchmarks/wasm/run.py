#!/usr/bin/env python3
"""run.py: issue 7's wasm benchmark: walloc against Emscripten's dlmalloc and
emmalloc on the same workload (workload.c), built with emcc -O2.

  NODE_PATH=/usr/share/nodejs python3 benchmarks/wasm/run.py [--build-wasm DIR] [--runs N]

Builds workload.c and trivial.c three ways into DIR/bench-wasm/ (DIR is the
wasm build directory holding libwalloc.a, default build-wasm), runs each
allocator's workload N times (default 5) interleaved under node, and prints
the median time, the peak linear memory (memory.buffer size at exit) and the
.wasm sizes. trivial.wasm differs between allocators only by the allocator,
so its size difference estimates the allocator's own code; trivial-none.wasm
(a bump-pointer stub, bump_stub.c) is the module without a real allocator,
and the last column is each allocator's own code: trivial minus that.

Memory grows through emscripten_resize_heap, which over-allocates by 20 %
(at most 96 MiB) per growth, so the peak moves in coarse steps and can
differ from run to run (walloc's purge decisions follow the clock): the
table gives the median and the largest. --exact-growth builds with
-sMEMORY_GROWTH_GEOMETRIC_STEP=0, so memory grows by what is asked and the
peak shows the allocator's own footprint. --pthreads builds all three with
-pthread (shared memory, locks in dlmalloc and emmalloc); give it walloc's
pthreads build with --build-wasm (meson -Dwasm_pthreads=true). The workload
itself stays single-threaded: this measures what thread safety costs.
"""
import argparse, os, re, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COMMON = ['-O2', '-sALLOW_MEMORY_GROWTH=1', '-sMAXIMUM_MEMORY=4GB']
ALLOCATORS = {
    'dlmalloc': ['-sMALLOC=dlmalloc'],
    'emmalloc': ['-sMALLOC=emmalloc'],
    'walloc': ['-sMALLOC=none', '-DWITH_WALLOC', '-I' + os.path.join(ROOT, 'include')],
}


def build(out, build_dir, common):
    os.makedirs(out, exist_ok=True)
    lib = os.path.join(build_dir, 'libwalloc.a')
    if not os.path.exists(lib):
        sys.exit(f'{lib} missing: build the wasm library first (ninja -C {build_dir})')
    for name, flags in ALLOCATORS.items():
        extra = [lib] if name == 'walloc' else []
        for prog in ('workload', 'trivial'):
            js = os.path.join(out, f'{prog}-{name}.js')
            subprocess.run(['emcc'] + common + flags + [os.path.join(HERE, prog + '.c')] + extra
                           + ['-o', js], check=True)
    subprocess.run(['emcc'] + common + ['-sMALLOC=none', os.path.join(HERE, 'trivial.c'),
                    os.path.join(HERE, 'bump_stub.c'), '-o', os.path.join(out, 'trivial-none.js')],
                   check=True)


def run(js, mode):
    r = subprocess.run(['node', '--no-experimental-fetch', js, mode],
                       check=True, capture_output=True, text=True)
    m = re.search(r'time_ms=([\d.]+) peak_bytes=(\d+)', r.stdout)
    if not m:
        sys.exit(f'{js} {mode}: unexpected output {r.stdout!r} {r.stderr!r}')
    return float(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-wasm', default=os.path.join(ROOT, 'build-wasm'))
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--exact-growth', action='store_true')
    ap.add_argument('--pthreads', action='store_true',
                    help='build all three with -pthread (shared memory); pass the pthreads '
                         'variant of walloc with --build-wasm (e.g. build-wasm-mt)')
    a = ap.parse_args()
    common = COMMON + (['-sMEMORY_GROWTH_GEOMETRIC_STEP=0'] if a.exact_growth else []) \
        + (['-pthread', '-Wno-pthreads-mem-growth'] if a.pthreads else [])
    out = os.path.join(a.build_wasm, 'bench-wasm' + ('-exact' if a.exact_growth else '')
                       + ('-mt' if a.pthreads else ''))
    if not a.no_build:
        build(out, a.build_wasm, common)
    MiB = 1 << 20
    print(f'{"allocator":10} {"workload":8} {"median ms":>10} {"min ms":>8} {"peak MiB":>9} {"(max)":>6} '
          f'{"workload.wasm":>14} {"trivial.wasm":>13} {"allocator":>10}')
    base = os.path.getsize(os.path.join(out, 'trivial-none.wasm'))
    for mode in ('mix', 'tiers'):
        times = {n: [] for n in ALLOCATORS}
        peaks = {n: [] for n in ALLOCATORS}
        for _ in range(a.runs):                      # interleaved: drift hits all alike
            for n in ALLOCATORS:
                t, p = run(os.path.join(out, f'workload-{n}.js'), mode)
                times[n].append(t)
                peaks[n].append(p)
        for n in ALLOCATORS:
            ws = os.path.getsize(os.path.join(out, f'workload-{n}.wasm'))
            ts = os.path.getsize(os.path.join(out, f'trivial-{n}.wasm'))
            label = 'tier+reset' if (mode == 'tiers' and n == 'walloc') else mode
            print(f'{n:10} {label:10} {statistics.median(times[n]):8.1f} {min(times[n]):8.1f} '
                  f'{statistics.median(peaks[n]) / MiB:9.1f} {max(peaks[n]) / MiB:6.0f} {ws:14,} {ts:13,} {ts - base:10,}')


if __name__ == '__main__':
    main()
