"""The node agent — the kubelet of one node: runs the pods bound to it, and heartbeats.

    python -m minicontainer.cluster.agent --root ROOT --node NAME     (nodes.py starts it)

It starts where the node lives, before anything else is imported that could open a socket:

    setns(/run/netns/mcID-NAME, CLONE_NEWNET)   the node's network: its bridge, its pods' veths
    MINICONTAINER_CGROUP_PARENT (set by nodes.py)   its pods' cgroups under the node's group,
                                                 whose limits are the node's allocatable
    --root ROOT/cluster/nodes/NAME for its containers; the objects are ROOT's (the control plane)

Then it is the controller's loop (orchestration/controller.py) with one node's work per turn:
sync each Pod bound to NAME through orchestration/kubelet.py — the same code, and so the same
run sequence, as a single machine's pods, started side by side in the controller's forked
workers — write their /etc/hosts, remove the runtime pods whose object is gone. A thread renews the node's Lease every second (lifecycle.py), so a
slow pod start never looks like a dead node. SIGTERM ends it; its pods keep running (as a
kubelet's do). `node fail` sends SIGKILL instead, to it and to every process of the node.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

from ..orchestration.controller import Controller
from ..orchestration.store import ObjectStore
from .migrate import MIGRATE_TO, migrate_out


class Agent(Controller):
    def __init__(self, root, node: dict, node_root):
        super().__init__(root)
        from ..orchestration.kubelet import Kubelet
        self.node = node["name"]
        self.kubelet = Kubelet(self.store, float(self.settings.get("backoff", 10)), root=node_root,
                               node=self.node, host_ip=node["ip"])
        self.kubelet.may_block = False                      # pods start side by side, in workers

    def reconcile(self) -> None:
        self.kubelet.next_due = time.time() + 1.0           # look at the store at least every second
        self.kubelet.changed = False
        self.reap_workers()
        records = {r.name: r for r in self.kubelet.containers.list()}
        pods = [p for p in self.store.list("Pod") if p["spec"].get("nodeName") == self.node]
        for p in pods:
            if (p["metadata"].get("annotations") or {}).get(MIGRATE_TO):
                self.guard(migrate_out, self, p, records)    # cold migration: leaving this node
                continue
            self.guard(self.sync_pod, p, records)           # the controller's: a worker per start
        self.remove_orphan_pods()
        self.guard(self.write_hosts, pods, self.store.list("Service"), records)


def heartbeat(store: ObjectStore, node: str, stop: threading.Event) -> None:
    from .lifecycle import HEARTBEAT, renew_lease
    while not stop.is_set():
        try:
            renew_lease(store, node, HEARTBEAT * 5)
        except OSError as e:
            print(f"{time.strftime('%H:%M:%S')} heartbeat: {e}", flush=True)
        stop.wait(HEARTBEAT)


def main(argv: list[str]) -> None:
    import signal
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)          # a nudge before the loop's handlers
    root = argv[argv.index("--root") + 1]
    name = argv[argv.index("--node") + 1]
    from .nodes import ClusterStore
    cstore = ClusterStore(root)
    node = cstore.must_load()["nodes"][name]
    from ..kernel.namespaces import CLONE_NEWNET, setns
    fd = os.open(f"/run/netns/{node['netns']}", os.O_RDONLY | os.O_CLOEXEC)
    setns(fd, CLONE_NEWNET)                                 # from here on, we are on the node
    os.close(fd)
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # this netns's: it routes its pods
        f.write("1")
    from ..network.leases import this_netns
    store = ObjectStore(cstore.root)
    from ..state import proc_start_time
    me = {"pid": os.getpid(), "start": proc_start_time(os.getpid()), "started_at": time.time(),
          "netns": this_netns()}
    info = cstore.node_root(name) / "agent.json"
    stop = threading.Event()
    threading.Thread(target=heartbeat, args=(store, name, stop), daemon=True).start()
    tmp = info.with_name(".agent.json.tmp")
    tmp.write_text(json.dumps(me))
    os.replace(tmp, info)
    print(f"{time.strftime('%H:%M:%S')} agent of {name} ({os.getpid()}) started", flush=True)
    try:
        Agent(cstore.root, node, cstore.node_root(name)).run()
    finally:
        stop.set()
        print(f"{time.strftime('%H:%M:%S')} agent of {name} ({os.getpid()}) stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
