"""VM snapshots, in the lecture's two kinds.

What it is:
  internal  the whole machine: RAM, CPU registers, device state and the disk, stored *inside* the
            top qcow2 file (QMP job snapshot-save, the old HMP savevm). Restoring (snapshot-load,
            loadvm) puts the guest back at that instant: a counter shows the value it had then.
            The RAM must have the same size to be put back, so a VM whose --memory changed refuses.
  external  the disk only: a new, empty qcow2 overlay whose backing file is the old top (QMP
            blockdev-snapshot-sync). The old file is never written again; restoring throws the
            overlays above it away and starts a fresh one (the VM must be stopped: its RAM
            belongs to the newer disk).
See: qemu-img(1) snapshot/create -b; QMP snapshot-save, snapshot-load, snapshot-delete,
blockdev-snapshot-sync; docs/interop/qcow2.txt ("Snapshots"); docs/vms.md.
Shell equivalent: (qemu) savevm TAG / loadvm TAG / delvm TAG; qemu-img snapshot -l disk.qcow2;
qemu-img create -f qcow2 -b disk.qcow2 -F qcow2 overlay.qcow2; qemu-img info --backing-chain.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import VmError
from .disks import create_overlay, internal_snapshots, qemu_img
from .machine import VmStore, require_running, start
from .qmp import Monitor

KINDS = ("internal", "external")


def top_node(qmp: Monitor) -> str:
    """The node the disk device reads first (disk0, or the newest overlay's node)."""
    for device in qmp.cmd("query-block"):
        if device.get("inserted"):
            return device["inserted"]["node-name"]
    raise VmError("QEMU shows no disk")


def create_snapshot(store: VmStore, name: str, tag: str, *, kind: str = "internal") -> dict:
    if kind not in KINDS:
        raise VmError(f"invalid snapshot kind {kind!r}: use internal or external")
    if not tag or not tag.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise VmError(f"invalid snapshot tag {tag!r}: use letters, digits, '-', '_', '.'")
    with store.locked(name) as rec:
        if tag in rec.snapshots:
            raise VmError(f"VM {name} has a snapshot {tag!r} already: pick another tag or `vm snapshot rm` it")
        meta = {"kind": kind, "memory_mb": rec.memory_mb, "created": time.time(), "file": rec.disk}
        if kind == "internal":
            require_running(rec)
            with Monitor(rec.qmp_socket) as qmp:
                node = top_node(qmp)
                meta["seconds"] = qmp.run_job("snapshot-save", f"save-{tag}", tag=tag, vmstate=node,
                                              devices=[node])
        else:
            meta["seconds"] = add_overlay(store, rec, tag)
        rec.snapshots[tag] = meta
        store.save(rec)
        return meta


def add_overlay(store: VmStore, rec, tag: str) -> float:
    """A new overlay on top of the chain; live through QMP when QEMU runs, else qemu-img."""
    overlay = next_overlay_path(store, rec)
    started = time.monotonic()
    if rec.running:
        with Monitor(rec.qmp_socket) as qmp:
            qmp.cmd("blockdev-snapshot-sync", **{"node-name": top_node(qmp), "snapshot-file": str(overlay),
                                                 "snapshot-node-name": f"overlay-{overlay.stem.split('-')[-1]}",
                                                 "format": "qcow2"})
    else:
        create_overlay(Path(rec.disk), overlay)
    rec.chain.append(str(overlay))
    rec.disk = str(overlay)
    return time.monotonic() - started


def next_overlay_path(store: VmStore, rec) -> Path:
    n = 1
    while (path := store.vm_dir(rec.name) / f"overlay-{n}.qcow2").exists() or str(path) in rec.chain:
        n += 1
    return path


def list_snapshots(store: VmStore, name: str) -> list[dict]:
    """Our records joined with what qemu-img finds inside the top file (vm-state-size, date)."""
    rec = store.load(name)
    inside = {s["name"]: s for s in internal_snapshots(Path(rec.disk))}
    rows = []
    for tag, meta in rec.snapshots.items():
        row = {"tag": tag, **meta}
        if meta["kind"] == "internal":
            row["vm_state_size"] = inside.get(tag, {}).get("vm-state-size", 0)
        rows.append(row)
    return rows


def find(rec, tag: str) -> dict:
    if tag not in rec.snapshots:
        known = ", ".join(rec.snapshots) or "none"
        raise VmError(f"VM {rec.name} has no snapshot {tag!r} (its snapshots: {known})")
    return rec.snapshots[tag]


def restore_snapshot(store: VmStore, name: str, tag: str) -> dict:
    """Internal: load RAM + CPU + disk (starting QEMU first if the VM is stopped). External: discard
    the overlays above the snapshot's file and put a fresh one on it (VM stopped)."""
    rec = store.load(name)
    meta = find(rec, tag)
    if meta["memory_mb"] != rec.memory_mb:
        raise VmError(f"snapshot {tag!r} holds {meta['memory_mb']} MiB of RAM, VM {name} now has "
                      f"{rec.memory_mb} MiB: set --memory {meta['memory_mb']} again to restore it")
    if meta["kind"] == "external":
        return restore_external(store, name, tag)
    if meta["file"] != rec.disk:
        raise VmError(f"snapshot {tag!r} is inside {Path(meta['file']).name}, which is now a backing file "
                      f"under an external snapshot: restore that external snapshot first")
    if not rec.running:
        start(store, name)
    with store.locked(name) as rec:
        with Monitor(rec.qmp_socket) as qmp:
            node = top_node(qmp)
            seconds = qmp.run_job("snapshot-load", f"load-{tag}", tag=tag, vmstate=node, devices=[node])
    return {**meta, "restore_seconds": seconds}


def restore_external(store: VmStore, name: str, tag: str) -> dict:
    with store.locked(name) as rec:
        if rec.running:
            raise VmError(f"VM {name} is running: an external snapshot holds only the disk, so stop the "
                          f"VM before going back to it (`minicontainer vm stop {name}`)")
        meta = rec.snapshots[tag]
        keep = rec.chain[:rec.chain.index(meta["file"]) + 1]
        for path in rec.chain[len(keep):]:
            Path(path).unlink(missing_ok=True)
        rec.chain, rec.disk = keep, meta["file"]
        # Snapshots that lived in the discarded overlays are gone with them.
        rec.snapshots = {t: m for t, m in rec.snapshots.items() if m["file"] in keep}
        add_overlay(store, rec, tag)
        rec.snapshots[tag] = meta
        store.save(rec)
        return meta


def remove_snapshot(store: VmStore, name: str, tag: str) -> None:
    """Internal: delete it from its qcow2 file. External: fold its overlay into the file below
    (qemu-img commit), so the chain is one shorter; only while the VM is stopped."""
    with store.locked(name) as rec:
        meta = find(rec, tag)
        if meta["kind"] == "internal":
            if rec.running and meta["file"] == rec.disk:
                with Monitor(rec.qmp_socket) as qmp:
                    qmp.run_job("snapshot-delete", f"delete-{tag}", tag=tag, devices=[top_node(qmp)])
            elif rec.running:
                raise VmError(f"snapshot {tag!r} is in a backing file of the running VM: stop it first")
            else:
                qemu_img("snapshot", "-d", tag, meta["file"])
        else:
            if rec.running:
                raise VmError(f"VM {name} is running: removing an external snapshot rewrites the disk "
                              f"chain (qemu-img commit), stop the VM first")
            remove_external(rec, meta["file"])
        del rec.snapshots[tag]
        store.save(rec)


def remove_external(rec, base: str) -> None:
    """The overlay made on `base` is committed into it and dropped; whatever sat on the overlay now
    sits on `base` (qemu-img rebase -u: the bytes it sees are the same)."""
    index = rec.chain.index(base)
    overlay = rec.chain[index + 1]
    qemu_img("commit", "-q", overlay)
    above = rec.chain[index + 2:]
    if above:
        qemu_img("rebase", "-u", "-F", "qcow2", "-b", base, above[0])
    os.unlink(overlay)
    rec.chain.remove(overlay)
    rec.disk = rec.chain[-1]
    for meta in rec.snapshots.values():
        if meta["file"] == overlay:
            meta["file"] = base
