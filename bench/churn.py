#!/usr/bin/env python3
"""Churn: many `run --rm busybox true` cycles, several at a time; nothing may accumulate.

Every EVERY cycles one line: host memory available, open files (fs.file-nr), mounts,
cgroups, network namespaces, veths, leases and records — all must stay flat — and at the
end nothing of the containers may be left.

    sudo bench/churn.py --cycles 10000 --parallel 4 --every 1000

It runs itself in a private mount and network namespace (unshare -m -n), on the default
bridge network (the costliest path: lease, veth, hosts file, NAT).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from density import mem_available, remove_workspace, residue, workspace   # noqa: E402


def net_namespaces() -> int:
    seen = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            seen.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
        except OSError:
            pass
    return len(seen)


def sample(root: Path) -> dict:
    files = int(open("/proc/sys/fs/file-nr").read().split()[0])
    return {"mem_avail_mb": mem_available() // 2**20, "open_files": files,
            "netns": net_namespaces(), **residue(root)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--every", type=int, default=100)
    args = ap.parse_args()
    work, root = workspace("churn")
    cmd = [sys.executable, "-m", "minicontainer", "--root", str(root), "run", "--rm", "busybox", "true"]
    failures = 0

    def cycle(_):
        return subprocess.run(cmd, capture_output=True).returncode

    start = time.perf_counter()
    print(f"cycles=0 {sample(root)}", flush=True)
    try:
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            done = 0
            while done < args.cycles:
                batch = min(args.every, args.cycles - done)
                failures += sum(code != 0 for code in pool.map(cycle, range(batch)))
                done += batch
                rate = done / (time.perf_counter() - start)
                print(f"cycles={done} failures={failures} rate={rate:.1f}/s {sample(root)}", flush=True)
    finally:
        remove_workspace(work)


if __name__ == "__main__":
    main()
