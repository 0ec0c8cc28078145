"""Services: one stable virtual address in front of the changing set of ready pods.

    https://kubernetes.io/docs/concepts/services-networking/service/   man 8 nft

Pods come and go with new addresses; a Service's ClusterIP (10.96.0.0/16 here, as Kubernetes'
default range) stays. Nothing answers on a ClusterIP: it exists only as netfilter rules, as
kube-proxy's iptables/nftables modes make them. **minicontainer uses nftables DNAT** (no
userspace proxy): the first packet of each connection to CLUSTER_IP:PORT has its destination
rewritten to one ready endpoint, taken in turn (`numgen inc`, round robin), and conntrack
rewrites every later packet of that connection the same way:

    table ip minicontainer-services
      chain services     ip daddr 10.96.0.10 tcp dport 80 meta mark set 0x4d43
                           dnat ip to numgen inc mod 3 map { 0 : 10.201.0.5 . 80, 1 : … }
                         fib daddr type local tcp dport 30080 …   (NodePort: any host address)
      chain prerouting   (from pods)        jump services
      chain output       (from the host)    jump services
      chain postrouting  meta mark 0x4d43 masquerade

The masquerade is needed when client and endpoint sit on the same bridge: without it the
endpoint would answer the client directly, from an address the client never called.
The whole table is replaced in one `nft -f` transaction whenever the endpoints change, so
no packet ever sees half a rule set. A route sends 10.96.0.0/16 to the bridge, so the host's
own programs reach ClusterIPs too; NodePort also sets route_localnet on the bridge, so
127.0.0.1:NODEPORT works.

Names: the kubelet writes each pod's /etc/hosts with every Service (`web`, `web.default`,
`web.default.svc.cluster.local`) — Kubernetes runs a DNS server (CoreDNS) for this instead.
"""
from __future__ import annotations

import ipaddress
import subprocess

from .store import ObjectStore

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
NODEPORT_RANGE = range(30000, 32768)
TABLE = "minicontainer-services"
MARK = "0x4d43"


def allocate(store: ObjectStore, svc: dict) -> None:
    """spec.clusterIP (and each NodePort) once, kept for the Service's life."""
    services = store.list("Service")
    used_ips = {s["spec"].get("clusterIP") for s in services}
    used_ports = {p.get("nodePort") for s in services for p in s["spec"].get("ports", [])}
    spec = svc["spec"]
    changes = {}
    if not spec.get("clusterIP"):
        changes["clusterIP"] = next(str(ip) for ip in SERVICE_CIDR.hosts()
                                    if int(ip) - int(SERVICE_CIDR.network_address) >= 10
                                    and str(ip) not in used_ips)
    ports = [dict(p) for p in spec.get("ports", [])]
    if spec.get("type") == "NodePort":
        for p in ports:
            if not p.get("nodePort"):
                p["nodePort"] = next(n for n in NODEPORT_RANGE if n not in used_ports)
                used_ports.add(p["nodePort"])
                changes["ports"] = ports
    if changes:
        def change(o):
            o["spec"].update(changes)
            o["spec"]["clusterIPs"] = [o["spec"]["clusterIP"]]
        svc.update(store.update("Service", svc["metadata"]["name"], change, svc["metadata"]["namespace"]))


def target_port(port: dict, pod: dict) -> int:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for c in pod["spec"]["containers"]:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return int(port["port"])


def sync_endpoints(store: ObjectStore, svc: dict, pods: list[dict]) -> tuple[list, list]:
    """The ready pods the selector picks: ([(port, [(ip, tport)])] for the rules, the Endpoints
    object's subsets). write_endpoints() stores the subsets once the rules are in place, so
    an address in `get endpoints` is one a connection can reach."""
    from .controllers import ready
    from .store import matches
    ns = svc["metadata"]["namespace"]
    chosen = [p for p in pods if p["metadata"].get("namespace") == ns and svc["spec"].get("selector")
              and matches(svc["spec"]["selector"], p["metadata"].get("labels") or {})]
    ready_pods = [p for p in chosen if ready(p) and (p.get("status") or {}).get("podIP")]
    not_ready = [p for p in chosen if not ready(p) and (p.get("status") or {}).get("podIP")]
    out = []
    subsets = []
    for port in svc["spec"].get("ports", []):
        eps = sorted((p["status"]["podIP"], target_port(port, p)) for p in ready_pods)
        out.append((port, eps))
    if ready_pods or not_ready:
        ports = [{"name": p.get("name", ""), "port": target_port(p, (ready_pods or not_ready)[0]),
                  "protocol": p.get("protocol", "TCP")} for p in svc["spec"].get("ports", [])]
        subset = {"ports": ports}
        if ready_pods:
            subset["addresses"] = [{"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                                    "targetRef": {"kind": "Pod", "name": p["metadata"]["name"],
                                                  "namespace": ns}} for p in ready_pods]
        if not_ready:
            subset["notReadyAddresses"] = [{"ip": p["status"]["podIP"], "targetRef": {
                "kind": "Pod", "name": p["metadata"]["name"], "namespace": ns}} for p in not_ready]
        subsets = [subset]
    return out, subsets


def write_endpoints(store: ObjectStore, svc: dict, subsets: list) -> bool:
    """→ whether the Endpoints object changed (a cluster's nodes then reprogram their rules)."""
    ns = svc["metadata"]["namespace"]
    ep = store.get("Endpoints", svc["metadata"]["name"], ns)
    if ep is None:
        store.create({"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": svc["metadata"]["name"], "namespace": ns,
                                   "labels": svc["metadata"].get("labels", {})},
                      "subsets": subsets})
        return True
    if ep.get("subsets") != subsets:
        store.update("Endpoints", svc["metadata"]["name"], lambda o: o.__setitem__("subsets", subsets), ns)
        return True
    return False


def rules_from_endpoints(svc: dict, ep: dict | None) -> list:
    """kube-proxy's view of a Service: [(port, [(ip, target port)…])…] from the ready
    addresses its Endpoints object lists — what each cluster node's agent programs. (The
    controller computes the same from the pods: sync_endpoints.) A subset's ports are in
    the order of the Service's (sync_endpoints writes them so)."""
    out = []
    for i, port in enumerate(svc["spec"].get("ports", [])):
        eps = [(a["ip"], sub["ports"][i]["port"]) for sub in (ep or {}).get("subsets") or []
               if i < len(sub.get("ports") or []) for a in sub.get("addresses") or []]
        out.append((port, sorted(eps)))
    return out


def ruleset(services: list[tuple[dict, list]]) -> str:
    """The nft table for every Service: (service, [(port, [(ip, port)…])…])."""
    rules = []
    for svc, ports in services:
        vip = svc["spec"].get("clusterIP")
        for port, eps in ports:
            proto = port.get("protocol", "TCP").lower()
            matches = [f"ip daddr {vip} {proto} dport {port['port']}"]
            if port.get("nodePort"):
                matches.append(f"fib daddr type local {proto} dport {port['nodePort']}")
            for match in matches:
                if not eps:                                  # no ready pod: refuse at once
                    rules.append(f"{match} reject with tcp reset" if proto == "tcp" else f"{match} drop")
                    continue
                targets = ", ".join(f"{i} : {ip} . {tp}" for i, (ip, tp) in enumerate(eps))
                rules.append(f"{match} meta mark set {MARK} dnat ip to numgen inc mod {len(eps)} "
                             f"map {{ {targets} }}")
    body = "\n".join(f"    {r}" for r in rules)
    return (f"table ip {TABLE} {{\n  chain services {{\n{body}\n  }}\n"
            "  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n"
            "    jump services\n  }\n"
            "  chain output {\n    type nat hook output priority -100; policy accept;\n"
            "    jump services\n  }\n"
            "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
            f"    meta mark {MARK} masquerade\n  }}\n}}\n")


class Proxy:
    """kube-proxy's job: keep the nft table equal to the Services' endpoints."""

    def __init__(self):
        self.applied = None

    def sync(self, services: list[tuple[dict, list]], bridge: str | None) -> None:
        text = ruleset(services) if services else ""
        if text == self.applied:
            return
        if not services:                                    # the last Service went: no table, no route
            self.clear()
            self.applied = text
            return
        script = f"table ip {TABLE}\ndelete table ip {TABLE}\n" + text   # replace, atomically
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True)
        if services and bridge:
            subprocess.run(["ip", "route", "replace", str(SERVICE_CIDR), "dev", bridge],
                           check=False, capture_output=True)
            if any(p.get("nodePort") for s, ports in services for p, _ in ports):
                with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
                    f.write("1")
        self.applied = text

    def clear(self) -> None:
        subprocess.run(["nft", "delete", "table", "ip", TABLE], capture_output=True)
        subprocess.run(["ip", "route", "del", str(SERVICE_CIDR)], capture_output=True)
        self.applied = None


def hosts_text(pod: dict, services: list[dict]) -> str:
    """A pod's /etc/hosts: localhost, itself, every Service of its namespace (and others, fully named)."""
    from ..network.hosts import LOCALHOST
    ns = pod["metadata"].get("namespace", "default")
    lines = [LOCALHOST]
    ip = (pod.get("status") or {}).get("podIP")
    if ip:
        lines.append(f"{ip}\t{pod['metadata']['name']}\n")
    for s in services:
        vip, name, sns = s["spec"].get("clusterIP"), s["metadata"]["name"], s["metadata"]["namespace"]
        if vip:
            short = [name] if sns == ns else []
            lines.append(f"{vip}\t{' '.join(short + [f'{name}.{sns}', f'{name}.{sns}.svc', f'{name}.{sns}.svc.cluster.local'])}\n")
    return "# written by minicontainer's kubelet: the pod and every Service\n" + "".join(lines)
