"""HA for VMs: a failed node's VMs boot again on a survivor (docs/vms.md, "HA").

What it is: vSphere HA's restart, or KubeVirt's runStrategy Always. A VM created with
`--node N --restart-on-failure` runs in node N's network namespace (nodes.py); when N loses power
(`node fail`), its QEMU dies with it, and once the control plane has marked N NotReady (missed
heartbeats, cluster/lifecycle.py) this step — run in the same controller turn, right after the
nodes' heartbeats were read — starts the VM on a Ready node. It is a *cold boot* from the disk, not
a resume: the RAM and the CPU state died with the node; only the disk, on storage every node
reaches, survives. Waiting for NotReady is the fencing: never two QEMUs on one disk while the
node might still run the first.
See: nodes.py; cluster/lifecycle.py; orchestration/controller.py (the turn).
Shell equivalent: (after `node fail node1`, once `node ls` says NotReady)
    nsenter --net=/run/netns/mcXXXX-node2 qemu-system-x86_64 … (the VM's own command line)
"""
from __future__ import annotations

import time
from pathlib import Path

from .nodes import pick_node, unreachable


def restart_failed_vms(root) -> list[str]:
    """The control plane's HA step (each controller turn, after the nodes' heartbeats were read):
    every VM with restart_on_failure that should run, whose QEMU is gone and whose node is
    NotReady is started on another node: a cold boot from its disk."""
    root = Path(root)
    if not (root / "vms").is_dir() or not (root / "cluster" / "cluster.json").exists():
        return []                               # cheap: most turns (and controllers) have no VMs
    from .machine import VmStore, boot          # (QEMU's modules only when there are VMs)
    store = VmStore(root)
    restarted = []
    for name in store.names():
        rec = store.load(name)
        if not (rec.restart_on_failure and rec.want_running and rec.node) or rec.running \
                or not unreachable(root, rec.node):
            continue                # healthy, stopped on purpose, its node Ready or removed
        with store.locked(name) as rec:
            if rec.running or not rec.want_running or not unreachable(root, rec.node):
                continue
            target = pick_node(root, [store.load(n) for n in store.names()], rec, avoid=rec.node)
            if target is None:
                print(f"{time.strftime('%H:%M:%S')} vm {name}: node {rec.node} is down and no node "
                      "can take it (not Ready, cordoned or short of memory)", flush=True)
                continue
            failed = rec.node
            rec.events.append({"time": time.time(), "reason": "RestartedOnFailure",
                               "message": f"node {failed} is not Ready: cold boot on {target}"})
            rec.node = target
            boot(store, rec)
            print(f"{time.strftime('%H:%M:%S')} vm {name}: node {failed} is not Ready, "
                  f"restarted on {target} (QEMU PID {rec.pid})", flush=True)
            restarted.append(name)
    return restarted
