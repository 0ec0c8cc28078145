#!/usr/bin/env python3
"""Memory of an idle container's supervisor (issue 4): PSS per `run -d` container.

What it measures: start N detached `sleep` containers through the CLI, wait until each
supervisor sits in its watch phase, and read Pss and Rss from /proc/PID/smaps_rollup (what
smem(8) reports). PSS divides each shared page among the processes that map it, so the sum
over all supervisors is what they really cost together; RSS counts shared pages in full.
For scale it measures the bare interpreter the same way (`python -I -S -c 'sleep'`, the
floor), and Podman's conmon if one is running.

    sudo bench/supervisor_memory.py -n 10                 (root, state root from --root or
    sudo bench/supervisor_memory.py -n 10 --json out.jsonl  MINICONTAINER_ROOT, busybox in it)

Target: mean PSS ≤ 4 MB (Python's own floor is about 3.8 MB PSS when alone; conmon ~0.5 MB).
Run it in a private mount namespace (`unshare -m --propagation private`); the containers use
--net none, so no bridge or veth is made on the host.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TARGET_KB = 4 * 1024


def smaps(pid: int) -> dict[str, int]:
    """Rss, Pss, Private_Dirty … in kB from /proc/PID/smaps_rollup (proc(5))."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def cli(root: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "minicontainer", "--root", root, *args]


def supervisors(root: str, names: list[str]) -> list[int]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from minicontainer.state import StateStore
    recs = {r.name: r for r in StateStore(root).list()}
    return [recs[n].supervisor_pid for n in names if n in recs]


def in_watch_phase(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"\0watch\0" in f.read()


def baseline(n: int) -> list[dict]:
    """The bare interpreter, as small as the watch phase could ever be."""
    procs = [subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"])
             for _ in range(n)]
    time.sleep(1.0)
    try:
        return [smaps(p.pid) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def conmon() -> list[dict]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "conmon":
                    out.append(smaps(int(pid)))
        except OSError:
            pass
    return out


def summary(label: str, rows: list[dict]) -> dict:
    if not rows:
        return {"label": label, "n": 0}
    pss = [r["Pss"] for r in rows]
    return {"label": label, "n": len(rows), "pss_mean_kb": round(statistics.mean(pss)),
            "pss_median_kb": statistics.median(pss), "pss_total_kb": sum(pss),
            "rss_mean_kb": round(statistics.mean(r["Rss"] for r in rows)),
            "private_mean_kb": round(statistics.mean(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
                                                     for r in rows))}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10, help="idle containers (default 10)")
    p.add_argument("--root", default=os.environ.get("MINICONTAINER_ROOT"), help="state root")
    p.add_argument("--image", default="busybox")
    p.add_argument("--json", help="append the results as one JSON line to this file")
    args = p.parse_args(argv)
    if not args.root:
        print("bench: give --root (or MINICONTAINER_ROOT) with the busybox image in it", file=sys.stderr)
        return 2
    names = [f"pss-bench-{os.getpid()}-{i}" for i in range(args.n)]
    try:
        for name in names:
            subprocess.run(cli(args.root, "run", "-d", "--net", "none", "--name", name, args.image,
                               "sleep", "600"), check=True, capture_output=True)
        pids = supervisors(args.root, names)
        deadline = time.monotonic() + 30
        while not all(in_watch_phase(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)                                   # settled
        results = [summary("minicontainer supervisor (watch phase)", [smaps(pid) for pid in pids]),
                   summary("python -I -S (bare interpreter)", baseline(min(args.n, 10))),
                   summary("conmon (running ones, if any)", conmon())]
    finally:
        subprocess.run(cli(args.root, "rm", "-f", *names), capture_output=True)
    for r in results:
        if r["n"]:
            print(f"{r['label']:42s} n={r['n']:3d}  PSS mean {r['pss_mean_kb'] / 1024:5.2f} MB  "
                  f"median {r['pss_median_kb'] / 1024:5.2f} MB  RSS mean {r['rss_mean_kb'] / 1024:5.2f} MB  "
                  f"private {r['private_mean_kb'] / 1024:5.2f} MB")
    ok = results[0]["pss_mean_kb"] <= TARGET_KB
    print(f"target: supervisor PSS mean <= {TARGET_KB / 1024:.0f} MB: {'PASS' if ok else 'MISS'}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"bench": "supervisor_memory", "results": results, "pass": ok}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
