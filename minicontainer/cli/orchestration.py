"""Orchestration verbs: pod create|ls|inspect|start|stop|rm (docs/orchestration.md).

Each one parses, calls minicontainer.api (orchestration/pods.py underneath), and prints."""
from __future__ import annotations

import json
from typing import List, Optional

import click
import typer

from . import fail
from .typer_app import app, root_of

pod_app = typer.Typer(no_args_is_help=True,
                      help="Manage pods: containers sharing one network, hostname and cgroup.")
app.add_typer(pod_app, name="pod")


@pod_app.command("create")
def pod_create(ctx: typer.Context,
               name: Optional[str] = typer.Option(None, "--name", help="The pod's name (default: pod-ID)."),
               publish: List[str] = typer.Option([], "--publish", "-p",
                                                 help="[HOST_IP:]HOST_PORT:CTR_PORT[/tcp|udp], for every container of the pod."),
               label: List[str] = typer.Option([], "--label", "-l", help="KEY=VALUE.")):
    """Create a pod and start its infra container; print the pod's ID."""
    from ..api import create_pod
    labels = dict(item.partition("=")[::2] for item in label)
    click.echo(create_pod(name, root=root_of(ctx), publish=publish, labels=labels)["id"])


@pod_app.command("ls")
def pod_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json."),
           quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the IDs.")):
    """List pods with their status and number of containers."""
    from ..api import list_pods
    from ..lifecycle import human_duration
    import time
    if format not in ("table", "json"):
        fail(f"invalid --format {format!r}: use table or json")
    pods = list_pods(root_of(ctx))
    if quiet:
        for p in pods:
            click.echo(p["id"][:12])
    elif format == "json":
        click.echo(json.dumps(pods, indent=1))
    else:
        from .commands import _table
        _table([("POD ID", "NAME", "STATUS", "CREATED", "# OF CONTAINERS")]
               + [(p["id"][:12], p["name"], p["status"],
                   human_duration(time.time() - p["created"]) + " ago", str(p["containers"]))
                  for p in pods])


@pod_app.command("inspect")
def pod_inspect(ctx: typer.Context, pods: List[str] = typer.Argument(..., help="Pod names or IDs.")):
    """Show a pod as JSON: its infra container, cgroup and members."""
    from ..api import inspect_pod
    click.echo(json.dumps([inspect_pod(p, root_of(ctx)) for p in pods], indent=1))


@pod_app.command("start")
def pod_start(ctx: typer.Context, pods: List[str] = typer.Argument(..., help="Pod names or IDs.")):
    """Start the infra container, then every member that is not running."""
    from ..api import start_pod
    for p in pods:
        click.echo(start_pod(p, root_of(ctx))["name"])


@pod_app.command("stop")
def pod_stop(ctx: typer.Context, pods: List[str] = typer.Argument(..., help="Pod names or IDs."),
             time: float = typer.Option(10, "--time", "-t", help="Seconds to wait before SIGKILL.")):
    """Stop the members (SIGTERM, then SIGKILL), then the infra container."""
    from ..api import stop_pod
    for p in pods:
        click.echo(stop_pod(p, time, root_of(ctx))["name"])


@pod_app.command("rm")
def pod_rm(ctx: typer.Context, pods: List[str] = typer.Argument(..., help="Pod names or IDs."),
           force: bool = typer.Option(False, "--force", "-f", help="Stop a running pod first.")):
    """Remove pods: their containers, infra container, cgroup and record."""
    from ..api import remove_pod
    for p in pods:
        click.echo(remove_pod(p, force=force, root=root_of(ctx))["name"])
