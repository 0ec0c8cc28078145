"""Run named commands round-robin and write hyperfine's JSON, for bench/report.py.

    bench/interleave.py --rounds 15 --warmup 1 --export-json OUT.json NAME=COMMAND …

A cross-check of one hyperfine run on a shared machine: hyperfine times each command's runs in
one block, so a load change during the run lands on one command (seen here: podman+runc's
block at twice the load of podman+minicontainer-oci's, a 0.75× that was only the load). Here
round k runs every command once before round k+1 starts, so a change of load hits all of them
alike. Each COMMAND is split like a shell word list (shlex) and run without a shell, as
`hyperfine -N` does; its output is discarded, a failure stops the run.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    p.add_argument("--export-json", required=True)
    p.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = p.parse_args(argv)
    commands = [(name, shlex.split(cmd)) for name, _, cmd in (c.partition("=") for c in args.commands)]
    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    for round_ in range(args.warmup + args.rounds):
        for name, cmd in commands:
            start = time.perf_counter()
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"interleave: {name} exited {done.returncode}: {shlex.join(cmd)}")
            if round_ >= args.warmup:
                times[name].append(elapsed)
    results = [{"command": name, "times": t, "mean": statistics.fmean(t), "median": statistics.median(t),
                "stddev": statistics.stdev(t) if len(t) > 1 else 0.0, "min": min(t)}
               for name, t in times.items()]
    with open(args.export_json, "w") as f:
        json.dump({"results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
