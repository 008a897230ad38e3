#!/usr/bin/env python3
"""CPU seconds to compile some source files, in one build tree or two (before and after a
change), alternating between them so that both see the same machine load.

    scripts/compile-time.py --rounds 3 build/gcc client/src/connection.cpp
    scripts/compile-time.py --rounds 3 --base ../old/build build/gcc connection.cpp cluster_client.cpp

A file is named by the end of its path, so a file that moved between modules is still found.
Each compile is the build's own command from compile_commands.json (precompiled header and
all), without ccache, writing to a temporary object. Prints every run, then the median per
file and, with --base, the ratio now/base.
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import tempfile


def commands(build, names):
    found = {}
    for e in json.load(open(os.path.join(build, 'compile_commands.json'))):
        for n in names:
            if e['file'].endswith('/' + n) and n not in found:
                found[n] = e
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f'{build}: no compile command for {", ".join(missing)}')
    return found


def cpu_seconds(entry, out):
    cmd = re.sub(r' -o \S+', f' -o {out}', entry['command'])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, shell=True, cwd=entry['directory'], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--base', help='the build tree before the change')
    p.add_argument('build')
    p.add_argument('files', nargs='+')
    a = p.parse_args()
    trees = {'now': commands(a.build, a.files)}
    if a.base:
        trees = {'base': commands(a.base, a.files), **trees}
    times = {(t, f): [] for t in trees for f in a.files}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'file.o')
        for _ in range(a.rounds):
            for f in a.files:
                for t, cmds in trees.items():
                    s = cpu_seconds(cmds[f], out)
                    times[(t, f)].append(s)
                    print(f'{t:4} {f}: {s:.1f} s', flush=True)
    for f in a.files:
        now = statistics.median(times[('now', f)])
        line = f'{f}: {now:.1f} s'
        if a.base:
            base = statistics.median(times[('base', f)])
            line = f'{f}: base {base:.1f} s, now {now:.1f} s, ratio {now / base:.2f}'
        print(line)


if __name__ == '__main__':
    main()
