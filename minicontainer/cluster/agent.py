"""The node agent — the kubelet and kube-proxy of one node: runs the pods bound to it,
programs the Services' rules in the node's network namespace, and heartbeats.

    python -m minicontainer.cluster.agent --root ROOT --node NAME     (nodes.py starts it)

It starts where the node lives, before anything else is imported that could open a socket:

    setns(/run/netns/mcID-NAME, CLONE_NEWNET)   the node's network: its bridge, its pods' veths
    MINICONTAINER_CGROUP_PARENT (set by nodes.py)   its pods' cgroups under the node's group,
                                                 whose limits are the node's allocatable
    --root ROOT/cluster/nodes/NAME for its containers; the objects are ROOT's (the control plane)

Then it is the controller's loop (orchestration/controller.py) with one node's work per turn:
sync each Pod bound to NAME through orchestration/kubelet.py — the same code, and so the same
run sequence, as a single machine's pods, started side by side in the controller's forked
workers — prepare the sandbox of a pod migrating in (migrate.py), program the Services' DNAT
from the Endpoints objects (kube-proxy), write the pods' /etc/hosts, remove the runtime pods
whose object is gone — and, when a pod's status changed, nudge the control plane (SIGUSR1:
the API server's watch), so its Services and ReplicaSets see a Ready replica at once.

Heartbeats come from a child process, not a thread: the agent forks its workers, and fork(2)
in a process with a second thread copies only the forking thread — a lock the other thread
held at that moment (the heap's, stdout's, the import lock) stays locked for ever in the
child, which then hangs. So the heartbeat process is forked first, while the agent has no
thread at all; it renews the node's Lease every second (lifecycle.py), so a slow turn of the
loop never looks like a dead node, and PR_SET_PDEATHSIG ends it with the agent.
SIGTERM ends the agent; its pods keep running (as a kubelet's do). `node fail` sends SIGKILL
instead, to it and to every process of the node.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

from ..orchestration.controller import Controller
from ..orchestration.store import ObjectStore
from .migrate import MIGRATE_TO, migrate_in, migrate_out


class Agent(Controller):
    def __init__(self, root, node: dict, node_root, heartbeat_pid: int = 0):
        super().__init__(root)
        self.heartbeat_pid = heartbeat_pid
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
        everyone = self.store.list("Pod")
        pods = [p for p in everyone if p["spec"].get("nodeName") == self.node]
        for p in pods:
            if (p["metadata"].get("annotations") or {}).get(MIGRATE_TO):
                self.guard(migrate_out, self, p, records)    # cold migration: leaving this node
                continue
            self.guard(self.sync_pod, p, records)           # the controller's: a worker per start
        incoming = [p for p in everyone if (p["metadata"].get("annotations") or {}).get(MIGRATE_TO) == self.node
                    and p["spec"].get("nodeName") != self.node]
        for p in incoming:                                  # cold migration: coming here
            self.guard(migrate_in, self, p, records)
        from ..orchestration.kubelet import runtime_name
        self.remove_orphan_pods(frozenset(runtime_name(p) for p in incoming))
        services = self.store.list("Service")
        self.guard(self.sync_proxy, services)
        self.guard(self.write_hosts, pods, services, records)
        if self.kubelet.changed:                            # a pod's status: the control plane's
            from .nodes import wake_controller              # Endpoints and ReplicaSets look now
            wake_controller(self.store.root)
        self.check_heartbeat()

    def sync_proxy(self, services: list[dict]) -> None:
        """kube-proxy on this node: every Service's DNAT rules (orchestration/services.py) in
        the node's own network namespace, from the Endpoints objects the control plane
        writes. A pod's packet to a ClusterIP is rewritten on its own node and goes straight
        to an endpoint's node over the underlay; a NodePort answers on this node's address."""
        from ..orchestration.services import rules_from_endpoints
        self.proxy.sync([(svc, rules_from_endpoints(svc, self.store.get(
            "Endpoints", svc["metadata"]["name"], svc["metadata"]["namespace"])))
            for svc in services if svc["spec"].get("clusterIP")], None)

    def check_heartbeat(self) -> None:
        """The heartbeat process died (it should not): fork a new one — from this loop,
        which has no thread either."""
        if self.heartbeat_pid and os.waitpid(self.heartbeat_pid, os.WNOHANG)[0]:
            print(f"{time.strftime('%H:%M:%S')} heartbeat process {self.heartbeat_pid} ended: "
                  "starting another", flush=True)
            self.heartbeat_pid = start_heartbeat(self.store, self.node)


def start_heartbeat(store: ObjectStore, node: str) -> int:
    """fork(2) a process that renews NODE's Lease every second until its parent dies
    (prctl(PR_SET_PDEATHSIG, SIGKILL); `man 2 PR_SET_PDEATHSIG`) → its pid. Call it only
    while this process has one thread (see the module's docstring)."""
    from ..kernel.syscalls import libc
    from .lifecycle import HEARTBEAT, renew_lease
    parent = os.getpid()
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    try:
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)             # PR_SET_PDEATHSIG
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)      # nudges are for the loop
        while os.getppid() == parent:                       # (it died before the prctl)
            try:
                renew_lease(store, node, HEARTBEAT * 5)
            except OSError as e:
                print(f"{time.strftime('%H:%M:%S')} heartbeat: {e}", flush=True)
            time.sleep(HEARTBEAT)
    finally:
        os._exit(0)


def main(argv: list[str]) -> None:
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
    beat = start_heartbeat(store, name)                     # before any thread: see above
    tmp = info.with_name(".agent.json.tmp")
    tmp.write_text(json.dumps(me))
    os.replace(tmp, info)
    print(f"{time.strftime('%H:%M:%S')} agent of {name} ({os.getpid()}) started", flush=True)
    agent = None
    try:
        agent = Agent(cstore.root, node, cstore.node_root(name), beat)
        agent.run()
    finally:
        try:                                                # stopped: no more heartbeats
            os.kill(agent.heartbeat_pid if agent else beat, signal.SIGKILL)
        except ProcessLookupError:
            pass
        print(f"{time.strftime('%H:%M:%S')} agent of {name} ({os.getpid()}) stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
