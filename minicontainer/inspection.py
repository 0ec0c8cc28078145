"""inspect and top: a container as the kernel shows it while it runs.

    man 5 proc (/proc/PID/ns/*, /proc/PID/mountinfo, /proc/PID/stat), man 7 namespaces,
    man 7 cgroups (cgroup.procs)
    shell: readlink /proc/PID/ns/*; cat /proc/PID/mountinfo; ps -o pid,ppid,stat,time,cmd $(cat cgroup.procs)

    inspect  the record (state.py) + the namespaces' inode numbers + PID 1's mount table + the
             cgroup, in Docker's JSON shape
    top      the PIDs in cgroup.procs (no cgroup: those of PID 1's PID namespace), each described
             from /proc/PID (procfs.py)
"""
from __future__ import annotations

import time

from .errors import ContainerError
from .kernel.namespaces import namespace_ids
from .procfs import describe_process, pid_namespace_members, read_mounts
from .state import open_store
from .status import container_cgroup, current_status, is_running, owner_alive
from .supervisor import LOG_FILE, stop_requested


def rfc3339(t: float) -> str:
    if not t:
        return "0001-01-01T00:00:00Z"              # Docker's "never"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def inspect_container(ref: str, root=None) -> dict:
    """Docker-shaped JSON: the record, plus what the kernel says while it runs."""
    from .config import parse_restart_policy
    store = open_store(root)
    rec = store.find(ref)
    status = current_status(rec)
    alive = status in ("running", "paused")
    cgroup = container_cgroup(rec)
    policy, retries = parse_restart_policy(rec.config.get("restart", "no"))
    cdir = store.container_dir(rec.id)
    return {
        "Id": rec.id, "Name": rec.name, "Created": rfc3339(rec.created),
        "Path": rec.command[0], "Args": rec.command[1:], "Image": rec.image, "Hostname": rec.hostname,
        "State": {"Status": status, "Running": alive, "Paused": status == "paused",
                  "Restarting": status == "restarting", "OOMKilled": rec.oom_killed, "Dead": status == "dead",
                  "Pid": rec.pid if alive else 0, "ExitCode": rec.exit_code,
                  "StartedAt": rfc3339(rec.started_at), "FinishedAt": rfc3339(rec.finished_at),
                  "StopRequested": stop_requested(store, rec.id),
                  **({"Health": rec.health} if rec.health else {})},
        "RestartCount": rec.restart_count,
        "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
        "Supervisor": {"Pid": rec.supervisor_pid, "Running": owner_alive(rec)},
        "Namespaces": namespace_ids(rec.pid) if alive else {},
        "Cgroup": {"Name": rec.cgroup, "Path": cgroup.relpath if cgroup else "",
                   "Dirs": [str(d) for d in cgroup.dirs] if cgroup else []},
        "Mounts": read_mounts(rec.pid) if alive else [],
        "GraphDriver": graph_driver(cdir),
        "LogPath": str(cdir / LOG_FILE) if (cdir / LOG_FILE).exists() else "",
        "NetworkSettings": rec.network,
        "Config": rec.config,
    }


def top_container(ref: str, root=None) -> list[dict]:
    """The container's processes as the host sees them (host PID, and PID inside: NSpid)."""
    rec = open_store(root).find(ref)
    if not is_running(rec):
        raise ContainerError(f"container {rec.name} is not running")
    cgroup = container_cgroup(rec)
    pids = cgroup.procs() if cgroup is not None else pid_namespace_members(rec.pid)
    return [p for p in (describe_process(pid) for pid in pids) if p]


def graph_driver(cdir) -> dict:
    """Where the writable layer is; with --storage-opt size=N, its disk, limit and use."""
    from .storage.overlay import DISK_IMAGE, DISK_MOUNT
    image = cdir / DISK_IMAGE
    if not image.exists():
        return {"Name": "overlay", "Data": {"UpperDir": str(cdir / "upper"), "WorkDir": str(cdir / "work"),
                                            "MergedDir": str(cdir / "merged")}}
    from .storage.disk import disk_usage
    used, size = disk_usage(image)
    return {"Name": "overlay", "Data": {"UpperDir": f"{image}:/upper", "WorkDir": f"{image}:/work",
                                        "MergedDir": str(cdir / "merged"), "Disk": str(image),
                                        "DiskMountpoint": str(cdir / DISK_MOUNT), "Size": size,
                                        "Allocated": used}}
