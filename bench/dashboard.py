#!/usr/bin/env python3
"""The dashboard's own cost (issue 17): N running containers, one update a second, < 5 % of one CPU.

Starts N detached `sleep` containers (--net none: the sampler's work does not depend on the
network, and N veths would only slow the set-up), then `minicontainer dashboard --port 0`,
then B browsers' worth of Server-Sent Events readers (plain HTTP clients in this process, so
their CPU is not the server's). After a warm-up it reads the server's utime + stime from
/proc/PID/stat over a window: CPU % of one CPU, against the issue's 5 %. The same with no
container at all is printed first, for scale. Then everything goes: containers, the state root,
the cgroup parent; the residue is printed.

    sudo bench/dashboard.py -n 200 --window 20 [--clients 1] [--json out.json]

It runs in a private mount and network namespace (bench/density.py's workspace()). No peer
runs here to compare with (Docker's and Podman's dashboards are not in Debian 12): the
figure is set against the issue's target.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

from density import cli, remove_workspace, residue, workspace

TARGET_PERCENT = 5.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_dashboard(root) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(root), "dashboard",
                             "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("minicontainer dashboard: "):
        proc.kill()
        raise SystemExit(f"the dashboard did not start: {line!r}")
    return proc, line.split()[2]


def read_stream(url: str, stats: dict, stop: threading.Event) -> None:
    """One browser's stream: counts the ticks and their bytes."""
    with urllib.request.urlopen(url + "api/stream", timeout=30) as r:
        for line in r:
            if stop.is_set():
                return
            if line.startswith(b"data: "):
                stats["messages"] += 1
                stats["bytes"] += len(line)
                stats["last"] = time.monotonic()


def measure(root, n: int, window: float, clients: int) -> dict:
    proc, url = start_dashboard(root)
    stop = threading.Event()
    streams = [{"messages": 0, "bytes": 0, "last": 0.0} for _ in range(clients)]
    for s in streams:
        threading.Thread(target=read_stream, args=(url, s, stop), daemon=True).start()
    try:
        time.sleep(5)                                   # warm-up: the first full snapshot, caches
        before = [dict(s) for s in streams]
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        loadavg = open("/proc/loadavg").read().split()[:3]
        ticks = [s["messages"] - b["messages"] for s, b in zip(streams, before)]
        sent = [s["bytes"] - b["bytes"] for s, b in zip(streams, before)]
        state = json.loads(urllib.request.urlopen(url + "api/state", timeout=30).read())
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)
    running = sum(c["status"] == "running" for c in state["containers"])
    return {"containers": n, "running_seen": running, "window_s": round(t1 - t0, 1),
            "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "updates_per_s": round(min(ticks) / (t1 - t0), 2),
            "bytes_per_update": int(sum(sent) / max(1, sum(ticks))), "loadavg": " ".join(loadavg)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    work, root = workspace("dashboard")
    names = []
    try:
        results = [measure(root, 0, args.window, args.clients)]
        t = time.monotonic()
        for i in range(args.n):
            name = f"dash-bench-{i}"
            cli(root, "run", "-d", "--net", "none", "--name", name, "busybox", "sleep", "3600")
            names.append(name)
        print(f"started {args.n} containers in {time.monotonic() - t:.0f} s", flush=True)
        results.append(measure(root, args.n, args.window, args.clients))
        for r in results:
            verdict = "PASS" if r["cpu_percent"] < TARGET_PERCENT else "MISS"
            print(f"{r['containers']:4d} containers ({r['running_seen']} running): server CPU "
                  f"{r['cpu_percent']:.2f} % of one CPU over {r['window_s']} s "
                  f"({r['cpu_percent'] / TARGET_PERCENT:.2f} × the 5 % budget, {verdict}); "
                  f"{r['updates_per_s']} updates/s, {r['bytes_per_update']} bytes each; "
                  f"loadavg {r['loadavg']}")
    finally:
        if names:
            cli(root, "rm", "-f", *names, check=False)
        left = residue(root)
        remove_workspace(work)
        print(f"residue after rm -f: {left}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
