"""A cluster on one machine: nodes, their agents, failover and migration (docs/cluster.md).

    network.py    the node's own network namespace, bridge and pod subnet; the underlay
                  between the nodes (a bridge plus routes between the pod subnets)
    nodes.py      cluster create|rm, node add|rm|ls|describe|cordon|uncordon|drain|fail|recover
    agent.py      the node agent (kubelet and kube-proxy): runs the pods bound to its node,
                  programs the Services' rules in its netns, heartbeats (a child process)
    migrate.py    cold migration (the target prepares while the source serves), rebalancing
    members.py    what the control plane and scheduler read about the nodes; waking the agents
    lifecycle.py  the control plane's side: Node objects for the scheduler, heartbeats →
                  NotReady → the pods evicted and rescheduled (failover)

A node is a host in every way the kernel allows on one machine: a network namespace, a state
root, a cgroup parent with its allocatable CPU and memory, an agent process. Its pods start
through orchestration/kubelet.py and pods.py — the one run sequence (runtime.py) — exactly as
on a single machine; only the root, the cgroup parent and the network namespace differ.
"""
