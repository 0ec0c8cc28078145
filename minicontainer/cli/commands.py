"""The verbs. Each one: parse options → call the library → print. No container logic here."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import click
import typer

from . import app, fail, image_app, root_of

RUN_CONTEXT = {"allow_interspersed_args": False}   # options after IMAGE belong to the command


@app.command(context_settings=RUN_CONTEXT)
def run(ctx: typer.Context,
        image: str = typer.Argument(..., help="Image NAME[:TAG] (see `minicontainer image ls`)."),
        command: Optional[List[str]] = typer.Argument(None, help="Command and arguments (default: /bin/sh)."),
        rm: bool = typer.Option(False, "--rm", help="Remove the container when it exits."),
        name: Optional[str] = typer.Option(None, "--name", help="A name for the container."),
        hostname: Optional[str] = typer.Option(None, "--hostname", "-h", help="Hostname inside (default: short ID)."),
        env: List[str] = typer.Option([], "--env", "-e", help="Set KEY=VALUE (or KEY to copy yours)."),
        workdir: Optional[str] = typer.Option(None, "--workdir", "-w", help="Working directory inside."),
        user: Optional[str] = typer.Option(None, "--user", "-u", help="UID[:GID] or NAME[:GROUP] inside."),
        read_only: bool = typer.Option(False, "--read-only", help="Mount the container's / read-only."),
        interactive: bool = typer.Option(False, "--interactive", "-i", help="Keep stdin attached."),
        isolation: str = typer.Option("pivot_root", "--isolation",
                                      help="pivot_root (default) or chroot (escapable; for labs)."),
        explain: bool = typer.Option(False, "--explain", help="Narrate every step: syscall, shell, man page."),
        net: str = typer.Option("bridge", "--net", "--network",
                                help="bridge (default), none, host, a network's name, or container:NAME."),
        publish: List[str] = typer.Option([], "--publish", "-p", help="[HOST_IP:]HOST_PORT:CTR_PORT[/tcp|udp]"),
        memory: Optional[str] = typer.Option(None, "--memory", "-m", help="Memory limit, e.g. 64m."),
        memory_swap: Optional[str] = typer.Option(None, "--memory-swap", help="Memory+swap limit (-1: unlimited)."),
        pids_limit: Optional[str] = typer.Option(None, "--pids-limit", help="Maximum number of processes."),
        cpus: Optional[str] = typer.Option(None, "--cpus", help="CPU quota in CPUs, e.g. 0.5."),
        cpu_shares: Optional[str] = typer.Option(None, "--cpu-shares", help="Relative CPU weight (default 1024)."),
        cpuset_cpus: Optional[str] = typer.Option(None, "--cpuset-cpus", help="CPUs allowed, e.g. 0-1 or 1."),
        cap_add: List[str] = typer.Option([], "--cap-add", help="Add a capability (e.g. NET_ADMIN)."),
        cap_drop: List[str] = typer.Option([], "--cap-drop", help="Drop a capability (ALL for all)."),
        privileged: bool = typer.Option(False, "--privileged", help="All capabilities, no seccomp, no masks."),
        security_opt: List[str] = typer.Option([], "--security-opt",
                                               help="seccomp=unconfined|PROFILE.json, no-new-privileges=false, …"),
        ):
    """Run a command in a new container."""
    from ..api import Container
    if isolation == "chroot":
        click.echo("minicontainer: warning: --isolation chroot can be escaped by a root process "
                   "(see labs/01-chroot); use it only to learn why", err=True)
    limits = {k: v for k, v in dict(memory=memory, memory_swap=memory_swap, pids_limit=pids_limit,
                                     cpus=cpus, cpu_shares=cpu_shares, cpuset_cpus=cpuset_cpus).items()
              if v is not None}
    if not interactive:
        _stdin_from_devnull()
    container = Container(image, command or [], root=root_of(ctx), explain=explain, remove=rm,
                          name=name, hostname=hostname, env=env, workdir=workdir, user=user,
                          read_only=read_only, isolation=isolation, interactive=interactive,
                          limits=limits, net=net, publish=publish, cap_add=cap_add, cap_drop=cap_drop, privileged=privileged,
                          security_opt=security_opt)
    raise SystemExit(container.run())


def _stdin_from_devnull() -> None:
    """Without -i the container reads EOF from stdin, as with `docker run` (no -i)."""
    import os
    fd = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)


@app.command()
def ps(ctx: typer.Context,
       all: bool = typer.Option(False, "--all", "-a", help="Show stopped containers too."),
       format: str = typer.Option("table", "--format", help="table or json.")):
    """List containers."""
    from ..api import list_containers
    records = [r for r in list_containers(root_of(ctx)) if all or r.status == "running"]
    if format == "json":
        from dataclasses import asdict
        click.echo(json.dumps([asdict(r) for r in records], indent=1))
        return
    if format != "table":
        fail(f"invalid --format {format!r}: use table or json")
    rows = [("CONTAINER ID", "NAME", "IMAGE", "COMMAND", "STATUS", "PID")]
    for r in records:
        rows.append((r.short_id, r.name, r.image, _short(" ".join(r.command), 24), _status(r),
                     str(r.pid) if r.status == "running" else ""))
    _table(rows)


@app.command()
def rm(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs."),
       force: bool = typer.Option(False, "--force", "-f", help="Kill a running container first.")):
    """Remove containers (their files, cgroup and state)."""
    from ..api import remove_container
    from ..errors import MinicontainerError
    failed = False
    for ref in containers:
        try:
            remove_container(ref, force=force, root=root_of(ctx))
            click.echo(ref)
        except MinicontainerError as e:
            click.echo(f"minicontainer: {e}", err=True)
            failed = True
    if failed:
        raise SystemExit(1)


@app.command()
def stats(ctx: typer.Context, containers: Optional[List[str]] = typer.Argument(None, help="Names or IDs (default: all running)."),
          no_stream: bool = typer.Option(False, "--no-stream", help="Print one sample and exit."),
          format: str = typer.Option("table", "--format", help="table or json.")):
    """Live memory, CPU and PIDs of running containers, read from their cgroups."""
    from ..api import container_stats
    if format not in ("table", "json"):
        fail(f"invalid --format {format!r}: use table or json")
    while True:
        rows = container_stats(containers or (), root=root_of(ctx), interval=1.0 if not no_stream else 0.5)
        if format == "json":
            click.echo(json.dumps(rows, indent=1))
        else:
            if not no_stream:
                click.echo("\033[2J\033[H", nl=False)        # clear the screen, as `docker stats`
            table = [("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS")]
            table += [(r["id"][:12], r["name"], f"{r['cpu_percent']:.2f}%",
                       f"{_mib(r['memory_usage'])} / {_mib(r['memory_limit'])}",
                       f"{100 * r['memory_usage'] / r['memory_limit']:.2f}%",
                       f"{r['pids']}" + (f" / {r['pids_limit']}" if r["pids_limit"] else "")) for r in rows]
            _table(table)
        if no_stream:
            return


def _mib(n: int) -> str:
    return f"{n / 2**30:.2f}GiB" if n >= 2**30 else f"{n / 2**20:.1f}MiB"


# ── images ────────────────────────────────────────────────────────────────────────────────

@image_app.command("import")
def image_import(ctx: typer.Context, file: str = typer.Argument(..., help="A .tar, .tar.gz or .tar.xz rootfs."),
                 ref: str = typer.Argument(..., help="NAME[:TAG] to register it as.")):
    """Unpack a rootfs tarball once into the image store."""
    from ..api import image_store
    with _progress(file) as progress:
        image = image_store(root_of(ctx)).import_archive(file, ref, progress=progress,
                                                          in_use=_users_of(root_of(ctx)))
    click.echo(f"{image.ref} {image.digest}")


@image_app.command("build")
def image_build(ctx: typer.Context, recipe: str = typer.Argument(..., help="A recipe .toml, or a name in rootfs-builder/recipes/.")):
    """Build a userland with rootfs-builder and import it."""
    from ..api import image_store
    from ..builder import build_recipe
    result = build_recipe(recipe)
    click.echo(f"sha256:{result.sha256}  {result.path}", err=True)
    image = image_store(root_of(ctx)).import_archive(result.path, f"{result.name}:{result.tag}",
                                                      source=str(recipe), in_use=_users_of(root_of(ctx)))
    click.echo(f"{image.ref} {image.digest}")


@image_app.command("ls")
def image_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json.")):
    """List images."""
    from ..api import image_store
    images = image_store(root_of(ctx)).list()
    if format == "json":
        from dataclasses import asdict
        click.echo(json.dumps([{**asdict(i), "rootfs": str(i.rootfs)} for i in images], indent=1))
        return
    rows = [("NAME", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    rows += [(i.name, i.tag, i.id[:12], str(i.created)[:19], _size(i.size)) for i in images]
    _table(rows)


@image_app.command("inspect")
def image_inspect(ctx: typer.Context, ref: str):
    """Show an image's record as JSON."""
    from dataclasses import asdict
    from ..api import image_store
    image = image_store(root_of(ctx)).get(ref)
    click.echo(json.dumps({**asdict(image), "rootfs": str(image.rootfs)}, indent=1))


@image_app.command("rm")
def image_rm(ctx: typer.Context, refs: List[str] = typer.Argument(...)):
    """Remove images that no container uses."""
    from ..api import image_store
    store = image_store(root_of(ctx))
    for ref in refs:
        image = store.remove(ref, in_use=_users_of(root_of(ctx)))
        click.echo(f"Deleted: {image.ref}")


def _users_of(root):
    """in_use callback for the image store: the containers (running or not) using an image."""
    def users(image) -> list[str]:
        from ..api import list_containers
        return [c.name for c in list_containers(root) if c.image == image.ref]
    return users


# ── small printing helpers ────────────────────────────────────────────────────────────────

def _table(rows) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _ago(t: float) -> str:
    s = int(time.time() - t)
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= n:
            return f"{s // n} {unit}{'s' if s >= 2 * n else ''} ago"
    return f"{s} seconds ago"


def _status(r) -> str:
    if r.status == "running":
        return f"Up since {_ago(r.started_at)}"
    if r.status == "exited":
        return f"Exited ({r.exit_code if r.exit_code is not None else '?'}) {_ago(r.finished_at or r.created)}"
    return r.status.capitalize()


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000


class _progress:
    """A progress bar on stderr for archives over 50 MB (click's, no extra dependency)."""

    def __init__(self, file: str):
        import os
        self.big = os.path.exists(file) and os.path.getsize(file) > 50_000_000 and sys.stderr.isatty()
        self.bar = None

    def __enter__(self):
        if not self.big:
            return None
        return self.update

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="unpacking", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
