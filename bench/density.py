#!/usr/bin/env python3
"""Density: N idle containers on one host, and what each costs (issue 16).

Starts N detached `sleep` containers through the CLI, each with its own cgroup, network
namespace on the default bridge and overlay; measures as N grows:
  * the wall time of each `run -d` (the start as a user sees it), and at every checkpoint
    three `run --rm busybox true` probes (start, run, teardown in the foreground);
  * `ps` (the listing of N records);
  * host memory per container: MemAvailable before/after ÷ N, and the supervisors' PSS
    (/proc/PID/smaps_rollup) — kernel objects are the difference;
then `rm -f` of every container — the first --single-rm one CLI call each, the rest
--batch per call (`rm -f $(ps -aq)`) — timed, and the residue: mounts, cgroups, veths,
leases, records. Each checkpoint also notes the load average (figures under load are
pessimistic).

    sudo bench/density.py -n 1000 --step 100 --json /var/tmp/density.json [--plot density.png]

It runs itself in a private mount and network namespace (unshare -m -n): the bridge, its NAT
rules and every veth live there. Prints one line per checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def in_private_namespaces() -> None:
    if os.environ.get("MC_BENCH_NS"):
        return
    os.execvp("unshare", ["unshare", "-m", "-n", "--propagation", "private", "env", "MC_BENCH_NS=1",
                         sys.executable, *sys.argv])


def cli(root, *args, check=True) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), *args],
                       capture_output=True, text=True)
    took = time.perf_counter() - t
    if check and p.returncode != 0:
        raise SystemExit(f"minicontainer {' '.join(args)}: {p.stderr.strip()}")
    return took, p


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def prepare_root(root: Path) -> None:
    sys.path.insert(0, str(REPO))
    from minicontainer.api import image_store
    from minicontainer.builder import find_recipe, load_builder
    tar = root.parent / "busybox.tar"
    load_builder().build(find_recipe("busybox"), tar)
    image_store(root).import_archive(tar, "busybox")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def workspace(kind: str) -> tuple[Path, Path]:
    """In private namespaces: a cgroup parent, a work directory and a state root with busybox."""
    in_private_namespaces()
    os.environ.setdefault("MINICONTAINER_CGROUP_PARENT", f"mc-{kind}-{os.getpid()}")
    work = Path(tempfile.mkdtemp(prefix=f"mc-{kind}-", dir="/var/tmp"))
    prepare_root(work / "root")
    return work, work / "root"


def remove_workspace(work: Path) -> None:
    import shutil
    from minicontainer.cgroups import remove_parent
    shutil.rmtree(work, ignore_errors=True)
    remove_parent()


def residue(root: Path) -> dict:
    from minicontainer.cgroups import list_cgroups
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {"mounts": sum(str(root) in line for line in open("/proc/self/mountinfo")),
            "cgroups": len(list_cgroups()),
            "veths": sum(" mc" in line and "@" in line for line in links.splitlines()),
            "leases": len(list(root.glob("networks/*/leases/*.json"))),
            "records": len([p for p in (root / "containers").glob("*") if not p.name.startswith(".")])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--step", type=int, default=50)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument("--single-rm", type=int, default=20, help="how many are removed one CLI call each")
    ap.add_argument("--batch", type=int, default=100, help="the rest: this many per `rm -f` call")
    args = ap.parse_args()
    work, root = workspace("density")
    out = {"n": args.n, "checkpoints": [], "rm_ms": []}
    base_mem, names, starts = mem_available(), [], []
    try:
        for i in range(args.n + 1):
            if i % args.step == 0:
                probes = [cli(root, "run", "--rm", "busybox", "true")[0] for _ in range(3)]
                ps_time, ps = cli(root, "ps")
                recent = starts[-args.step:] or [0.0]
                sups = [r for r in json.loads(cli(root, "ps", "--format", "json")[1].stdout)][-20:]
                point = {"n": i, "load1": float(open("/proc/loadavg").read().split()[0]),
                         "run_d_ms": 1000 * statistics.median(recent),
                         "run_rm_ms": 1000 * statistics.median(probes), "ps_ms": 1000 * ps_time,
                         "mem_per_container_kb": (base_mem - mem_available()) / max(i, 1) / 1024,
                         "supervisor_pss_kb": statistics.mean([pss(r["supervisor_pid"]) for r in sups] or [0]) / 1024}
                out["checkpoints"].append(point)
                print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()),
                      flush=True)
            if i == args.n:
                break
            name = f"d{i}"
            took, _ = cli(root, "run", "-d", "--name", name, "busybox", "sleep", "1000000")
            starts.append(took)
            names.append(name)
        t_all = time.perf_counter()
        singles, rest = names[:args.single_rm], names[args.single_rm:]
        for name in singles:                       # one `rm -f NAME` per container (a CLI each)
            took, _ = cli(root, "rm", "-f", name)
            out["rm_ms"].append(1000 * took)
        for i in range(0, len(rest), args.batch):  # `rm -f $(ps -aq)`: the CLI's start amortised
            batch = rest[i:i + args.batch]
            took, _ = cli(root, "rm", "-f", *batch)
            out.setdefault("rm_batch_ms_per_container", []).append(1000 * took / len(batch))
        out["rm_all_s"] = time.perf_counter() - t_all
        out["rm_median_ms"] = statistics.median(out["rm_ms"]) if out["rm_ms"] else 0
        out["rm_batch_median_ms"] = statistics.median(out.get("rm_batch_ms_per_container") or [0])
        names = []
        out["residue"] = residue(root)
        out["loadavg"] = open("/proc/loadavg").read().split()[:3]
        print(f"rm -f NAME: median {out['rm_median_ms']:.0f} ms per call ({len(singles)} calls); "
              f"rm -f of {args.batch} at a time: median {out['rm_batch_median_ms']:.1f} ms per container; "
              f"total {out['rm_all_s']:.1f} s; residue {out['residue']}; load {out['loadavg']}")
    finally:
        if names:
            cli(root, "rm", "-f", *names, check=False)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        if args.plot:
            plot(out, args.plot)
        remove_workspace(work)


def plot(out: dict, path: str) -> None:
    """Start time against N (matplotlib, only here in bench/)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = [p["n"] for p in out["checkpoints"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(n[1:], [p["run_d_ms"] for p in out["checkpoints"]][1:], "o-", label="run -d (median of the last step)")
    ax.plot(n, [p["run_rm_ms"] for p in out["checkpoints"]], "s-", label="run --rm busybox true (median of 3)")
    ax.plot(n, [p["ps_ms"] for p in out["checkpoints"]], "^-", label="ps")
    ax.set_xlabel("idle containers already running (N)")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("minicontainer: start time against N (default bridge)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
