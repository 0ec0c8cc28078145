"""minicontainer: a teaching container runtime — chroot, namespaces, cgroups, overlayfs.

    api.py          Container, list_containers, remove_container, image_store  ← start here
    runtime.py      the run sequence, step by step, in the order the kernel needs it
    rootfs.py       the container's mounts: overlay, /proc, /sys, /dev
    process.py      user, workdir, environment, execve, exit statuses
    config.py       the run options, validated before anything is created
    state.py        the state directory: records, names, locks
    explain.py      --explain: the narration of each step
    kernel/         thin syscall layer (namespaces, mount, pivot_root, netdev, …)
    cgroups/        resource limits, cgroup v1 and v2
    storage/        safe unpacking, the image store, overlay directories
    cli/            the typer commands: parse, call the API, print
    errors.py       the error types (one line each; exit 125 at the CLI)

Attributes are imported lazily so that `minicontainer run` loads only what it uses.
"""
from __future__ import annotations

__all__ = ["Container", "list_containers", "remove_container", "image_store",
           "MinicontainerError", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("Container", "list_containers", "remove_container", "image_store"):
        from . import api
        return getattr(api, name)
    if name == "MinicontainerError":
        from .errors import MinicontainerError
        return MinicontainerError
    raise AttributeError(f"module 'minicontainer' has no attribute {name!r}")
