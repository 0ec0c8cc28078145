"""Orchestration verbs: pod create|ls|inspect|start|stop|rm (docs/orchestration.md).

Each one parses, calls minicontainer.api (orchestration/pods.py underneath), and prints."""
from __future__ import annotations

import json
from typing import List, Optional

import click
import typer

from .exits import fail
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
                   p["created_text"], str(p["containers"]))
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


# ── kubectl's verbs (orchestration/kubectl.py via the API) ─────────────────────────────────

@app.command("apply")
def apply_(ctx: typer.Context,
           filename: List[str] = typer.Option(..., "--filename", "-f", help="A YAML/JSON file, a directory, or - (stdin).")):
    """Create or update objects from Kubernetes manifests (checked against Kubernetes' schema first)."""
    from ..api import apply_manifests
    for line in apply_manifests(filename, root_of(ctx)):
        click.echo(line)


@app.command("get")
def get(ctx: typer.Context, kind: str = typer.Argument(..., help="pods, deployments, services, pvc, hpa, events, …"),
        name: Optional[str] = typer.Argument(None, help="One object's name."),
        output: str = typer.Option("", "--output", "-o", help="wide, json or yaml."),
        watch: bool = typer.Option(False, "--watch", "-w", help="Keep printing changed rows.")):
    """List objects as kubectl does."""
    from ..api import get_objects, watch_objects
    if output not in ("", "wide", "json", "yaml"):
        fail(f"error: unable to match a printer suitable for the output format {output!r}: "
             "use wide, json or yaml", 1)
    if "/" in kind and name is None:
        kind, name = kind.split("/", 1)
    if watch:
        try:
            watch_objects(kind, name, root_of(ctx), lambda text: click.echo(text), output)
        except KeyboardInterrupt:
            pass
        return
    click.echo(get_objects(kind, name, root_of(ctx), output))


@app.command("describe")
def describe(ctx: typer.Context, kind: str = typer.Argument(..., help="KIND or KIND/NAME"),
             name: Optional[str] = typer.Argument(None)):
    """Show an object in detail, with its events."""
    from ..api import describe_object
    click.echo(describe_object(kind, name, root_of(ctx)))


@app.command("delete")
def delete(ctx: typer.Context, kind: Optional[str] = typer.Argument(None, help="KIND (or KIND/NAME)"),
           names: Optional[List[str]] = typer.Argument(None, help="Names."),
           filename: List[str] = typer.Option([], "--filename", "-f", help="Delete what these manifests define."),
           wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until pods are gone.")):
    """Delete objects: Pods are stopped within their grace period; a Deployment takes its pods along."""
    from ..api import delete_objects
    names = list(names or [])
    if kind and "/" in kind:
        kind, first = kind.split("/", 1)
        names.insert(0, first)
    for line in delete_objects(root_of(ctx), sources=filename, kind=kind, names=names, wait=wait):
        click.echo(line)


@app.command("scale")
def scale(ctx: typer.Context, ref: str = typer.Argument(..., help="deployment/NAME"),
          replicas: int = typer.Option(..., "--replicas", help="The number of pods wanted.")):
    """Set a Deployment's replicas."""
    from ..api import scale_deployment
    click.echo(scale_deployment(ref, replicas, root_of(ctx)))


@app.command("rollout")
def rollout(ctx: typer.Context, action: str = typer.Argument(..., help="status, undo, restart or history"),
            ref: str = typer.Argument(..., help="deployment/NAME"),
            timeout: float = typer.Option(300, "--timeout", help="status: seconds to wait."),
            to_revision: int = typer.Option(0, "--to-revision", help="undo: this revision, not the previous one.")):
    """Follow, undo or restart a Deployment's rollout."""
    from ..api import rollout as do
    out = do(action, ref, root_of(ctx), emit=click.echo, timeout=timeout, to_revision=to_revision)
    if out:
        click.echo(out)


controller_app = typer.Typer(no_args_is_help=True,
                             help="The controller process that reconciles objects with containers.")
app.add_typer(controller_app, name="controller")


@controller_app.command("status")
def controller_status(ctx: typer.Context, format: str = typer.Option("text", "--format", help="text or json.")):
    """Is it running: PID, uptime, CPU time, memory (PSS)."""
    from ..api import controller_status as status
    info = status(root_of(ctx))
    if format == "json":
        click.echo(json.dumps(info, indent=1))
    elif not info["running"]:
        click.echo("controller: not running (the next apply, scale, rollout or delete starts it)")
    else:
        click.echo(f"controller: running, pid {info['pid']}, up {info['uptime']:.0f}s, "
                   f"cpu {info.get('cpu_seconds', 0):.2f}s, pss {info.get('pss_kb', 0) / 1024:.1f} MiB, "
                   f"log {info['log']}")


@controller_app.command("start")
def controller_start(ctx: typer.Context,
                     backoff: Optional[float] = typer.Option(None, "--backoff", help="Restart back-off base in seconds (Kubernetes: 10)."),
                     hpa_window: Optional[float] = typer.Option(None, "--hpa-window", help="Autoscaler scale-down stabilization in seconds (default: the HPA's, 300).")):
    """Start it (or change its settings); apply starts it by itself."""
    from ..api import start_controller
    info = start_controller(root_of(ctx), backoff=backoff, hpa_window=hpa_window)
    click.echo(f"controller: running, pid {info['pid']}")


@controller_app.command("stop")
def controller_stop(ctx: typer.Context):
    """Stop it; the pods keep running, and the next apply starts it again."""
    from ..api import stop_controller
    click.echo("controller: stopped" if stop_controller(root_of(ctx)) else "controller: was not running")
