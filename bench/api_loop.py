"""Start and remove N containers, one after another, in one Python process (the library API).

What it measures: the per-container cost of the library, with the interpreter and the imports
already paid — the figure a test suite or a grader that starts many containers sees. Each
`Container(image, ["true"], root=ROOT, remove=True).run()` is timed with time.perf_counter:
create the container (overlay, namespaces, cgroup, network), run `true`, wait, remove everything.

    bench/api_loop.py -n 20                     per-container mean/median on stdout
    bench/api_loop.py -n 20 --json times.jsonl  also append one JSON line per variant (report.py)
    bench/api_loop.py -n 20 -m 64m --pids-limit 64   with resource limits (cgroups)
    bench/api_loop.py -n 20 --net none          only a loopback (the default is the bridge network)

Comparisons alternate container by container, so a machine that gets busier during the run
slows both sides alike (hyperfine, by contrast, runs one command's runs in a block):
    --image busybox --image busybox-big         does start time grow with image size?
    -m 64m --pids-limit 64 --also-without-limits   what do the limits cost?
Each variant is labelled IMAGE or IMAGE+limits in the JSON lines.

The state root comes from --root or MINICONTAINER_ROOT (bench/lib.sh points it at a bench-only
directory). Exit status 2 with one line on stderr when the library is not there yet or fails.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20, help="containers to time per variant (default 20)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--image", action="append", help="image to run (repeat to alternate; default busybox)")
    p.add_argument("--root", default=os.environ.get("MINICONTAINER_ROOT"),
                   help="state root (default: $MINICONTAINER_ROOT)")
    p.add_argument("--json", help="append one JSON line per variant to this file")
    p.add_argument("-m", "--memory", help="memory limit, as `run -m` (e.g. 64m)")
    p.add_argument("--pids-limit", type=int, help="process limit, as `run --pids-limit`")
    p.add_argument("--also-without-limits", action="store_true",
                   help="alternate each limited container with one without limits")
    p.add_argument("--net", help="network, as `run --net` (default: the library's, a bridge)")
    return p.parse_args(argv)


def load_container_class():
    """The library's Container class, or exit 2 naming what is missing."""
    try:
        from minicontainer import Container  # the public API
    except ImportError:
        try:
            from minicontainer.api import Container
        except ImportError as err:
            sys.exit(f"api_loop: cannot import minicontainer's Container ({err}); "
                     "is the library installed in this python (.venv/bin/python)?")
    return Container


def variants_of(args: argparse.Namespace) -> dict[str, dict]:
    """label → Container keyword arguments, in the order they alternate."""
    base = {"remove": True}
    if args.root:
        base["root"] = args.root
    if args.net:
        base["net"] = args.net
    limits = {k: v for k, v in (("memory", args.memory), ("pids_limit", args.pids_limit)) if v is not None}
    out = {}
    for image in args.image or ["busybox"]:
        if not limits or args.also_without_limits:
            out[image] = dict(base, image=image)
        if limits:
            out[f"{image}+limits"] = dict(base, image=image, limits=limits)
    return out


def run_one(Container, kwargs: dict) -> None:
    """One container, start to removal; `true` exiting non-zero means the runtime failed."""
    kwargs = dict(kwargs)
    status = Container(kwargs.pop("image"), ["true"], **kwargs).run()
    if status != 0:
        raise RuntimeError(f"the container running `true` exited with status {status}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    variants = variants_of(args)
    Container = load_container_class()
    times: dict[str, list[float]] = {label: [] for label in variants}
    try:
        for _ in range(args.warmup):
            for kwargs in variants.values():
                run_one(Container, kwargs)
        for _ in range(args.n):
            for label, kwargs in variants.items():
                t0 = time.perf_counter()
                run_one(Container, kwargs)
                times[label].append(time.perf_counter() - t0)
    except Exception as err:  # the library's own errors carry a one-line message
        print(f"api_loop: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    for label, seconds in times.items():
        ms = [t * 1000 for t in seconds]
        print(f"{label}: {args.n} containers: mean {statistics.fmean(ms):.1f} ms, "
              f"median {statistics.median(ms):.1f} ms, min {min(ms):.1f} ms, max {max(ms):.1f} ms")
        if args.json:
            kwargs = variants[label]
            with open(args.json, "a") as out:
                out.write(json.dumps({"label": label, "n": args.n, "image": kwargs["image"],
                                      "limits": kwargs.get("limits"), "net": args.net,
                                      "times_s": seconds}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
