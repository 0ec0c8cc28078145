"""Where `minicontainer run --rm busybox true` spends its time, phase by phase.

    bench/breakdown.py [--runs 10] [--net none] [--image busybox]

Starts --runs fresh Python processes (the venv's interpreter, as the CLI does); each one times
with time.perf_counter, from the first line of its script:
    import-cli      import the CLI's lane for `run` (minicontainer.cli, cli/run_verb.py: no typer)
    first           the first Container(...).run() of the process: lazy imports of the run
                    path (runtime, cgroups, network, security, …) + one-time set-up + the container
    second          a second, identical container: the steady per-container cost
and, on the CLOCK_MONOTONIC both processes share, the interpreter's start-up (fork+exec to the
script's first line: site, .pth files), its exit (last line until the parent reaps it) and the
whole process.
Printed: the median of each phase; first − second is what a fresh process pays once.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
started = time.monotonic()
import minicontainer.cli.run_verb
t1 = time.perf_counter()
from minicontainer import Container
kwargs = json.loads(sys.argv[1])
image = kwargs.pop("image")
marks = []
for _ in range(2):
    a = time.perf_counter()
    status = Container(image, ["true"], remove=True, **kwargs).run()
    marks.append(time.perf_counter() - a)
    if status != 0:
        sys.exit(f"container exited {status}")
print(json.dumps({"import-cli": t1 - t0, "first": marks[0], "second": marks[1],
                  "started": started, "ended": time.monotonic()}), flush=True)
import os
os._exit(0)                       # as the CLI ends (cli/__init__.py): no interpreter shutdown
"""


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--net", help="as `run --net` (default: the library's default, a bridge)")
    p.add_argument("--image", default="busybox")
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)
    kwargs = {"image": args.image, **({"net": args.net} if args.net else {})}
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    phases: dict[str, list[float]] = {}
    for i in range(args.runs + 1):                       # the first run writes .pyc files: dropped
        spawned = time.monotonic()                       # one clock for both processes
        proc = subprocess.run([args.python, "-c", CHILD, json.dumps(kwargs)], env=env,
                              capture_output=True, text=True)
        reaped = time.monotonic()
        if proc.returncode != 0:
            sys.exit(f"breakdown: the timed process failed: {proc.stderr.strip()[-400:]}")
        if i == 0:
            continue
        sample = json.loads(proc.stdout.strip().splitlines()[-1])
        sample["process"] = reaped - spawned
        sample["start-up"] = sample.pop("started") - spawned
        sample["exit"] = reaped - sample.pop("ended")
        for k, v in sample.items():
            phases.setdefault(k, []).append(v)
    med = {k: statistics.median(v) * 1000 for k, v in phases.items()}
    print(f"{args.runs} fresh processes, {args.image}, net={args.net or 'default (bridge)'}; medians:")
    for key, what in (("start-up", "fork+exec to the script's first line: interpreter, site, .pth"),
                      ("import-cli", "import the CLI's run lane (cli/run_verb.py, no typer)"),
                      ("first", "first container of the process (lazy imports + set-up + run)"),
                      ("second", "second container (steady state, = the API's per-container)"),
                      ("exit", "exit: os._exit after the last line (as the CLI), until reaped"),
                      ("process", "the whole process, fork+exec to exit")):
        print(f"  {med[key]:7.1f} ms  {key:<12} {what}")
    print(f"  {med['first'] - med['second']:7.1f} ms  {'once':<12} first − second: what a fresh process pays once")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
