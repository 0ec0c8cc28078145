"""Storage migration: `volume migrate NAME --to POOL` moves a volume's data between pools while
the containers that use it keep running, paused only for the final step.

    man 2 open_tree, man 2 move_mount, man 2 setns, man 2 umount2, cgroup freezer, rsync(1)
    shell (roughly):  rsync -a SRC/ DST/                          # 1. pre-copy, containers run
                      echo FROZEN > freezer.state                 # 2. pause every user
                      rsync -a --delete SRC/ DST/                 # 3. the changes since 1
                      nsenter -m -t PID umount -l /data; mount --bind DST /data   # 4. switch
                      echo THAWED > freezer.state                 # 5. go on; then rm -rf SRC

This is what a hypervisor's live storage migration does with a disk (QEMU's drive-mirror:
copy while the guest runs, then a short switch-over), done at the level of files. The pause
covers steps 3-5: only what changed during the pre-copy is copied again, so it is short
when the workload writes little. It is measured and reported.

The switch happens inside each container's own mount namespace: a child process clones the
new data directory as a detached mount (open_tree), enters the container's namespace
(setns), lazily unmounts the old volume there and attaches the clone at the same path
(move_mount). Files a process holds open keep pointing at the old copy, so while paused the
processes' open files and working directories are checked; if one is on the volume, the
containers run on for a moment and the switch is tried again, and after a few tries the
migration stops with nothing changed.
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import ExitStack

from minicontainer.errors import ConfigError, ContainerError

TRIES = 20                                  # freeze attempts when a file on the volume is open
RETRY_PAUSE = 0.05                          # seconds the containers run between two attempts
HEADROOM = 1 << 20                          # a target must keep this free (ext4 metadata, dirs)


def migrate_volume(volumes, name: str, to_pool: str, users: list) -> dict:
    """Move volume NAME into pool TO_POOL; USERS are the running containers (records) that use
    it. Bad input fails before anything changes. Returns figures for the CLI to print."""
    from minicontainer.storage.copy import copy_tree, tree_size
    from minicontainer.storage.pools import free_bytes, pool_root
    pools = volumes.pools()
    with volumes.locked():                 # a container starting now waits, then sees the new pool
        volume = volumes.get(name)
        source, target = pools.get(volume.pool), pools.get(to_pool)
        check_movable(volume, source, target)
        with ExitStack() as stack:
            src_root = stack.enter_context(pool_root(source, pools))
            dst_root = stack.enter_context(pool_root(target, pools))
            src, dst = source.data_dir(src_root, name), target.data_dir(dst_root, name)
            if os.path.lexists(dst) and (not dst.is_dir() or any(dst.iterdir())):
                if target.driver == "dir" and target.name != "default":
                    raise ContainerError(f"pool {target.name} already holds a {name} ({dst}): remove "
                                         "it first, or migrate to another pool")
                # Volume names are unique, so in a pool of ours (default, loop) this can only be
                # what an interrupted migration left: it goes.
                remove_data(target, dst)
            need, free = tree_size(src), free_bytes(dst_root)
            if need + HEADROOM > free:
                raise ContainerError(f"pool {target.name} is too small for volume {name}: it needs "
                                     f"{need + HEADROOM} bytes, {free} are free")
            started = time.monotonic()
            try:
                copied = copy_tree(src, dst)                      # 1. pre-copy, users run
                synced, tries, paused = switch(volumes, volume, target, users, src, dst, pools)
            except BaseException:
                remove_data(target, dst)
                raise
            remove_data(source, src)
    return {"volume": name, "from": source.name, "to": target.name, "bytes": copied + synced,
            "precopy_bytes": copied, "final_bytes": synced, "containers": [u.name for u in users],
            "pause_ms": round(paused * 1000, 1), "tries": tries,
            "seconds": round(time.monotonic() - started, 3)}


def check_movable(volume, source, target) -> None:
    if volume.size:
        raise ConfigError(f"volume {volume.name} has a disk of its own (--opt size): it cannot move "
                          "between pools; copy its data into a new volume instead")
    if source.name == target.name:
        raise ConfigError(f"volume {volume.name} is in pool {target.name} already")


def switch(volumes, volume, target, users: list, src, dst, pools):
    """Steps 2-5: pause the users, copy what changed, point each user's mount at DST, write the
    record, let them go on. Returns (bytes copied while paused, tries, seconds paused in all)."""
    from minicontainer.storage.copy import sync_tree
    from minicontainer.status import current_status
    # A container paused by its user stays paused: it is not frozen again nor thawed here.
    groups = [(u, frozen_group(u)) for u in users]
    ours = [g for u, g in groups if current_status(u) != "paused"]
    paused = 0.0                            # over every try: each one stopped the users
    for attempt in range(1, TRIES + 1):
        began = time.monotonic()
        for group in ours:
            group.freeze()
        try:
            busy = [why for u, _ in groups for why in open_on_volume(u, volume_target(u, volume.name))]
            if not busy:
                synced = sync_tree(src, dst)                  # 3. the changes since the pre-copy
                switch_mounts([u for u, _ in groups], volume, dst, target, src, pools)
                data = volumes.read_record(volume.name)
                data.pop("pool", None)
                volumes.write_record(volume.name, {**data, **({"pool": target.name}
                                                              if target.name != "default" else {})})
        finally:
            for group in ours:
                group.thaw()
            paused += time.monotonic() - began
        if not busy:
            return synced, attempt, paused
        time.sleep(RETRY_PAUSE)
    raise ContainerError(f"cannot migrate volume {volume.name} now: {busy[0]} (a file held open "
                         "would keep using the old copy); close it, or stop the container, and retry")


def switch_mounts(users: list, volume, dst, target, src, pools) -> None:
    """Step 4 for every user; if one fails, those already switched go back to SRC (still there,
    nothing was written meanwhile: they are frozen), so the migration fails with nothing changed."""
    places = [(user, volume_target(user, volume.name)) for user in users]
    done, error = attach(places, dst, target, pools)
    if error:
        attach(places[:done], src, pools.get(volume.pool), pools)
        user, where = places[done]
        raise ContainerError(f"switching {where} of container {user.name} to pool {target.name}: {error}")


def frozen_group(user):
    from minicontainer.status import container_cgroup, no_cgroup_reason
    group = container_cgroup(user)
    if group is None:
        raise ContainerError(f"cannot migrate a volume of container {user.name} while it runs: "
                             f"{no_cgroup_reason(user)}; stop it first")
    return group


def volume_target(user, name: str) -> str:
    """The path where container USER has volume NAME (its -v NAME:PATH)."""
    from minicontainer.storage.volumes import parse_volume
    for spec in user.config.get("volumes") or []:
        m = parse_volume(spec)
        if m.kind == "volume" and m.source == name:
            return m.target
    raise ContainerError(f"container {user.name} does not use volume {name}")


def mount_id(pid: int, target: str) -> int | None:
    """The id of the (top) mount at TARGET in PID's mount namespace (/proc/PID/mountinfo)."""
    from minicontainer.procfs import mountinfo_lines, unescape
    found = None
    for line in mountinfo_lines(pid):
        fields = line.split()
        if unescape(fields[4]) == target:
            found = int(fields[0])
    return found


def open_on_volume(user, target: str) -> list[str]:
    """'PID 12 (sh) has /data/log open' for each open file or cwd of USER's processes on the
    volume mount (fdinfo's mnt_id, the same id mountinfo shows)."""
    from minicontainer.status import container_cgroup
    wanted = mount_id(user.pid, target)
    if wanted is None:                                        # no such mount (or PID 1 is gone):
        return []                                             # nothing can be open on it
    found = []
    for pid in container_cgroup(user).procs():
        try:
            links = [("cwd", f"/proc/{pid}/cwd")] + [
                (fd, f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            for label, link in links:
                if link_mount_id(link) == wanted:
                    comm = open(f"/proc/{pid}/comm").read().strip()
                    found.append(f"PID {pid} ({comm}) in container {user.name} has "
                                 f"{os.readlink(link)} open on {target}" if label != "cwd" else
                                 f"PID {pid} ({comm}) in container {user.name} works in {target}")
        except (FileNotFoundError, ProcessLookupError):
            continue                                          # exited meanwhile
    return found


def link_mount_id(link: str) -> int | None:
    """The mount a /proc/PID/{fd/N,cwd} link is on: open it O_PATH, read our fdinfo's mnt_id."""
    try:
        fd = os.open(link, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None                                           # sockets, pipes, gone: never on a volume
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    return None


def attach(places: list, dst, pool, pools) -> tuple[int, str]:
    """Step 4, in one child for all users (a fork costs more than the mounts): clone DST as a
    detached mount once per user, then for each (user, target) enter its mount namespace,
    replace the mount at TARGET with a clone and set nodev/nosuid (and ro) as `run` does.
    Returns (how many were switched, the error that stopped it or "")."""
    from minicontainer.kernel.mount import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOSUID, MS_PRIVATE,
                                            MS_RDONLY, MS_REC, MS_REMOUNT, mount, move_mount,
                                            open_tree, umount2)
    from minicontainer.kernel.namespaces import CLONE_NEWNS, setns, unshare
    flags = [MS_NODEV | (MS_NOSUID if pool.driver == "loop" else 0)
             | (MS_RDONLY if read_only_in(user, target) else 0) for user, target in places]
    namespaces = [os.open(f"/proc/{user.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC) for user, _ in places]
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_r)
            source = str(dst)
            if pool.driver == "loop":          # mount the pool's image here, privately, to clone it
                from minicontainer.storage.disk import mount_disk
                unshare(CLONE_NEWNS)
                mount(None, "/", None, MS_REC | MS_PRIVATE)
                mnt = pools.root / pool.name / "mnt"
                mount_disk(pool.path, mnt)
                source = str(mnt / user_subdir(dst))
            trees = [open_tree(source) for _ in places]        # made where SOURCE is visible
            for tree, ns, (_, target), flag in zip(trees, namespaces, places, flags):
                setns(ns, CLONE_NEWNS)         # now "/" is this container's root
                umount2(target, MNT_DETACH)
                move_mount(tree, target)
                mount(None, target, None, MS_REMOUNT | MS_BIND | flag)
                os.write(report_w, b"+")
            os._exit(0)
        except BaseException as e:
            os.write(report_w, b"!" + str(e).encode()[:500])
            os._exit(1)
    os.close(report_w)
    for ns in namespaces:
        os.close(ns)
    with os.fdopen(report_r, "rb") as f:
        said = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    done = len(said) - len(said.lstrip("+"))
    if done == len(places) and status == 0:
        return done, ""
    return done, said[done + 1:] or "the helper process failed"


def user_subdir(dst) -> str:
    """A loop pool's volume directory, the last part of the path opened() gave us."""
    return os.path.basename(str(dst))


def read_only_in(user, target: str) -> bool:
    from minicontainer.storage.volumes import parse_volume
    return any(m.read_only for m in map(parse_volume, user.config.get("volumes") or [])
               if m.target == target)


def remove_data(pool, path) -> None:
    """A volume's data directory goes; in the default pool only its contents (the directory,
    <root>/volumes/NAME/_data, is also the placeholder of a volume living in another pool)."""
    if pool.name != "default":
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.isdir(path):
        clear_dir(path)


def clear_dir(path) -> None:
    """Empty PATH but keep it (the default pool's _data is also a loop pool volume's placeholder)."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
