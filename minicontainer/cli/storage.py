"""Storage verbs: volume, diff, commit, snapshot, export, image export, system df.

Each one parses, calls minicontainer.api (which calls storage/), and prints."""
from __future__ import annotations

import json
from typing import List, Optional

import click
import typer

from .exits import fail
from .typer_app import app, image_app, root_of
from .commands import _size, _table, system_app

volume_app = typer.Typer(no_args_is_help=True, help="Manage named volumes (storage that outlives containers).")
snapshot_app = typer.Typer(no_args_is_help=True, help="Save and roll back a container's changes.")
app.add_typer(volume_app, name="volume")
app.add_typer(snapshot_app, name="snapshot")


# ── volumes ─────────────────────────────────────────────────────────────────────────────────

@volume_app.command("create")
def volume_create(ctx: typer.Context, name: Optional[str] = typer.Argument(None, help="A name (default: a random ID)."),
                  opt: List[str] = typer.Option([], "--opt", "-o", help="size=N: limit the volume (e.g. size=1g)."),
                  pool: Optional[str] = typer.Option(None, "--pool", help="The storage pool (default: default).")):
    """Create a named volume (`run -v NAME:/dir` also creates it)."""
    from ..api import volume_store
    click.echo(volume_store(root_of(ctx)).create(name, opt, pool).name)


@volume_app.command("ls")
def volume_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json.")):
    """List named volumes."""
    from ..api import volume_store
    volumes = volume_store(root_of(ctx)).list()
    if format == "json":
        click.echo(json.dumps([v.to_dict() for v in volumes], indent=1))
        return
    _table([("DRIVER", "VOLUME NAME", "POOL")] + [("local", v.name, v.pool) for v in volumes])


@volume_app.command("inspect")
def volume_inspect(ctx: typer.Context, names: List[str] = typer.Argument(...)):
    """Show volumes as JSON (where their data is on the host)."""
    from ..api import volume_store
    store = volume_store(root_of(ctx))
    click.echo(json.dumps([store.get(n).to_dict() for n in names], indent=1))


@volume_app.command("rm")
def volume_rm(ctx: typer.Context, names: List[str] = typer.Argument(...)):
    """Remove volumes and their data (refused while a container lists them)."""
    from ..api import remove_volume
    for name in names:
        click.echo(remove_volume(name, root_of(ctx)).name)


@volume_app.command("migrate")
def volume_migrate(ctx: typer.Context, name: str = typer.Argument(..., help="The volume."),
                   to: str = typer.Option(..., "--to", help="The pool to move it to.")):
    """Move a volume to another pool; its containers keep running, paused only for the switch."""
    from ..api import migrate_volume
    done = migrate_volume(name, to, root_of(ctx))
    users = ", ".join(done["containers"])
    click.echo(f"moved volume {name} from pool {done['from']} to {done['to']}: {done['bytes']} bytes "
               f"({done['precopy_bytes']} copied while running, {done['final_bytes']} while paused) "
               f"in {done['seconds']:.2f} s; " + (f"{users} paused for {done['pause_ms']:.1f} ms"
                                                  + (f" ({done['tries']} tries: a file was open)"
                                                     if done["tries"] > 1 else "")
                                                  if users else "no running container used it"))


pool_app = typer.Typer(no_args_is_help=True, help="Storage pools: where volumes keep their data.")
volume_app.add_typer(pool_app, name="pool")


@pool_app.command("create")
def pool_create(ctx: typer.Context, name: str = typer.Argument(...),
                path: Optional[str] = typer.Option(None, "--path", help="A directory pool on this directory."),
                size: Optional[str] = typer.Option(None, "--size", help="A pool on an ext4 image of this size "
                                                   "(a loop device, e.g. 256m).")):
    """Create a storage pool: a directory (--path) or an ext4 image on a loop device (--size)."""
    from ..api import create_pool
    click.echo(create_pool(name, path=path, size=size, root=root_of(ctx)).name)


@pool_app.command("ls")
def pool_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json.")):
    """List storage pools and how many volumes each holds."""
    from ..api import list_pools, volume_store
    pools = list_pools(root_of(ctx))
    if format == "json":
        click.echo(json.dumps([p.to_dict() for p in pools], indent=1))
        return
    volumes = volume_store(root_of(ctx)).list()
    _table([("POOL", "DRIVER", "SIZE", "VOLUMES", "PATH")] +
           [(p.name, p.driver, _size(p.size) if p.size else "-",
             str(sum(v.pool == p.name for v in volumes)), str(p.path)) for p in pools])


@pool_app.command("rm")
def pool_rm(ctx: typer.Context, names: List[str] = typer.Argument(...)):
    """Remove empty storage pools (a loop pool's image goes with it; a directory stays)."""
    from ..api import remove_pool
    for name in names:
        click.echo(remove_pool(name, root_of(ctx)).name)


# ── diff, commit, export ────────────────────────────────────────────────────────────────────

@app.command()
def diff(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID.")):
    """Files the container added (A), changed (C) or deleted (D), read from its upper dir."""
    from ..api import container_diff, format_changes
    click.echo(format_changes(container_diff(container, root_of(ctx))), nl=False)


@app.command()
def commit(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
           image: str = typer.Argument(..., help="NAME[:TAG] of the new image.")):
    """Make a new image: the container's image plus its changes as one more layer."""
    from ..api import commit_container
    made = commit_container(container, image, root_of(ctx))
    click.echo(f"{made.ref} {made.digest}")


@app.command("export")
def export(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
           output: str = typer.Option(..., "--output", "-o", help="The tar file to write.")):
    """Write the container's whole filesystem as a tar (a backup; `image import` reads it)."""
    from ..api import export_container
    export_container(container, output, root_of(ctx))


@image_app.command("export")
def image_export(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME[:TAG]"),
                 output: str = typer.Option(..., "--output", "-o", help="The archive to write."),
                 format: str = typer.Option("oci", "--format", help="oci (an OCI archive) or docker (docker-archive).")):
    """Write an image as an archive that skopeo, podman and docker load."""
    from ..api import export_image
    export_image(ref, output, format, root_of(ctx))


# ── snapshots ───────────────────────────────────────────────────────────────────────────────

@snapshot_app.command("create")
def snapshot_create(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
                    tag: Optional[str] = typer.Argument(None, help="A tag (default: the date and time).")):
    """Copy the container's changes (frozen meanwhile if it runs)."""
    from ..api import container_snapshots
    click.echo(container_snapshots(container, root_of(ctx)).create(tag)["tag"])


@snapshot_app.command("ls")
def snapshot_ls(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
                format: str = typer.Option("table", "--format", help="table or json.")):
    """List a container's snapshots."""
    from ..api import container_snapshots
    snaps = container_snapshots(container, root_of(ctx)).list()
    if format == "json":
        click.echo(json.dumps(snaps, indent=1))
        return
    _table([("TAG", "CREATED", "SIZE")] + [(s["tag"], s["created"], _size(s["size"])) for s in snaps])


@snapshot_app.command("restore")
def snapshot_restore(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
                     tag: str = typer.Argument(...)):
    """Put the container's files back as they were in the snapshot (container stopped)."""
    from ..api import container_snapshots
    click.echo(container_snapshots(container, root_of(ctx)).restore(tag)["tag"])


@snapshot_app.command("rm")
def snapshot_rm(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
                tags: List[str] = typer.Argument(...)):
    """Delete snapshots."""
    from ..api import container_snapshots
    snaps = container_snapshots(container, root_of(ctx))
    for tag in tags:
        click.echo(snaps.remove(tag)["tag"])


# ── system df ───────────────────────────────────────────────────────────────────────────────

@system_app.command("df")
def system_df(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json.")):
    """Disk usage of images (shared layers counted once), containers and volumes."""
    from ..api import disk_usage
    rows = disk_usage(root_of(ctx))
    if format == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if format != "table":
        fail(f"invalid --format {format!r}: use table or json")
    table = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
    for r in rows:
        share = f" ({100 * r['reclaimable'] // r['size']}%)" if r["size"] else ""
        table.append((r["type"], str(r["total"]), str(r["active"]), _size(r["size"]),
                      _size(r["reclaimable"]) + share))
    _table(table)
