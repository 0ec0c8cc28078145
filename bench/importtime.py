"""Where a Python command's start-up goes: `python -X importtime`, summarised.

    bench/importtime.py [--runs 5] [--top 15] -- PYTHON [ARGS…]
    bench/importtime.py -- .venv/bin/python -c 'import minicontainer.cli'
    bench/importtime.py -- .venv/bin/python .venv/bin/minicontainer run --rm busybox true

-X importtime makes CPython print, on stderr, one line per module imported:
    import time: self [us] | cumulative | imported package
with the nesting shown by indentation. The command runs --runs times (after one untimed run that
writes the .pyc files) and each module's median is kept, since one run is noisy. Printed:
  * the total import time (sum of every module's own time) next to the command's wall time;
  * the cost by origin (stdlib, minicontainer, each third-party package, .pth hooks);
  * the cost per top-level package (sum of own time of `pkg` and `pkg.*`): what to make lazy;
  * the heaviest imports by cumulative time, with their nesting depth.
"""
from __future__ import annotations

import argparse
import shlex
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def run_once(cmd: list[str]) -> tuple[float, list[tuple[str, int, int, int]]]:
    """(wall seconds, [(module, self us, cumulative us, depth)]) of one -X importtime run."""
    argv = [cmd[0], "-X", "importtime", *cmd[1:]]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    mods = []
    for line in proc.stderr.splitlines():
        if m := LINE.match(line):
            mods.append((m.group(4), int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2))
    if proc.returncode != 0 and not mods:
        sys.exit(f"importtime: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return wall, mods


def origin_of(package: str) -> str:
    """'stdlib', 'minicontainer', 'site hooks' (.pth-started finders) or 'third-party: NAME'."""
    if package in sys.stdlib_module_names or package.startswith("encodings"):
        return "stdlib"
    if package.startswith("__editable__") or package == "_distutils_hack":
        return "site hooks (.pth files)"
    return package if package == "minicontainer" else f"third-party: {package}"


def summarise(cmd: list[str], runs: int, top: int) -> str:
    run_once(cmd)                                         # writes .pyc; not counted
    walls, self_us, cum_us, depth = [], defaultdict(list), defaultdict(list), {}
    for _ in range(runs):
        wall, mods = run_once(cmd)
        walls.append(wall)
        for name, s, c, d in mods:
            self_us[name].append(s)
            cum_us[name].append(c)
            depth.setdefault(name, d)
    own = {n: statistics.median(v) for n, v in self_us.items()}
    cum = {n: statistics.median(v) for n, v in cum_us.items()}
    packages = defaultdict(float)
    for name, us in own.items():
        packages[name.split(".")[0]] += us
    total = sum(own.values())
    out = [f"$ {shlex.join(cmd)}",
           f"wall {statistics.median(walls) * 1000:.1f} ms (median of {runs}, includes -X importtime's "
           f"own overhead), imports {total / 1000:.1f} ms in {len(own)} modules", "",
           "by origin (sum of own time):"]
    origins = defaultdict(float)
    for pkg, us in packages.items():
        origins[origin_of(pkg)] += us
    for name, us in sorted(origins.items(), key=lambda kv: -kv[1]):
        out.append(f"  {us / 1000:7.1f} ms  {100 * us / total:4.0f} %  {name}")
    out += ["", "by top-level package (sum of own time):"]
    for pkg, us in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {us / 1000:7.1f} ms  {100 * us / total:4.0f} %  {pkg}")
    out += ["", "heaviest imports (cumulative, depth 0 = imported by the script itself):"]
    for name, us in sorted(cum.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {us / 1000:7.1f} ms  depth {depth[name]}  {name}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("cmd", nargs="+", help="python and its arguments (put them after --)")
    args = p.parse_args(argv)
    print(summarise(args.cmd, args.runs, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
