"""Classroom demos for a projector: `minicontainer demo list`, `minicontainer demo NAME [--auto]`.

One module per demo (TITLE, SUMMARY, run(demo)); narrate.py is the small framework that prints
the narration, shows each command as the audience would type it, runs it for real and pauses
for Enter between steps (--auto: straight through, as the test suite runs them).

    chroot-escape      a root process climbs out of a chroot container, not out of pivot_root
    pid-namespace      one process, two PIDs: the host's view and the container's side by side
    fork-bomb          a fork bomb stops at --pids-limit; the host does not notice
    oom                over -m, the kernel's OOM killer kills inside the container: exit 137
    fifty-containers   50 containers started at once, counted, gone again
    snapshot           change a container's files, roll back to a snapshot
    vm-vs-container    boot a tiny VM with QEMU, start a container, compare the times
    live-migration     a running VM moves to another QEMU process; its counter goes on
    self-healing       kill -9 a replica, delete a pod, scale: the controller repairs each
    autoscale          a CPU load makes the HPA scale a Deployment 1 → 3 → 1
    failover           3 nodes, node fail node2: NotReady, its pods start on the others
    migrate            a pod cold-migrates to another node: layer, volume and name kept
"""
from __future__ import annotations

import importlib

from ..errors import ConfigError

DEMOS = {
    "chroot-escape": "chroot_escape",
    "pid-namespace": "pid_namespace",
    "fork-bomb": "fork_bomb",
    "oom": "oom",
    "fifty-containers": "fifty_containers",
    "snapshot": "snapshot",
    "vm-vs-container": "vm_vs_container",
    "live-migration": "live_migration",
    "self-healing": "self_healing",
    "autoscale": "autoscale",
    "failover": "failover",
    "migrate": "migrate",
}


def load(name: str):
    if name not in DEMOS:
        raise ConfigError(f"no demo {name!r}: use one of {', '.join(DEMOS)} (`minicontainer demo list`)")
    return importlib.import_module(f"{__name__}.{DEMOS[name]}")


def list_demos() -> list[tuple[str, str]]:
    return [(name, load(name).SUMMARY) for name in DEMOS]


def run_demo(name: str, *, auto: bool = False, delay: float = 0.0, root: str | None = None, out=None) -> int:
    """Run one demo; 0 when it went through. Whatever it created is removed, also on Ctrl-C."""
    from .narrate import Demo
    module = load(name)
    demo = Demo(module.TITLE, auto=auto, delay=delay, root=root, out=out)
    demo.banner()
    try:
        module.run(demo)
    finally:
        demo.finish()
    demo.print("\n(end of demo)")
    return 0
