"""The verbs. Each one: parse options → call the library → print. No container logic here."""
from __future__ import annotations

import json
import sys
from inspect import Parameter, Signature
from typing import List, Optional

import click
import typer

from .exits import fail
from .typer_app import app, image_app, root_of

RUN_CONTEXT = {"allow_interspersed_args": False}   # options after IMAGE belong to the command


def run(ctx: typer.Context, image: str, command: Optional[List[str]], **options):
    """Run a command in a new container."""
    from .run_verb import run_container
    if ctx.info_name == "create":
        options["create"] = True
    if ctx.meta.get("explain") == "brief":
        options["explain"] = "brief"
    raise SystemExit(run_container(root=root_of(ctx), image=image, command=command or [], **options))


class RunCommand(typer.core.TyperCommand):
    """click's flags take no value, so click would refuse `--explain=brief`, which the fast lane
    accepts: take it off the options (those before IMAGE) and hand it to run() in ctx.meta."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from .run_verb import OPTIONS
        args, i = list(args), 0
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            if args[i] == "--explain=brief":
                args[i], ctx.meta["explain"] = "--explain", "brief"
            elif OPTIONS.get(args[i], ("", "flag"))[1] != "flag":
                i += 1                                     # skip the option's value
            i += 1
        return super().parse_args(ctx, args)


def run_signature() -> Signature:
    """run's parameters for typer: IMAGE, COMMAND…, and one typer.Option per row of
    run_verb.RUN_OPTIONS — the one place run's options are declared."""
    from .run_verb import RUN_OPTIONS, default
    keyword = Parameter.KEYWORD_ONLY
    params = [
        Parameter("ctx", keyword, annotation=typer.Context),
        Parameter("image", keyword, annotation=str, default=typer.Argument(
            ..., help="Image NAME[:TAG] (see `minicontainer image ls`).")),
        Parameter("command", keyword, annotation=Optional[List[str]], default=typer.Argument(
            None, help="Command and arguments (default: the image's, else /bin/sh).")),
    ]
    types = {"flag": bool, "value": Optional[str], "list": List[str]}
    for opts, param, kind, help_ in RUN_OPTIONS:
        params.append(Parameter(param, keyword, annotation=types[kind],
                                default=typer.Option(default(param, kind), *opts, help=help_)))
    return Signature(params)


run.__signature__ = run_signature()
run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
app.command(context_settings=RUN_CONTEXT, cls=RunCommand)(run)
# `create` takes run's options (one declaration): it makes the container and prints its ID.
app.command("create", context_settings=RUN_CONTEXT, cls=RunCommand,
            help="Create a container without starting it; print its ID (`start` runs it).")(run)


@app.command()
def ps(ctx: typer.Context,
       all: bool = typer.Option(False, "--all", "-a", help="Show stopped containers too."),
       quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the IDs (e.g. rm -f $(minicontainer ps -aq))."),
       filter: List[str] = typer.Option([], "--filter", "-f",
                                        help="status=, name=, label=KEY[=VALUE], ancestor=IMAGE, id=, exited=N."),
       format: str = typer.Option("table", "--format",
                                  help="table, json, or a Go template: '{{.ID}}\\t{{.Names}}', 'table {{.Names}}'."),
       last: Optional[int] = typer.Option(None, "--last", "-n", help="The N most recently created (all states)."),
       latest: bool = typer.Option(False, "--latest", "-l", help="The most recently created (all states)."),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Full IDs and commands.")):
    """List containers."""
    from ..api import container_rows, ps_containers, render_list
    records = ps_containers(root_of(ctx), filters=filter,
                              all=all or latest or last is not None,
                              last=1 if latest else last)
    if quiet:
        for r in records:
            click.echo(r.id if no_trunc else r.short_id)
        return
    rows = container_rows(records, no_trunc=no_trunc, with_record=format == "json")
    if format == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if format != "table":
        click.echo(render_list(format, rows, "ps"), nl=False)
        return
    table = [("CONTAINER ID", "NAME", "IMAGE", "COMMAND", "STATUS", "PID", "RESTARTS")]
    for r, row in zip(records, rows):
        table.append((row["ID"], r.name, r.image,
                      " ".join(r.command) if no_trunc else _short(" ".join(r.command), 24), row["Status"],
                      str(row["Pid"] or ""), str(r.restart_count)))
    _table(table)


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


# ── after run (stop.py, freezer.py, inspection.py, logs.py, exec.py, gc.py) ───────────────

def _each(refs, action) -> None:
    """Docker's multi-container verbs: act on each, print it, report failures; exit 1 if any."""
    from ..errors import MinicontainerError
    failed = False
    for ref in refs:
        try:
            out = action(ref)
            click.echo(ref if out is None else out)
        except MinicontainerError as e:
            click.echo(f"minicontainer: {e}", err=True)
            failed = True
    if failed:
        raise SystemExit(1)


@app.command()
def start(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs."),
          attach: bool = typer.Option(False, "--attach", "-a", help="Stay attached: its output, its exit status."),
          interactive: bool = typer.Option(False, "--interactive", "-i", help="Attach stdin too (with -a).")):
    """Start created or stopped containers again (their files as they left them)."""
    from ..api import start_container
    if attach or interactive:
        if len(containers) > 1:
            fail("you cannot start and attach multiple containers at once")
        from .run_verb import stdin_from_devnull
        if not interactive:
            stdin_from_devnull()
        raise SystemExit(start_container(containers[0], attach=True, interactive=interactive,
                                         root=root_of(ctx)))
    _each(containers, lambda ref: start_container(ref, root=root_of(ctx)) and None)


@app.command()
def restart(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs."),
            time_: Optional[float] = typer.Option(None, "--time", "-t",
                                                  help="Seconds to wait for stop before SIGKILL (default: its --stop-timeout, else 10).")):
    """Stop (if running) and start containers again."""
    from ..api import restart_container
    _each(containers, lambda ref: restart_container(ref, timeout=time_, root=root_of(ctx)) and None)


@app.command()
def rename(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
           new_name: str = typer.Argument(..., help="The new name.")):
    """Give a container another name."""
    from ..api import rename_container
    rename_container(container, new_name, root=root_of(ctx))


@app.command()
def port(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID."),
         private_port: Optional[str] = typer.Argument(None, help="PORT[/tcp|udp]: only this one.")):
    """List a running container's published ports (-p)."""
    from ..api import container_ports
    for line in container_ports(container, private_port, root=root_of(ctx)):
        click.echo(line)


@app.command()
def attach(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID of a running container."),
           sig_proxy: bool = typer.Option(True, "--sig-proxy/--no-sig-proxy",
                                          help="Pass Ctrl-C (SIGINT) and SIGTERM on to its PID 1."),
           no_stdin: bool = typer.Option(False, "--no-stdin", help="Do not attach stdin.")):
    """Follow a detached container's output from now until it stops, and feed it your stdin
    (if it was started with -i; Ctrl-P Ctrl-Q detaches); exit with its status."""
    from ..api import attach_container
    from .run_verb import emit
    raise SystemExit(attach_container(container, emit, sig_proxy=sig_proxy, stdin=not no_stdin,
                                      root=root_of(ctx)))


@app.command()
def cp(ctx: typer.Context, src: str = typer.Argument(..., help="CONTAINER:PATH or a host path."),
       dest: str = typer.Argument(..., help="CONTAINER:PATH or a host path."),
       archive: bool = typer.Option(False, "--archive", "-a", help="Keep owners (default: root inside, you outside)."),
       follow_link: bool = typer.Option(False, "--follow-link", "-L", help="Follow a symlink given as SRC.")):
    """Copy files between a container (running or not) and the host."""
    from ..api import copy_files
    copy_files(src, dest, archive=archive, follow=follow_link, root=root_of(ctx))


@app.command()
def logs(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID, or pod/NAME."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output."),
         tail: Optional[int] = typer.Option(None, "--tail", "-n", help="Only the last N lines."),
         timestamps: bool = typer.Option(False, "--timestamps", "-t", help="Prefix each line with its time."),
         pod_container: Optional[str] = typer.Option(None, "--container", "-c", help="pod/NAME: which container."),
         since: Optional[str] = typer.Option(None, "--since", help="Only after this time (2025-01-31T12:00:00Z, a Unix time, or 10m ago)."),
         until: Optional[str] = typer.Option(None, "--until", help="Only before this time (same forms).")):
    """Show a detached container's output (stdout and stderr, each to its own)."""
    from ..api import container_logs, follow_container_logs, pod_container_ref, pod_node
    root = root_of(ctx)
    if "/" in container:                                    # kubectl's pod/NAME, deployment/NAME
        node = pod_node(container, root)                    # a cluster pod: on its node's root
        container = pod_container_ref(container, pod_container, root)
        root = node["root"] if node else root

    def emit(ts: str, stream: str, text: bytes) -> None:
        out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
        out.write((ts.encode() + b" " if timestamps else b"") + text)
        out.flush()
    if follow:
        follow_container_logs(container, emit, tail=tail, since=since, until=until, root=root)
    else:
        for entry in container_logs(container, tail=tail, since=since, until=until, root=root):
            emit(*entry)


@app.command()
def inspect(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs."),
            format: Optional[str] = typer.Option(None, "--format", "-f",
                                                 help="e.g. '{{.State.Pid}}' or '{{json .State}}'.")):
    """Show containers as JSON: config, state, PID, namespaces, cgroup, mounts."""
    from ..api import inspect_container
    data = [inspect_container(ref, root=root_of(ctx)) for ref in containers]
    if format is None:
        click.echo(json.dumps(data, indent=4))
        return
    from ..api import render_template
    for item in data:
        click.echo(render_template(format, item))


@app.command()
def stop(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs."),
         time_: Optional[float] = typer.Option(None, "--time", "-t",
                                               help="Seconds before SIGKILL (default: its --stop-timeout, else 10).")):
    """Stop containers: SIGTERM (or their --stop-signal), then SIGKILL after --time seconds."""
    from ..api import stop_container
    _each(containers, lambda ref: stop_container(ref, timeout=time_, root=root_of(ctx)) and None)


@app.command()
def kill(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs."),
         signal: str = typer.Option("KILL", "--signal", "-s", help="Signal name or number.")):
    """Send a signal to containers' PID 1 (default SIGKILL)."""
    from ..api import kill_container
    _each(containers, lambda ref: kill_container(ref, signal, root=root_of(ctx)) and None)


@app.command()
def wait(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs.")):
    """Wait until containers stop; print each exit status."""
    from ..api import wait_container
    _each(containers, lambda ref: wait_container(ref, root=root_of(ctx)))


@app.command()
def pause(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs.")):
    """Freeze every process of containers (cgroup freezer)."""
    from ..api import pause_container
    _each(containers, lambda ref: pause_container(ref, root=root_of(ctx)) and None)


@app.command()
def unpause(ctx: typer.Context, containers: List[str] = typer.Argument(..., help="Names or IDs.")):
    """Thaw paused containers."""
    from ..api import unpause_container
    _each(containers, lambda ref: unpause_container(ref, root=root_of(ctx)) and None)


@app.command()
def top(ctx: typer.Context, container: str = typer.Argument(..., help="Name or ID (or `pods`).")):
    """A container's processes as the host sees them (NSPID: the PID inside); `top pods`: CPU
    and memory of each pod, from its cgroup."""
    from ..api import top_container, top_pods
    if container in ("pods", "pod", "po"):
        click.echo(top_pods(root_of(ctx)))
        return
    columns = ("UID", "PID", "PPID", "NSPID", "STAT", "TIME", "CMD")
    procs = top_container(container, root=root_of(ctx))
    _table([columns] + [tuple(str(p[c]) for c in columns) for p in procs])


@app.command("exec", context_settings=RUN_CONTEXT)
def exec_(ctx: typer.Context,
          container: str = typer.Argument(..., help="Name or ID of a running container."),
          command: List[str] = typer.Argument(..., help="Command and arguments."),
          interactive: bool = typer.Option(False, "--interactive", "-i", help="Keep stdin attached."),
          tty: bool = typer.Option(False, "--tty", "-t", help="Allocate a pseudo-terminal."),
          env: List[str] = typer.Option([], "--env", "-e", help="Set KEY=VALUE (or KEY to copy yours)."),
          workdir: Optional[str] = typer.Option(None, "--workdir", "-w", help="Working directory inside."),
          user: Optional[str] = typer.Option(None, "--user", "-u", help="UID[:GID] or NAME[:GROUP] inside."),
          explain: bool = typer.Option(False, "--explain", help="Narrate every step."),
          pod_container: Optional[str] = typer.Option(None, "--container", "-c", help="pod/NAME: which container.")):
    """Run a command in a running container (its namespaces, cgroup, root and security)."""
    from ..api import exec_in_container, pod_container_ref, pod_node
    if "/" in container:                                    # kubectl's pod/NAME -- CMD
        node = pod_node(container, root_of(ctx))
        if command[:1] in (["-c"], ["--container"]) and len(command) > 1:
            pod_container, command = command[1], command[2:]    # kubectl's order: pod/NAME -c C -- CMD
        container = pod_container_ref(container, pod_container, root_of(ctx))
        command = command[1:] if command[:1] == ["--"] else command
        if node:                                            # a cluster pod: again, as its node would
            import os
            flags = ["-i"] * interactive + ["-t"] * tty + [f"--env={e}" for e in env] + \
                ([f"--workdir={workdir}"] if workdir else []) + ([f"--user={user}"] if user else []) + \
                ["--explain"] * explain                     # (its cgroup parent is the node's)
            os.execvpe(sys.executable, [sys.executable, "-m", "minicontainer", "--root", node["root"], "exec",
                                        *flags, container, *command],
                       dict(os.environ, MINICONTAINER_CGROUP_PARENT=node["cgroup_parent"]))
    from .run_verb import stdin_from_devnull
    if tty and interactive and not sys.stdin.isatty():
        fail("the input device is not a TTY: drop -t, or run from a terminal")
    if not interactive:
        stdin_from_devnull()
    raise SystemExit(exec_in_container(container, command, interactive=interactive, tty=tty, env=env,
                                       workdir=workdir, user=user, root=root_of(ctx), explain=explain))


@app.command()
def gc(ctx: typer.Context,
       dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed.")):
    """Remove what crashed runs left behind: processes, cgroups, leases, directories, records."""
    from ..api import collect_garbage
    _report_garbage(collect_garbage(root_of(ctx), dry_run=dry_run), dry_run)


system_app = typer.Typer(no_args_is_help=True, help="Manage minicontainer's state.")
app.add_typer(system_app, name="system")


@system_app.command("prune")
def system_prune(ctx: typer.Context,
                 dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
                 force: bool = typer.Option(False, "--force", "-f", help="Do not ask.")):
    """gc, and remove every stopped container too (as `docker system prune`)."""
    from ..api import collect_garbage
    if not (force or dry_run):
        if not sys.stdin.isatty():
            fail("system prune removes every stopped container: add -f to confirm")
        click.confirm("This removes every stopped container and what crashed runs left. Continue?",
                      abort=True)
    _report_garbage(collect_garbage(root_of(ctx), dry_run=dry_run, prune=True), dry_run)


@system_app.command("info")
def system_info(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table, json or a Go template.")):
    """What this minicontainer runs on: containers, images, storage, cgroups, kernel."""
    from ..api import render_template, system_info as info
    data = info(root_of(ctx))
    if format == "json":
        click.echo(json.dumps(data, indent=1))
    elif format != "table":
        click.echo(render_template(format, data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


container_app = typer.Typer(no_args_is_help=True, help="Manage containers (Docker's `container` group).")
app.add_typer(container_app, name="container")


@container_app.command("prune")
def container_prune(ctx: typer.Context, force: bool = typer.Option(False, "--force", "-f", help="Do not ask.")):
    """Remove every container that is not running."""
    from ..api import prune_containers
    if not force:
        if not sys.stdin.isatty():
            fail("container prune removes every stopped container: add -f to confirm")
        click.confirm("This removes every stopped container. Continue?", abort=True)
    removed = prune_containers(root_of(ctx))
    if removed:
        click.echo("Deleted Containers:")
        for cid in removed:
            click.echo(cid)
    click.echo(f"Total: {len(removed)} containers")


@system_app.command("boot")
def system_boot(ctx: typer.Context):
    """At start-up (a service unit calls it): tidy what the reboot ended, start the
    containers whose --restart policy is always or unless-stopped."""
    from ..api import boot
    for name in boot(root_of(ctx)):
        click.echo(name)


def _report_garbage(found, dry_run: bool) -> None:
    lines = found.lines(dry_run)
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("nothing to remove")


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
def image_import(ctx: typer.Context, file: str = typer.Argument(..., help="A rootfs .tar[.gz|.xz], a docker/podman "
                                                                  "save archive, an OCI archive or layout directory."),
                 ref: Optional[str] = typer.Argument(None, help="NAME[:TAG] to register it as (archives may name it).")):
    """Import an image: a rootfs tarball (unpacked once) or a Docker/OCI image archive (storage/oci.py)."""
    from ..api import import_image
    with _progress(file) as progress:
        image = import_image(file, ref, root=root_of(ctx), progress=progress)
    click.echo(f"{image.ref} {image.digest}")


@image_app.command("build")
def image_build(ctx: typer.Context, recipe: str = typer.Argument(..., help="A recipe .toml, or a name in rootfs-builder/recipes/.")):
    """Build a userland with rootfs-builder and import it."""
    from ..api import build_image
    result, image = build_image(recipe, root_of(ctx))
    click.echo(f"sha256:{result.sha256}  {result.path}", err=True)
    click.echo(f"{image.ref} {image.digest}")


@app.command()
def events(ctx: typer.Context,
           since: Optional[str] = typer.Option(None, "--since", help="From this time (RFC 3339, Unix time, or 10m ago); default: now."),
           until: Optional[str] = typer.Option(None, "--until", help="Up to this time; without it, keep following."),
           filter: List[str] = typer.Option([], "--filter", "-f", help="container=, event=, image=, label=, type=."),
           format: Optional[str] = typer.Option(None, "--format", help="json (one object per line) or a Go template.")):
    """What happens to containers: create, start, kill, die, oom, stop, destroy, …"""
    from ..api import follow_events, format_event, render_template

    def emit(event: dict) -> None:
        if format is None:
            click.echo(format_event(event))
        elif format == "json":
            click.echo(json.dumps(event))
        else:
            click.echo(render_template(format, event))
    follow_events(emit, since=since, until=until, filters=filter, root=root_of(ctx))


@app.command()
def build(ctx: typer.Context, context: str = typer.Argument(..., help="The build context: a directory."),
          file: Optional[str] = typer.Option(None, "--file", "-f", help="The Containerfile (default: CONTEXT/Containerfile or Dockerfile)."),
          tag: Optional[str] = typer.Option(None, "--tag", "-t", help="NAME[:TAG] for the result."),
          build_arg: List[str] = typer.Option([], "--build-arg", help="KEY=VALUE for an ARG."),
          no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, use no cached one."),
          network: str = typer.Option("bridge", "--network", help="RUN's network: bridge, none or host.")):
    """Build an image from a Containerfile (Dockerfile): one layer per instruction, cached."""
    from ..api import build_containerfile
    from .run_verb import stdin_from_devnull
    stdin_from_devnull()
    build_containerfile(context=context, file=file, ref=tag, build_args=build_arg, no_cache=no_cache,
                network=network, root=root_of(ctx), out=click.echo)


@image_app.command("tag")
def image_tag(ctx: typer.Context, source: str = typer.Argument(..., help="An image NAME[:TAG]."),
              target: str = typer.Argument(..., help="The new NAME[:TAG].")):
    """Give an image another name (the same layers, shared)."""
    from ..api import tag_image
    tag_image(source, target, root_of(ctx))


@image_app.command("history")
def image_history(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME[:TAG]"),
                  format: str = typer.Option("table", "--format", help="table, json or a Go template."),
                  no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not shorten CREATED BY.")):
    """An image's layers, the top first: what made each one, and its size."""
    from ..api import image_history as history, render_list
    rows = history(ref, root_of(ctx))
    if format != "table":
        click.echo(render_list(format, rows), nl=False)
        return
    _table([("IMAGE", "CREATED", "CREATED BY", "SIZE")] +
           [(r["ID"], r["Created"], r["CreatedBy"] if no_trunc else _short(r["CreatedBy"], 45), _size(r["Size"]))
            for r in rows])


@image_app.command("save")
def image_save(ctx: typer.Context, refs: List[str] = typer.Argument(..., help="NAME[:TAG]"),
               output: str = typer.Option(..., "--output", "-o", help="The archive to write.")):
    """Write an image as a docker-archive (`docker load` / `podman load` read it)."""
    from ..api import save_images
    save_images(refs, output, root_of(ctx))


@image_app.command("load")
def image_load(ctx: typer.Context, input: str = typer.Option(..., "--input", "-i", help="A docker/podman save or OCI archive.")):
    """Load an image archive under the name it carries (`image import` gives it another)."""
    from ..api import load_images
    image = load_images(input, root_of(ctx))
    click.echo(f"Loaded image: {image.ref}")


@image_app.command("ls")
def image_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json."),
             all: bool = typer.Option(False, "--all", "-a", help="Also the build cache's step images.")):
    """List images."""
    from ..api import list_images
    images = list_images(root_of(ctx), all=all)
    if format == "json":
        click.echo(json.dumps([i.to_dict() for i in images], indent=1))
        return
    rows = [("NAME", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    rows += [(i.name, i.tag, i.id[:12], str(i.created)[:19], _size(i.size)) for i in images]
    _table(rows)


@image_app.command("inspect")
def image_inspect(ctx: typer.Context, ref: str):
    """Show an image's record as JSON."""
    from ..api import image_store
    image = image_store(root_of(ctx)).get(ref)
    click.echo(json.dumps(image.to_dict(), indent=1))


@image_app.command("rm")
def image_rm(ctx: typer.Context, refs: List[str] = typer.Argument(...)):
    """Remove images that no container uses."""
    from ..api import image_store, image_users
    store = image_store(root_of(ctx))
    for ref in refs:
        image = store.remove(ref, in_use=image_users(root_of(ctx)))
        click.echo(f"Deleted: {image.ref}")


# ── small printing helpers ────────────────────────────────────────────────────────────────

def _table(rows) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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
