"""Cluster verbs: cluster create|rm|rebalance, node ls|describe|add|rm|cordon|uncordon|drain|
fail|recover, migrate pod/NAME --to NODE (docs/cluster.md). Each one parses, calls minicontainer.api (cluster/ underneath), and prints."""
from __future__ import annotations

import json
from typing import Optional

import click
import typer

from .typer_app import app, root_of

cluster_app = typer.Typer(no_args_is_help=True,
                          help="A cluster of nodes on this machine: network namespaces, agents, failover.")
app.add_typer(cluster_app, name="cluster")
node_app = typer.Typer(no_args_is_help=True, help="The cluster's nodes.")
app.add_typer(node_app, name="node")


@cluster_app.command("create")
def cluster_create(ctx: typer.Context,
                   nodes: int = typer.Option(3, "--nodes", "-n", help="How many nodes."),
                   cpus: float = typer.Option(1.0, "--cpus", help="Allocatable CPUs per node."),
                   memory: str = typer.Option("1Gi", "--memory", help="Allocatable memory per node (512Mi, 2Gi)."),
                   node_timeout: float = typer.Option(5.0, "--node-timeout",
                                                      help="Seconds without a heartbeat before a node is NotReady (Kubernetes: 40).")):
    """Create the nodes: each a network namespace, bridge, pod subnet, cgroup and agent."""
    from ..api import create_cluster
    record = create_cluster(root_of(ctx), nodes=nodes, cpus=cpus, memory=memory, node_timeout=node_timeout)
    for n in record["nodes"].values():
        click.echo(f"node/{n['name']} created: netns {n['netns']}, {n['ip']}, pods {n['subnet']}, "
                   f"{n['cpus']:g} CPU, {n['memory'] >> 20}Mi")
    click.echo(f"cluster created in {record['seconds']:.2f}s — `minicontainer node ls`, "
               "then `minicontainer apply -f …`")


@cluster_app.command("rm")
def cluster_rm(ctx: typer.Context):
    """Power off and remove every node, the underlay and the records."""
    from ..api import remove_cluster
    for name in remove_cluster(root_of(ctx)):
        click.echo(f"node/{name} removed")
    click.echo("cluster removed")


@cluster_app.command("rebalance")
def cluster_rebalance(ctx: typer.Context,
                      threshold: int = typer.Option(1, "--threshold", help="Pods a node may have more than another."),
                      auto: Optional[bool] = typer.Option(None, "--auto/--no-auto",
                                                          help="Let the control plane rebalance by itself from now on."),
                      timeout: float = typer.Option(120, "--timeout")):
    """DRS by hand: move pods off the busiest node, one at a time, until the spread is even."""
    from ..api import rebalance
    rebalance(root_of(ctx), threshold=threshold, auto=auto, timeout=timeout, emit=click.echo)


@app.command("migrate")
def migrate(ctx: typer.Context, ref: str = typer.Argument(..., help="pod/NAME"),
            to: str = typer.Option(..., "--to", help="The node to move it to."),
            timeout: float = typer.Option(60, "--timeout")):
    """Cold-migrate a pod to another node: its writable layer, volumes and name go with it."""
    from ..api import migrate_pod
    migrate_pod(root_of(ctx), ref, to, timeout=timeout, emit=click.echo)


@node_app.command("ls")
def node_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json.")):
    """The nodes: status, address, pod subnet, pods, requests against allocatable."""
    from ..api import list_nodes
    from .exits import fail
    if format not in ("table", "json"):
        fail(f"invalid --format {format!r}: use table or json")
    rows = list_nodes(root_of(ctx))
    if format == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    from .commands import _table
    _table([("NAME", "STATUS", "AGE", "INTERNAL-IP", "POD-CIDR", "PODS", "CPU-REQ", "MEM-REQ", "AGENT")]
           + [(r["name"], r["status"], r["age"], r["ip"], r["subnet"], str(r["pods"]),
               f"{r['cpu_requests']}m/{r['cpu_millis']}m",
               f"{r['memory_requests'] >> 20}Mi/{r['memory'] >> 20}Mi",
               str(r["agent_pid"] or ("-" if not r["failed"] else "down"))) for r in rows])


@node_app.command("describe")
def node_describe(ctx: typer.Context, name: str = typer.Argument(..., help="The node.")):
    """Everything about one node: conditions, lease, taints, pods, and where it lives."""
    from ..api import describe_node
    click.echo(describe_node(root_of(ctx), name))


@node_app.command("add")
def node_add(ctx: typer.Context, name: Optional[str] = typer.Argument(None, help="Its name (default nodeN)."),
             cpus: float = typer.Option(1.0, "--cpus"), memory: str = typer.Option("1Gi", "--memory")):
    """Add a node to the cluster (it joins Ready within a second)."""
    from ..api import add_node
    n = add_node(root_of(ctx), name, cpus=cpus, memory=memory)
    click.echo(f"node/{n['name']} added: {n['ip']}, pods {n['subnet']}")


@node_app.command("rm")
def node_rm(ctx: typer.Context, name: str = typer.Argument(...),
            force: bool = typer.Option(False, "--force", "-f", help="Even the last Ready node.")):
    """Remove a node; its pods are rescheduled on the others."""
    from ..api import remove_node
    remove_node(root_of(ctx), name, force=force)
    click.echo(f"node/{name} removed")


@node_app.command("cordon")
def node_cordon(ctx: typer.Context, name: str = typer.Argument(...)):
    """No new pods on NAME (spec.unschedulable); its pods stay."""
    from ..api import cordon_node
    cordon_node(root_of(ctx), name, True)
    click.echo(f"node/{name} cordoned")


@node_app.command("uncordon")
def node_uncordon(ctx: typer.Context, name: str = typer.Argument(...)):
    """NAME takes new pods again."""
    from ..api import cordon_node
    cordon_node(root_of(ctx), name, False)
    click.echo(f"node/{name} uncordoned")


@node_app.command("drain")
def node_drain(ctx: typer.Context, name: str = typer.Argument(...),
               timeout: float = typer.Option(120, "--timeout", help="Seconds to wait for the pods to move.")):
    """Cordon NAME and move every pod away, gracefully (maintenance)."""
    from ..api import drain_node
    drain_node(root_of(ctx), name, timeout=timeout, emit=click.echo)


@node_app.command("fail")
def node_fail(ctx: typer.Context, name: str = typer.Argument(...)):
    """A power cut: SIGKILL to the agent and every process of NAME, its links down."""
    from ..api import fail_node
    n = fail_node(root_of(ctx), name)
    click.echo(f"node/{name} failed: {n['killed']} processes killed, links down — NotReady "
               "once its heartbeats are missed for the node timeout")


@node_app.command("recover")
def node_recover(ctx: typer.Context, name: str = typer.Argument(...)):
    """Power NAME on again: it boots empty and takes new pods."""
    from ..api import recover_node
    recover_node(root_of(ctx), name)
    click.echo(f"node/{name} recovered (empty)")
