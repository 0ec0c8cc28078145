"""The OCI runtime's state directory: one directory per container under --root.

    the OCI runtime spec, runtime.md "State"; runc keeps the same under /run/runc/ID/

    --root/ID/state.json    what create recorded: pid (+ its start time, so a recycled PID is
                            never mistaken for ours), bundle, annotations, cgroup, hooks
    --root/ID/exec.fifo     exists from create until start: PID 1 is blocked reading it
    --root/ID/started.fifo  PID 1 → start: EOF when it runs execve, or a line saying what failed
                            (a startContainer hook, execve itself)

The status is never stored, it is observed (runtime.md's state machine):

    creating ──create──▶ created ──start──▶ running ──PID 1 exits──▶ stopped ──delete──▶ (gone)
                          (fifo present,        (fifo gone,            (PID 1 gone or a zombie)
                           PID 1 alive)          PID 1 alive; frozen: paused)
"""
from __future__ import annotations

import json
import os
import re

from ..errors import ConfigError, ContainerError
from ..procfs import is_alive

# podman calls `state` (and kill, delete) many times per container: this module, like the verbs
# that use it, imports only what reading a state directory needs (no pathlib, no spec).

DEFAULT_ROOT = "/run/minicontainer-oci"
VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,1023}$")


def check_id(container_id: str) -> str:
    if not VALID_ID.match(container_id or "") or container_id in (".", ".."):
        raise ConfigError(f"invalid container id {container_id!r}: use letters, digits, '_', '.', '+', '-'")
    return container_id


class OciState:
    """One container's directory; `load` for an existing one, `create` for a new one."""

    def __init__(self, root: str, container_id: str):
        self.root, self.id = str(root), check_id(container_id)
        self.dir = os.path.join(self.root, container_id)
        self.fifo = os.path.join(self.dir, "exec.fifo")
        self.started_fifo = os.path.join(self.dir, "started.fifo")
        self.data: dict = {}

    def create(self) -> "OciState":
        """mkdir ID/ (atomic: a second create of the same ID fails here) and the fifos."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(self.dir, 0o700)
        except FileExistsError:
            raise ContainerError(f"container {self.id!r} already exists: choose another ID, or "
                                 f"`delete` it first") from None
        os.mkfifo(self.fifo, 0o600)
        os.mkfifo(self.started_fifo, 0o600)
        return self

    @classmethod
    def load(cls, root: str, container_id: str) -> "OciState":
        self = cls(root, container_id)
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            raise ContainerError(f"container {container_id!r} does not exist (under {root}): "
                                 "`list` shows the containers there") from None
        except (OSError, ValueError) as e:
            raise ContainerError(f"container {container_id!r}: its state file is unreadable ({e}); "
                                 f"`delete --force {container_id}` removes it") from None
        return self

    def save(self) -> None:
        tmp = os.path.join(self.dir, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, os.path.join(self.dir, "state.json"))

    def remove(self) -> None:
        """rm -r ID/: its files only (state.json, the fifos). Not shutil.rmtree: importing
        shutil (bz2, lzma …) costs `delete` more than the removal itself."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
            except OSError:                         # not ours (a directory someone made): all of it
                import shutil
                shutil.rmtree(self.dir, ignore_errors=True)
                return
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass

    # ── observed ──────────────────────────────────────────────────────────────────────────
    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    def alive(self) -> bool:
        """PID 1 exists, is the process we started (start time), and is not a zombie."""
        return is_alive(self.pid, self.data.get("pid_start"))

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if self.data.get("paused"):
            return "paused"
        return "running"

    def oci_state(self) -> dict:
        """The state JSON of runtime.md: what `state` prints and hooks read on stdin."""
        status = self.status()
        return {"ociVersion": self.data.get("ociVersion", ""), "id": self.id, "status": status,
                "pid": self.pid if status != "stopped" else 0, "bundle": self.data.get("bundle", ""),
                "annotations": self.data.get("annotations") or {}}


def list_states(root: str) -> list[OciState]:
    out = []
    if not os.path.isdir(root):
        return out
    for name in sorted(os.listdir(root)):
        try:
            out.append(OciState.load(root, name))
        except (ContainerError, ConfigError):
            continue
    return out
