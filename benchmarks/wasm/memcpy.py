#!/usr/bin/env python3
"""memcpy.py: walloc_memcpy on WebAssembly (SIMD128) against native and
against a byte loop: the product notes' "Native (AVX2) vs WASM (SIMD128)"
table, measured, plus the byte-loop and libc ratios on both sides.

  NODE_PATH=/usr/share/nodejs python3 benchmarks/wasm/memcpy.py \
      [--build DIR] [--build-wasm DIR] [--rounds N] [--sizes a,b,...]

Builds benchmarks/wasm/memcpy.c with emcc -O2 -msimd128 against
DIR-wasm/libwalloc.a (a build with the default -Dwasm_simd=true), runs it
under node twice: with V8's default tiering, and with --no-liftoff (every
function compiled by the optimising compiler at once). With default tiering
a small noinline loop like the byte loop can stay in the baseline compiler
(Liftoff), which made it 3-6x slower than optimised code here, so the
byte-loop ratio is given both ways. Then runs the native
DIR/benchmarks/bench-memcpy on the same sizes (all in one invocation, so
they share the machine's state). Prints MB/s (10^6 bytes/s) and ratios.
"""
import argparse, csv, io, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SIZES = '6,8,13,14,19,27,32,64,100,256,1024,4096,16384,65536'


def parse(text):
    rows = {}
    for r in csv.DictReader(io.StringIO(text)):
        rows[(int(r['size']), r['variant'])] = float(r['best_mbps'] if 'best_mbps' in r else r['mbps'])
    return rows


def fmt_size(n):
    return f'{n >> 10} KiB' if n >= 1024 and n % 1024 == 0 else f'{n} B'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--build-wasm', default=os.path.join(ROOT, 'build-wasm'))
    ap.add_argument('--rounds', type=int, default=11)
    ap.add_argument('--sizes', default=DEFAULT_SIZES)
    a = ap.parse_args()
    lib = os.path.join(a.build_wasm, 'libwalloc.a')
    native = os.path.join(a.build, 'benchmarks', 'bench-memcpy')
    for f in (lib, native):
        if not os.path.exists(f):
            sys.exit(f'{f} missing: build it first')
    out = os.path.join(a.build_wasm, 'bench-wasm')
    os.makedirs(out, exist_ok=True)
    js = os.path.join(out, 'memcpy.js')
    subprocess.run(['emcc', '-O2', '-msimd128', '-sMALLOC=none', '-sALLOW_MEMORY_GROWTH=1',
                    '-I' + os.path.join(ROOT, 'include'), '-I' + os.path.join(ROOT, 'lib'),
                    os.path.join(HERE, 'memcpy.c'), lib, '-o', js], check=True)
    wasm = {}
    for mode, flags in (('tiered', []), ('turbofan', ['--no-liftoff'])):
        r = subprocess.run(['node', '--no-experimental-fetch'] + flags + [js, str(a.rounds), a.sizes],
                           check=True, capture_output=True, text=True)
        wasm[mode] = parse(r.stdout)
        kernel = r.stderr.strip()
    with tempfile.NamedTemporaryFile(suffix='.csv') as tmp:
        subprocess.run([native, '--rounds', str(a.rounds), '--sizes', a.sizes, '--csv', tmp.name],
                       check=True, capture_output=True, text=True)
        nat = parse(open(tmp.name).read())
    print(f'wasm: {kernel} (node {subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()}); '
          f'best of {a.rounds} rounds, MB/s')
    print()
    print('| size | native walloc | wasm walloc | native/wasm | wasm libc memcpy | wasm walloc/libc '
          '| wasm byte loop (TurboFan) | wasm walloc/byte | wasm walloc/byte (default tiering) '
          '| native byte loop | native walloc/byte |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for n in [int(x) for x in a.sizes.split(',')]:
        w = wasm['turbofan']
        wt = wasm['tiered']
        nw, ww = nat[(n, 'walloc')], w[(n, 'walloc')]
        print(f'| {fmt_size(n)} | {nw:,.0f} | {ww:,.0f} | {nw / ww:.1f} | {w[(n, "libc")]:,.0f} | '
              f'{ww / w[(n, "libc")]:.2f} | {w[(n, "byte loop")]:,.0f} | {ww / w[(n, "byte loop")]:.1f} | '
              f'{wt[(n, "walloc")] / wt[(n, "byte loop")]:.1f} | {nat[(n, "byte loop")]:,.0f} | '
              f'{nw / nat[(n, "byte loop")]:.1f} |')


if __name__ == '__main__':
    main()
