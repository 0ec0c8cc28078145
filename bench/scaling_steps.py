#!/usr/bin/env python3
"""The steps of a start whose cost could grow with N, each timed alone against N records.

No container runs: N records and N leases (with their hosts files) are made in a temporary
state root, and at each checkpoint one more of each step is timed (median of 5, CPU time
of this process, so other load on the machine matters little):

    create    StateStore.create: a new record and its name
    find      StateStore.find(NAME): what every verb does first
    plan      NetworkStore.plan: an address leased, the hosts file written
    hosts     the network's hosts file brought up to date (older checkouts: from every lease,
              at each attach and release; now: from the file itself, within plan and release)
    release   Network.detach of an exited container (one planned for it): what rm does per
              container — ports, the netns check (an older checkout scans /proc: with this
              machine's processes, not N containers' ones), the lease, the hosts file

    sudo bench/scaling_steps.py -n 1000 --step 250                 # this tree
    sudo PYTHONPATH=/work/main bench/scaling_steps.py -n 1000      # another checkout, to compare

Runs in a private mount and network namespace (the network store defines the default
network; nothing is attached).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def cpu() -> float:
    return time.process_time()                  # CLOCK_PROCESS_CPUTIME_ID: ns, not 10 ms ticks


def timed(fn, repeat=5) -> float:
    samples = []
    for _ in range(repeat):
        t = cpu()
        fn()
        samples.append(cpu() - t)
    return 1000 * statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--step", type=int, default=250)
    args = ap.parse_args()
    if not os.environ.get("MC_BENCH_NS"):
        os.execvp("unshare", ["unshare", "-m", "-n", "--propagation", "private", "env", "MC_BENCH_NS=1",
                             sys.executable, *sys.argv])
    import minicontainer
    from minicontainer.network import NetworkStore
    from minicontainer.state import StateStore
    print(f"# {Path(minicontainer.__file__).parent.parent}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="mc-steps-", dir="/var/tmp"))
    store, net = StateStore(root), NetworkStore(root / "networks").get("bridge")
    made = 0

    def rewrite_hosts():
        if hasattr(net, "update_hosts"):                # line by line, from the hosts file itself
            return net.update_hosts()
        if hasattr(net, "rewrite_hosts_files"):         # before network/'s split (an older checkout)
            return net.rewrite_hosts_files()
        from minicontainer.network.hosts import rewrite_hosts_files
        if not hasattr(net, "hosts_path"):              # before the network's one hosts file
            return rewrite_hosts_files(net.leases(), net.name)
        return rewrite_hosts_files(net.leases(), net.name, net.hosts_path)

    def one_more(tag: str):
        nonlocal made
        rec = store.create("busybox", ["true"], f"{tag}{made}")
        net.plan(rec.id, name=rec.name, hostname=rec.name, hosts_path=store.container_dir(rec.id) / "hosts")
        made += 1
        return rec

    released = 0

    def release_one():
        nonlocal released
        rec = store.create("busybox", ["true"], f"r{released}")
        lease = dict(net.plan(rec.id, name=rec.name, hostname=rec.name,
                              hosts_path=store.container_dir(rec.id) / "hosts"), netns="0:0")
        released += 1
        cost = cpu()
        try:
            net.detach(lease, exited=True)              # the container has exited
        except TypeError:                               # an older checkout: no `exited`
            net.detach(lease)
        return cpu() - cost

    def timed_release():
        return 1000 * statistics.median(release_one() for _ in range(5))

    try:
        n = 0
        while True:
            row = {"n": n,
                   "create_ms": timed(lambda: store.create("busybox", ["true"], None)),
                   "find_ms": timed(lambda: store.find(f"c{max(made - 1, 0)}") if made else None),
                   "plan_ms": timed(lambda: one_more("p")),
                   "hosts_ms": timed(rewrite_hosts),
                   "release_ms": timed_release()}
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
            if n >= args.n:
                break
            for _ in range(args.step):
                one_more("c")
            n = made
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
