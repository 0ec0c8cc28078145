"""After a reboot: records that still say "running", and `minicontainer system boot`.

    man 5 tmpfs (/run is empty at every boot), man 5 systemd.service, man 5 proc (boot_id)
    shell: systemctl enable minicontainer-boot.service    (docs/lifecycle.md has the unit)

A reboot ends every container without telling anyone: no supervisor records an exit, no
teardown runs. The state root (on disk) still says "running", still holds network leases
and names. The runtime directory does not survive — /run/minicontainer is a tmpfs, emptied
at every boot — so a marker there tells a command whether it is the first since boot:

    <runtime dir>/booted-<root path>   written the first time a container is made under the
                                       root (and <root>/containers/.runtime says so, too)

The first command that finds `.runtime` but no marker recovers, under the state lock: every
record whose PID 1 and owner are both gone is marked exited (255, as Docker marks what its
daemon lost) and torn down exactly as its supervisor would have (runtime.teardown): cgroup,
network lease, and for --rm the directory and the record — so names and addresses can be
used again. Then the marker is written. flock(2) locks need nothing: the kernel drops them
with their holders.

`system boot` (called by a service unit at start-up) does that recovery, then starts again
every container whose --restart policy is `always`, or `unless-stopped` and not stopped by
the user — each under a new supervisor, as `run -d` would.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

LOST_EXIT_CODE = 255                # the exit status of a container lost by a reboot
_checked: set[str] = set()          # roots checked by this process


def runtime_dir() -> Path | None:
    """$MINICONTAINER_RUNTIME_DIR, else /run/minicontainer (root) or $XDG_RUNTIME_DIR/minicontainer."""
    chosen = os.environ.get("MINICONTAINER_RUNTIME_DIR")
    if chosen:
        return Path(chosen)
    if os.geteuid() == 0:
        return Path("/run/minicontainer")
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    return Path(xdg) / "minicontainer" if xdg.startswith("/") else None


def boot_marker(root: Path) -> Path | None:
    where = runtime_dir()
    return where / ("booted-" + str(Path(root).absolute()).replace("/", "%")) if where else None


def note_boot(store) -> None:
    """A container is being made: from now on this root is checked after a reboot."""
    marker = boot_marker(store.root)
    try:
        if marker is None or marker.exists():
            return
        marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        marker.touch()
        (store.dir / ".runtime").touch()
    except OSError:                                     # a runtime directory not ours to use:
        pass                                            # no recovery then, as before


def recover_if_rebooted(store) -> list[str]:
    """Called for every StateStore: one stat(2) normally; after a reboot, recover()."""
    key = str(store.root)
    if key in _checked:
        return []
    _checked.add(key)
    marker = boot_marker(store.root)
    try:
        if marker is None or marker.exists() or not (store.dir / ".runtime").exists():
            return []
    except OSError:
        return []
    with store.locked():
        if marker.exists():                             # another command was first
            return []
        lost = mark_lost(store)
        try:
            marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass                                        # the next command looks again: no harm
    for rec in lost:                                    # outside the lock: teardown takes it
        tear_down(store, rec)
    return [rec.name for rec in lost]


def mark_lost(store) -> list:
    """Every record the reboot ended (PID 1 and owner both gone): exited, 255. Under the lock."""
    from .state import is_alive
    lost = []
    for rec in store.list():
        if rec.status not in ("running", "paused", "restarting"):
            continue
        if is_alive(rec.pid, rec.pid_start) or is_alive(rec.supervisor_pid, rec.supervisor_start):
            continue
        rec.status, rec.exit_code, rec.finished_at = "exited", LOST_EXIT_CODE, time.time()
        store.save(rec)
        lost.append(rec)
    return lost


def tear_down(store, rec) -> None:
    """What the supervisor's `exited` phase would have done (it takes no lock itself)."""
    from . import runtime
    from .supervisor import context_for
    ctx = context_for(store, rec)
    try:
        runtime.teardown(ctx)
    except Exception as e:                              # one bad record must not stop the rest
        os.write(2, f"minicontainer: after reboot: teardown of {rec.name}: {e}\n".encode())
        if rec.auto_remove:
            store.delete(rec)


def boot(root=None, timeout: float = 30.0) -> list[str]:
    """`system boot`: recover, then start the containers whose restart policy says so.
    Returns their names; waits until each runs (or gave up)."""
    from .config import parse_restart_policy
    from .state import StateStore, state_root
    from .supervisor import STOPPED_MARK
    store = StateStore(state_root(root))                # (the recovery runs here)
    started = []
    for rec in store.list():
        policy, _ = parse_restart_policy(rec.config.get("restart", "no"))
        stopped = store.container_dir(rec.id) / STOPPED_MARK
        if rec.status != "exited" or policy not in ("always", "unless-stopped"):
            continue
        if policy == "unless-stopped" and stopped.exists():
            continue
        stopped.unlink(missing_ok=True)                 # always: even a stopped one comes back
        start_supervisor(store.root, rec.id)
        started.append(rec)
    deadline = time.monotonic() + timeout
    for rec in started:
        while time.monotonic() < deadline:
            now = store.load(rec.id)
            if now is None or now.status == "running" and now.started_at > rec.started_at or \
                    now.status == "exited" and now.finished_at > rec.finished_at:
                break
            time.sleep(0.05)
    return [rec.name for rec in started]


def start_supervisor(root: Path, cid: str) -> None:
    """A new supervisor for an existing record, in its own session (supervisor.py, phase "boot")."""
    import subprocess
    import sys
    from .supervisor import PACKAGE_PARENT
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (PACKAGE_PARENT, env.get("PYTHONPATH"))))
    subprocess.Popen([sys.executable, "-m", "minicontainer.supervisor", "boot", str(root), cid],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True, cwd="/", env=env)


def register() -> None:
    """Hook the check into every StateStore (state.py's seam); the API calls this once."""
    from . import state
    if recover_if_rebooted not in state.OPENED:
        state.OPENED.append(recover_if_rebooted)
        state.CREATED.append(note_boot)
