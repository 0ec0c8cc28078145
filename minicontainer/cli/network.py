"""Network verbs: network ls|create|rm|inspect (docs/networking.md).

Each one parses, calls the library (api.network_store: <root>/networks; api.inspect_networks),
and prints. `inspect` reads the live bridge and each container's eth0 with pyroute2
(network/live.py); none of these verbs is on a container's start path."""
from __future__ import annotations

import json
from typing import List, Optional

import click
import typer

from .exits import fail
from .typer_app import app, root_of

network_app = typer.Typer(no_args_is_help=True,
                          help="Manage networks: the default 'bridge' (mc0) and your own.")
app.add_typer(network_app, name="network")


def _networks(ctx: typer.Context):
    from ..api import network_store
    return network_store(root_of(ctx))


@network_app.command("ls")
def network_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json."),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the names.")):
    """List networks: bridge, subnet, gateway, how many containers are on each."""
    if format not in ("table", "json"):
        fail(f"invalid --format {format!r}: use table or json")
    networks = _networks(ctx).list()
    if quiet:
        for n in networks:
            click.echo(n["name"])
    elif format == "json":
        click.echo(json.dumps(networks, indent=1))
    else:
        from .commands import _table
        _table([("NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS")]
               + [(n["name"] + (" (default)" if n.get("default") else ""), n["bridge"], n["subnet"],
                   n["gateway"], str(n["containers"])) for n in networks])


@network_app.command("create")
def network_create(ctx: typer.Context, name: str = typer.Argument(..., help="The network's name (for --net NAME)."),
                   subnet: Optional[str] = typer.Option(None, "--subnet",
                                                        help="IPv4 CIDR, e.g. 10.203.0.0/24 (default: the next free /24 of 10.202.0.0/16)."),
                   bridge: Optional[str] = typer.Option(None, "--bridge",
                                                        help="The bridge's interface name (default: mc-NAME).")):
    """Define a network with its own bridge and subnet (the bridge appears with its first container)."""
    click.echo(_networks(ctx).create(name, subnet=subnet, bridge=bridge).name)


@network_app.command("rm")
def network_rm(ctx: typer.Context, names: List[str] = typer.Argument(..., help="Network names.")):
    """Remove networks: their bridge, NAT rules and files (refused while a container uses one)."""
    store = _networks(ctx)
    for name in names:                           # check them all before removing any
        store.check_removable(name)
    for name in names:
        store.remove(name)
        click.echo(name)


@network_app.command("inspect")
def network_inspect(ctx: typer.Context, names: List[str] = typer.Argument(..., help="Network names.")):
    """Show networks as JSON: definition, containers with their addresses, and the live
    bridge and eth0s as the kernel reports them (read with pyroute2)."""
    from ..api import inspect_networks
    click.echo(json.dumps(inspect_networks(names, root_of(ctx)), indent=1))
