#!/usr/bin/env python3
"""options_check.py: walloc's option table against its documentation and
its reports.

  options_check.py doc TABLE DOCS        docs/options.md's generated table is the table's
  options_check.py write TABLE DOCS      rewrite that part of docs/options.md from the table
  options_check.py reports TABLE LIB     every bad setting of every option, under a
                                         preloaded /bin/true: one clear line each, exit 0

TABLE is the options-table program (tests/options_table.c), which prints
lib/core/core.h's table; LIB is libwalloc.so.
"""
import os
import subprocess
import sys

BEGIN = '<!-- options table: generated from lib/core/core.h by `tests/options_check.py write`; checked by the test options-doc -->'
END = '<!-- end of the options table -->'
READ = {'start': 'start', 'tiers': 'tier set-up', 'assets': 'first asset call'}


def table(program):
    out = subprocess.run([program], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        name, kind, d, wd, lo, hi, group, runtime, extra, doc = line.split('\t')
        rows.append(dict(name=name, kind=kind, d=int(d), wd=int(wd), lo=int(lo), hi=int(hi), group=group,
                         runtime=runtime == '1', extra=extra, doc=doc))
    return rows


def shown(o, v):
    if o['kind'] == 'bool':
        return 'yes' if v else 'no'
    if o['kind'] == 'choice':
        return o['extra'].split(',')[v]
    if o['kind'] == 'size' and v > 0 and v % 1024 == 0:
        for shift, suffix in ((30, 'G'), (20, 'M'), (10, 'K')):
            if v % (1 << shift) == 0:
                return '%d%s' % (v >> shift, suffix)
    return str(v)


def markdown(rows):
    lines = [BEGIN, '',
             '| variable | default | values | read at | set at run time | meaning |',
             '|---|---|---|---|---|---|']
    for o in rows:
        if o['kind'] in ('text', 'tiers'):
            default = o['extra'] if o['extra'] == 'unset' else '`%s`' % o['extra']
            values = 'see below' if o['kind'] == 'tiers' else 'text, at most %d bytes' % o['hi']
        else:
            default = shown(o, o['d'])
            if o['wd'] != o['d']:
                default += ' (wasm: %s)' % shown(o, o['wd'])
            values = {'bool': 'yes, no', 'choice': ', '.join(o['extra'].split(','))}.get(
                o['kind'], '%s to %s' % (shown(o, o['lo']), shown(o, o['hi'])))
        lines.append('| `WALLOC_%s` | %s | %s | %s | %s | %s |' % (
            o['name'].upper(), default, values, READ[o['group']], 'yes' if o['runtime'] else 'no', o['doc']))
    lines += ['', END]
    return '\n'.join(lines)


def doc_part(text):
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN):text.index(END) + len(END)]


def check_doc(program, docs):
    want = markdown(table(program))
    with open(docs) as f:
        have = doc_part(f.read())
    if have is None:
        print('%s has no generated options table (the markers are missing)' % docs)
        return 1
    if have != want:
        import difflib
        sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                                   docs, 'the table (lib/core/core.h)'))
        print('\n%s differs from the option table: run tests/options_check.py write' % docs)
        return 1
    print('docs/options.md lists the %d options of the table, as the table says' % len(table(program)))
    return 0


def write_doc(program, docs):
    with open(docs) as f:
        text = f.read()
    part = doc_part(text)
    text = text.replace(part, markdown(table(program))) if part else text + '\n' + markdown(table(program)) + '\n'
    with open(docs, 'w') as f:
        f.write(text)
    return 0


def bad_values(o):
    """(value, what the line must say) for each way to get the option wrong."""
    k = o['kind']
    if k == 'bool':
        return [('maybe', 'is not yes or no'), ('2', 'is not yes or no')]
    if k == 'int':
        return [('abc', 'is not a number'), ('12K', 'is not a number'),
                (str(o['hi'] + 1), 'is out of range'), (str(o['lo'] - 1), 'is out of range')]
    if k == 'size':
        return [('lots', 'is not a size'), (str(o['hi'] + 1), 'is out of range'), ('0', 'is out of range')]
    if k == 'choice':
        return [('bogus', 'is not one of ' + o['extra']), (str(o['hi'] + 1), 'is not one of')]
    if k == 'text':
        return [('x' * (o['hi'] + 1), 'is longer than %d bytes' % o['hi'])]
    if k == 'tiers':
        return [('64K', 'refused (the memory must be'), ('1G:60,60,60', 'refused (the shares must add up'),
                ('lots', 'refused (not <memory>')]
    raise ValueError(k)


def run_true(lib, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith('WALLOC_')}
    env.update(env_extra)
    env['LD_PRELOAD'] = os.path.abspath(lib)
    p = subprocess.run(['/bin/true'], env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, [l for l in p.stderr.splitlines() if l]


def check_reports(program, lib):
    rows = table(program)
    failures = 0
    cases = 0

    def expect(env, want_parts, label):
        nonlocal failures, cases
        cases += 1
        rc, lines = run_true(lib, env)
        ok = rc == 0 and len(lines) == 1 and all(part in lines[0] for part in want_parts) \
            and lines[0].startswith('walloc: warning: ')
        if not ok:
            failures += 1
            print('FAIL %s: exit %d, stderr %r; wanted one line with %r' % (label, rc, lines, want_parts))

    for o in rows:
        var = 'WALLOC_' + o['name'].upper()
        if o['kind'] in ('text', 'tiers'):
            instead = o['extra'] if o['kind'] == 'text' else ''
        else:
            instead = shown(o, o['d'])
        for value, what in bad_values(o):
            expect({var: value}, ['%s=%s' % (var, value[:40]), what, '; using ' + instead], var + '=' + value[:40])
            expect({'WALLOC_OPTIONS': 'verbose=0,%s=%s' % (o['name'], value)},
                   ['WALLOC_OPTIONS item %s=%s' % (o['name'], value[:40]), what, '; using ' + instead],
                   'WALLOC_OPTIONS=%s=%s' % (o['name'], value[:40]))
        # a misspelt name: one letter dropped, or one letter too many
        wrong = o['name'][:-1] if len(o['name']) > 4 else o['name'] + 'x'
        expect({'WALLOC_' + wrong.upper(): '1'},
               ['WALLOC_%s=1 is not an option' % wrong.upper(), 'did you mean WALLOC_%s?' % o['name'].upper()],
               'WALLOC_' + wrong.upper())
        expect({'WALLOC_OPTIONS': '%s=1' % wrong},
               ['WALLOC_OPTIONS item %s=1 is not an option' % wrong, 'did you mean %s?' % o['name']],
               'WALLOC_OPTIONS=%s=1' % wrong)
    expect({'WALLOC_NOTHING_LIKE_ANY': 'x'}, ['WALLOC_NOTHING_LIKE_ANY=x is not an option; ignored'], 'far name')
    expect({'WALLOC_OPTIONS': 'stats'}, ['WALLOC_OPTIONS item stats is not name=value; ignored'], 'no value')
    # good settings say nothing
    cases += 1
    rc, lines = run_true(lib, {'WALLOC_OPTIONS': 'purge_delay=50,stats=no,tiers=2G:60,30,10', 'WALLOC_VERBOSE': 'no'})
    if rc != 0 or lines:
        failures += 1
        print('FAIL good settings: exit %d, stderr %r' % (rc, lines))
    print('%d settings under a preloaded /bin/true, %d failed' % (cases, failures))
    return 1 if failures else 0


def main(argv):
    if len(argv) != 4 or argv[1] not in ('doc', 'write', 'reports'):
        print(__doc__)
        return 2
    what, program, path = argv[1], argv[2], argv[3]
    if what == 'doc':
        return check_doc(program, path)
    if what == 'write':
        return write_doc(program, path)
    return check_reports(program, path)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
