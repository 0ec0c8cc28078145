"""Docker's housekeeping verbs: container prune, image history, system info, logs --since/--until.

    man 5 proc (/proc/meminfo), uname(2); Docker's `docker container prune`, `docker image
    history`, `docker system info`, `docker logs --since` reference pages

Nothing here changes how a container runs: these read the records, the image store and the
kernel, and remove what the user asked to remove.
"""
from __future__ import annotations

import os
import platform
import re
import time

from .errors import ConfigError


# ── container prune ───────────────────────────────────────────────────────────────────────

def prune_containers(root=None) -> list[str]:
    """Remove every container that is not running (exited, created, dead): Docker's
    `container prune`. Returns the removed IDs."""
    from .errors import MinicontainerError
    from .status import list_containers
    from .stop import remove_container
    removed = []
    for rec in list_containers(root):
        if rec.status in ("running", "paused", "restarting"):
            continue
        try:
            remove_container(rec.id, root=root)
            removed.append(rec.id)
        except MinicontainerError:
            continue                                   # started meanwhile: not ours to prune
    return removed


# ── image history ─────────────────────────────────────────────────────────────────────────

def image_history(image) -> list[dict]:
    """One row per layer, the top first: its id, when and by what it was made, its size."""
    import json
    rows = []
    for layer, fs in zip(reversed(image.layers), reversed(image.layer_dirs)):
        try:
            meta = json.loads((fs.parent / "layer.json").read_text())
        except (OSError, ValueError):
            meta = {}
        rows.append({"ID": layer[:12], "Created": meta.get("created", ""),
                     "CreatedBy": meta.get("source", ""), "Size": int(meta.get("size") or 0)})
    if not rows:                                       # a rootfs/ image: one unnamed layer
        rows.append({"ID": image.id, "Created": image.created, "CreatedBy": image.source,
                     "Size": image.size})
    return rows


# ── system info ───────────────────────────────────────────────────────────────────────────

def system_info(root=None, version: str = "") -> dict:
    """What `docker info` shows that exists here."""
    from .cgroups.layout import detect_layout
    from .state import state_root
    from .status import list_containers
    from .storage.images import image_store
    records = list_containers(root)
    count = {s: sum(1 for r in records if r.status == s) for s in ("running", "paused")}
    layout = detect_layout()
    return {
        "ServerVersion": version, "Containers": len(records),
        "ContainersRunning": count["running"], "ContainersPaused": count["paused"],
        "ContainersStopped": len(records) - count["running"] - count["paused"],
        "Images": len(image_store(root).list()), "Driver": "overlay",
        "DockerRootDir": str(state_root(root)), "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(layout.version), "CgroupLayout": layout.kind,
        "KernelVersion": platform.release(), "OperatingSystem": os_name(),
        "OSType": "linux", "Architecture": platform.machine(), "NCPU": os.cpu_count(),
        "MemTotal": mem_total(), "Rootless": os.geteuid() != 0,
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
    }


def os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def mem_total() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


# ── logs --since / --until ────────────────────────────────────────────────────────────────



def parse_time(value: str, now: float | None = None) -> float:
    """Docker's --since/--until: an RFC 3339 time (2025-01-31T12:00:00Z, or a date), a Unix
    time (1706702400[.5]), or a duration before now (10m, 1h30m, 42s)."""
    now = time.time() if now is None else now
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", text):
        from .health import parse_duration
        return now - parse_duration(text, "--since/--until")
    from datetime import datetime, timezone
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"invalid time {value!r}: use an RFC 3339 time (2025-01-31T12:00:00Z), "
                          "a Unix time, or a duration such as 10m or 1h30m") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def log_time(ts: str) -> float:
    """A log entry's RFC 3339 nanosecond time stamp → seconds (micro precision is enough)."""
    from datetime import datetime
    head, _, frac = ts.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def in_window(ts: str, since: float | None, until: float | None) -> bool:
    t = log_time(ts)
    return (since is None or t >= since) and (until is None or t < until)
