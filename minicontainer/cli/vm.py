"""VM verbs: QEMU virtual machines beside the containers (minicontainer/vm/, docs/vms.md).

    minicontainer vm create NAME [--memory M] [--disk SIZE] [--image busybox|debian] [--node N [--restart-on-failure]]
    minicontainer vm start|stop|kill|rm|inspect|console NAME · vm ls · vm update NAME [--memory M] [--node N]
    minicontainer vm snapshot create|ls|restore|rm NAME [TAG] [--external]
    minicontainer vm migrate NAME --to NODE|localhost|netns · vm storage-migrate NAME --to PATH

Thin like every verb: each one calls a minicontainer.api function and prints.
"""
from __future__ import annotations

import json
from typing import List, Optional

import click
import typer

from .typer_app import app, root_of

vm_app = typer.Typer(no_args_is_help=True, help="Virtual machines with QEMU: snapshots, live migration.")
snapshot_app = typer.Typer(no_args_is_help=True,
                           help="Internal snapshots (RAM + CPU + disk) and external ones (a qcow2 overlay).")
app.add_typer(vm_app, name="vm")
vm_app.add_typer(snapshot_app, name="snapshot")


def _table(rows) -> None:
    from .commands import _table as table
    table(rows)


@vm_app.command("create")
def vm_create(ctx: typer.Context, name: str = typer.Argument(..., help="The VM's name."),
              memory: int = typer.Option(256, "--memory", "-m", help="RAM in MiB."),
              disk: str = typer.Option("1G", "--disk", help="Virtual disk size (qcow2, allocated as written)."),
              image: str = typer.Option("busybox", "--image", help="Userland: busybox or debian (rootfs-builder)."),
              node: str = typer.Option("", "--node", help="A cluster node to run on (`node ls`)."),
              restart_on_failure: bool = typer.Option(False, "--restart-on-failure",
                                                      help="HA: when its node fails, boot it again on another node.")):
    """Create a VM: a qcow2 disk with the image's files; it boots the project's Debian kernel."""
    from ..api import create_vm
    rec = create_vm(name, memory_mb=memory, disk=disk, image=image, node=node,
                    restart_on_failure=restart_on_failure, root=root_of(ctx))
    click.echo(rec.name)


@vm_app.command("start")
def vm_start(ctx: typer.Context, name: str = typer.Argument(...),
             wait: bool = typer.Option(False, "--wait", help="Return once the guest's init has said hello.")):
    """Start the VM's QEMU (KVM if usable, else TCG)."""
    from ..api import start_vm
    rec = start_vm(name, wait_boot=wait, root=root_of(ctx))
    click.echo(f"{rec.name}: PID {rec.pid}, {rec.accel} ({rec.accel_reason})")


@vm_app.command("stop")
def vm_stop(ctx: typer.Context, names: List[str] = typer.Argument(...),
            time_: float = typer.Option(10, "--time", "-t", help="Seconds to wait for the guest before quitting QEMU.")):
    """Press Ctrl-Alt-Del on the VM's keyboard (its init syncs and goes off); quit QEMU after --time."""
    from ..api import stop_vm
    for name in names:
        stop_vm(name, timeout=time_, root=root_of(ctx))
        click.echo(name)


@vm_app.command("kill")
def vm_kill(ctx: typer.Context, names: List[str] = typer.Argument(...)):
    """Pull the plug: SIGKILL to QEMU."""
    from ..api import kill_vm
    for name in names:
        kill_vm(name, root=root_of(ctx))
        click.echo(name)


@vm_app.command("rm")
def vm_rm(ctx: typer.Context, names: List[str] = typer.Argument(...),
          force: bool = typer.Option(False, "--force", "-f", help="Kill a running VM first.")):
    """Remove VMs: QEMU, sockets, disks, overlays, console log."""
    from ..api import remove_vm
    for name in names:
        remove_vm(name, force=force, root=root_of(ctx))
        click.echo(name)


@vm_app.command("update")
def vm_update(ctx: typer.Context, name: str = typer.Argument(...),
              memory: Optional[int] = typer.Option(None, "--memory", "-m", help="RAM in MiB (the VM must be stopped)."),
              node: Optional[str] = typer.Option(None, "--node", help="The cluster node it starts on; "
                                                                      "localhost: this machine.")):
    """Change a stopped VM's memory size, or the node it starts on."""
    from ..api import update_vm
    click.echo(update_vm(name, memory_mb=memory, node=node, root=root_of(ctx)).name)


@vm_app.command("ls")
def vm_ls(ctx: typer.Context, format: str = typer.Option("table", "--format", help="table or json.")):
    """List VMs: state, QEMU's PID, accelerator (kvm or tcg), disk chain (top first)."""
    from ..api import list_vms
    vms = list_vms(root=root_of(ctx))
    if format == "json":
        click.echo(json.dumps(vms, indent=1))
        return
    _table([("NAME", "STATE", "PID", "ACCEL", "MEMORY", "NODE", "DISK CHAIN")]
           + [(v["name"], v["status"], str(v["pid"] or "-"), v["accel"] or "-", f"{v['memory_mb']} MiB",
               (v["node"] + " (HA)" * v["restart_on_failure"]) or "-", v["chain"]) for v in vms])


@vm_app.command("inspect")
def vm_inspect(ctx: typer.Context, name: str = typer.Argument(...)):
    """The VM's record, its disk chain as qemu-img sees it, and QEMU's own status, as JSON."""
    from ..api import inspect_vm
    click.echo(json.dumps(inspect_vm(name, root=root_of(ctx)), indent=1))


@vm_app.command("console")
def vm_console(ctx: typer.Context, name: str = typer.Argument(...)):
    """Attach to the guest's serial console (Ctrl-] detaches)."""
    from ..api import attach_vm_console
    attach_vm_console(name, root=root_of(ctx))


@vm_app.command("migrate")
def vm_migrate(ctx: typer.Context, name: str = typer.Argument(...),
               to: str = typer.Option(..., "--to", help="Target host: a cluster node (TCP across the cluster network), "
                                                        "localhost (a unix socket), or netns (a QEMU in a new network "
                                                        "namespace, TCP over a veth pair)."),
               downtime_limit: int = typer.Option(300, "--downtime-limit", help="Milliseconds QEMU may stop the guest.")):
    """Live migration to a QEMU started with -incoming; prints QEMU's figures."""
    from ..api import migrate_vm
    f = migrate_vm(name, to, downtime_limit_ms=downtime_limit, root=root_of(ctx))
    click.echo(f"{name}: migrated to {f['host']} (QEMU PID {f['source_pid']} → {f['target_pid']})\n"
               f"  total time   {f['total_time_ms']} ms\n  downtime     {f['downtime_ms']} ms\n"
               f"  transferred  {f['transferred_bytes'] / 1e6:.1f} MB of {f['ram_total_bytes'] / 1e6:.0f} MB RAM\n"
               f"  dirty-page rounds (dirty-sync-count)  {f['dirty_sync_count']}\n  stream       {f['stream']}")


@vm_app.command("storage-migrate")
def vm_storage_migrate(ctx: typer.Context, name: str = typer.Argument(...),
                       to: str = typer.Option(..., "--to", help="The new qcow2 file's path.")):
    """Move the running VM's disk: drive-mirror, block-job-complete, qemu-img compare."""
    from ..api import storage_migrate_vm
    r = storage_migrate_vm(name, to, root=root_of(ctx))
    click.echo(f"{name}: disk now {r['target']} ({r['bytes'] / 1e6:.1f} MB), copied in {r['copy_seconds']} s, "
               f"paused {r['pause_ms']} ms for the switch; qemu-img compare: "
               f"{'identical' if r['identical'] else 'DIFFERENT'}")


@snapshot_app.command("create")
def snapshot_create(ctx: typer.Context, name: str = typer.Argument(...), tag: str = typer.Argument(...),
                    external: bool = typer.Option(False, "--external",
                                                  help="Disk only: a new qcow2 overlay backed by the current disk.")):
    """Take a snapshot: internal (RAM + CPU + disk, savevm) unless --external."""
    from ..api import snapshot_vm, vm_disk_chain
    meta = snapshot_vm(name, tag, kind="external" if external else "internal", root=root_of(ctx))
    click.echo(f"{name}: {meta['kind']} snapshot {tag} in {meta['seconds']:.2f} s")
    if external:
        for layer in vm_disk_chain(name, root=root_of(ctx)):
            click.echo(f"  {layer['filename']}" + (f"  (backing: {layer['backing-filename']})"
                                                   if layer.get("backing-filename") else ""))


@snapshot_app.command("ls")
def snapshot_ls(ctx: typer.Context, name: str = typer.Argument(...)):
    """List the VM's snapshots."""
    import time
    from ..api import list_vm_snapshots
    _table([("TAG", "KIND", "CREATED", "MEMORY", "VM STATE", "FILE")]
           + [(s["tag"], s["kind"], time.strftime("%H:%M:%S", time.localtime(s["created"])),
               f"{s['memory_mb']} MiB", f"{s.get('vm_state_size', 0) / 1e6:.1f} MB" if s["kind"] == "internal" else "-",
               s["file"]) for s in list_vm_snapshots(name, root=root_of(ctx))])


@snapshot_app.command("restore")
def snapshot_restore(ctx: typer.Context, name: str = typer.Argument(...), tag: str = typer.Argument(...)):
    """Go back to a snapshot (internal: RAM and CPU too, loadvm)."""
    from ..api import restore_vm_snapshot
    r = restore_vm_snapshot(name, tag, root=root_of(ctx))
    took = f" in {r['restore_seconds']:.2f} s" if "restore_seconds" in r else ""
    click.echo(f"{name}: back at {r['kind']} snapshot {tag}{took}")


@snapshot_app.command("rm")
def snapshot_rm(ctx: typer.Context, name: str = typer.Argument(...), tag: str = typer.Argument(...)):
    """Delete a snapshot (external: its overlay is committed into the file below)."""
    from ..api import remove_vm_snapshot
    remove_vm_snapshot(name, tag, root=root_of(ctx))
    click.echo(tag)
