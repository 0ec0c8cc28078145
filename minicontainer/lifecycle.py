"""Everything after `run`: ps, logs, inspect, stop, kill, rm, wait, pause, unpause, top.

    man 2 kill, man 2 pidfd_open, man 2 pidfd_send_signal, man 7 signal, man 5 proc
    (/proc/PID/{stat,status,ns,mountinfo}), cgroup freezer: Documentation/admin-guide/
    cgroup-v2.rst "cgroup.freeze", cgroup-v1/freezer-subsystem.rst

Each verb reads the container's record (state.py), asks the kernel what is true now, and acts
on the container's processes from the host, where they are ordinary processes:

    stop     kill -TERM PID; up to -t seconds later kill -KILL PID     (what `docker stop` does)
    kill     kill -SIGNAL PID
    pause    echo 1 > cgroup.freeze (v2) / echo FROZEN > freezer.state (v1): every process of
             the group stops at once, without being told — unlike SIGSTOP, which it could see
    top      the PIDs in cgroup.procs (no cgroup: those of PID 1's PID namespace), each
             described from /proc/PID
    inspect  the record + /proc/PID/ns/* inode numbers + /proc/PID/mountinfo + the cgroup

A PID is only a number, and the kernel reuses numbers. So a signal goes out only through a
pidfd (pidfd_open(2)): the descriptor pins one process; after checking through it that the
start time is still the recorded one, pidfd_send_signal(2) cannot reach anybody else.

Who records what: the container's *owner* — the supervisor of a `run -d` container, the CLI
process of a foreground `run` — records the exit status and tears down. These verbs signal
and then wait for the owner to finish; `rm -f` cleans up itself only if the owner is gone.
"""
from __future__ import annotations

import os
import signal
import time

from .errors import ConfigError, ContainerError
from .state import ContainerRecord, StateStore, is_alive, proc_start_time, state_root
from .supervisor import EXIT_FILE, LOG_FILE, STOPPED_MARK, parse_entry, stop_requested

OWNER_TIMEOUT = 10.0            # seconds to wait for the owner to record an exit / clean up
POLL = 0.02


def _store(root) -> StateStore:
    return StateStore(state_root(root))


# ── what state is a container in? ─────────────────────────────────────────────────────────

def owner_alive(rec: ContainerRecord) -> bool:
    """Is the process that waits for this container (supervisor or CLI) still there?"""
    return is_alive(rec.supervisor_pid, rec.supervisor_start)


def current_status(rec: ContainerRecord) -> str:
    """The recorded status, checked against the kernel: 'dead' when nobody is left to record
    what happened (its owner was killed: `minicontainer gc` cleans it up)."""
    if rec.status in ("running", "paused"):
        if is_alive(rec.pid, rec.pid_start):
            return rec.status
        return "exited" if owner_alive(rec) else "dead"
    if rec.status in ("created", "restarting") and not owner_alive(rec):
        return "dead"
    return rec.status


def list_containers(root=None) -> list[ContainerRecord]:
    """Every record, its status as current_status() says."""
    records = _store(root).list()
    for rec in records:
        rec.status = current_status(rec)
    return records


def human_duration(seconds: float) -> str:
    """Docker's wording (go-units HumanDuration): '3 seconds', 'About a minute', '2 hours'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    minutes = s // 60
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = int(s / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 14:
        return f"{hours // 24} days"
    if hours < 24 * 60:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 730:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(rec: ContainerRecord, now: float | None = None) -> str:
    """The STATUS column of `ps`: 'Up 3 seconds', 'Exited (0) 2 minutes ago', …"""
    now = now or time.time()
    status = current_status(rec)
    code = "?" if rec.exit_code is None else rec.exit_code
    if status == "running":
        return f"Up {human_duration(now - rec.started_at)}"
    if status == "paused":
        return f"Up {human_duration(now - rec.started_at)} (Paused)"
    if status == "restarting":
        return f"Restarting ({code}) {human_duration(now - rec.finished_at)} ago"
    if status == "exited":
        return f"Exited ({code}) {human_duration(now - (rec.finished_at or rec.created))} ago"
    return status.capitalize()


# ── signals ───────────────────────────────────────────────────────────────────────────────

def parse_signal(value: str | int) -> int:
    """'TERM', 'SIGTERM', 'term' or '15' → 15."""
    text = str(value).strip().upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
    if sig is None:
        raise ConfigError(f"invalid signal {value!r}: use a name (TERM, KILL, HUP, INT, USR1 …) or a number")
    return int(sig)


def signal_process(pid: int, start: int, sig: int) -> bool:
    """Send `sig` to `pid` if — and only if — it is still the process that started at `start`.
    True if it was sent."""
    if pid <= 0:
        return False
    try:
        fd = os.pidfd_open(pid)                  # from here on, fd means this one process
    except (ProcessLookupError, OSError):
        return False
    try:
        if proc_start_time(pid) != start:        # the PID was reused: not ours
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:                   # it exited in between: fine
        return False
    finally:
        os.close(fd)


def mark_stopped(store: StateStore, rec: ContainerRecord) -> None:
    """A marker file, not a record field: the supervisor rewrites the record, a file it only reads."""
    try:
        os.close(os.open(store.container_dir(rec.id) / STOPPED_MARK, os.O_CREAT | os.O_WRONLY, 0o600))
    except FileNotFoundError:
        pass                                     # removed meanwhile


def wake_owner(rec: ContainerRecord) -> None:
    """SIGUSR1 ends a supervisor's back-off sleep early (it then sees the stop marker)."""
    if rec.status == "restarting":
        signal_process(rec.supervisor_pid, rec.supervisor_start, signal.SIGUSR1)


def thaw_if_paused(rec: ContainerRecord) -> None:
    """A frozen process acts on a signal only once thawed."""
    cgroup = _cgroup(rec)
    if rec.status == "paused" and cgroup is not None:
        cgroup.thaw()


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def _reload(store: StateStore, rec: ContainerRecord) -> ContainerRecord | None:
    return store.load(rec.id)


def settled(store: StateStore, rec: ContainerRecord) -> bool:
    """Has the container stopped for good (exit recorded, owner done, no restart pending)?
    A supervisor exits when it is done; a foreground owner (a library caller) may live on."""
    now = _reload(store, rec)
    if now is None:
        return True
    if is_alive(now.pid, now.pid_start):
        return False
    if not owner_alive(now):
        return True
    return now.status == "exited" and not now.config.get("detach")


# ── the verbs ─────────────────────────────────────────────────────────────────────────────

def stop_container(ref: str, timeout: float = 10, root=None) -> ContainerRecord:
    """SIGTERM, then SIGKILL after `timeout` seconds; returns once the exit is recorded.
    The restart policy will not restart it (Docker's 'manually stopped').

    A restarting container's record may still name the old PID 1 while its supervisor starts
    a new one: so each poll reads the record again and signals whichever PID 1 it names."""
    store = _store(root)
    rec = store.find(ref)
    mark_stopped(store, rec)
    deadline, termed = time.monotonic() + timeout, set()

    def done() -> bool:
        now = _reload(store, rec)
        if now is None:
            return True
        wake_owner(now)                                   # in a back-off: restart() sees the mark
        if time.monotonic() > deadline:
            sent = signal_process(now.pid, now.pid_start, signal.SIGKILL)
        elif (now.pid, now.pid_start) not in termed:      # SIGTERM once per process
            sent = signal_process(now.pid, now.pid_start, signal.SIGTERM)
            termed.add((now.pid, now.pid_start))
        else:
            sent = False
        if sent:
            thaw_if_paused(now)
        return settled(store, now)
    wait_until(done, timeout + OWNER_TIMEOUT)
    return store.load(rec.id) or rec


def kill_container(ref: str, sig: str | int = "KILL", root=None) -> ContainerRecord:
    """Send a signal to PID 1 (default SIGKILL). KILL and TERM count as a stop for --restart."""
    number = parse_signal(sig)
    store = _store(root)
    rec = store.find(ref)
    if current_status(rec) not in ("running", "paused"):
        raise ContainerError(f"container {rec.name} is not running")
    if number in (signal.SIGKILL, signal.SIGTERM):
        mark_stopped(store, rec)
    if not signal_process(rec.pid, rec.pid_start, number):
        raise ContainerError(f"container {rec.name} is not running")
    if number == signal.SIGKILL:
        thaw_if_paused(rec)
    return rec


def remove_container(ref: str, *, force: bool = False, root=None) -> ContainerRecord:
    """Delete a container: its cgroup, network lease, overlay dirs and record. A running (or
    restarting, or starting) one only with force: SIGKILL, and its owner cleans up first."""
    store = _store(root)
    rec = store.find(ref)
    busy = current_status(rec) in ("running", "paused", "restarting") or (
        rec.status == "created" and owner_alive(rec))
    if busy:
        if not force:
            raise ContainerError(f"container {rec.name} is {current_status(rec)}: stop it first "
                                 f"(`minicontainer stop {rec.name}`) or use `rm -f`")
        mark_stopped(store, rec)
        end_for_removal(store, rec)
    else:                                          # an exited one's supervisor may still be
        wait_until(lambda: settled(store, rec), OWNER_TIMEOUT)    # tearing down: let it finish
    rest = store.load(rec.id)
    if rest is not None:                           # the owner is gone: clean up ourselves
        clean_up(store, rest)
    return rec


def end_for_removal(store: StateStore, rec: ContainerRecord) -> None:
    """SIGKILL PID 1 (again, if it is restarted meanwhile) until the owner has finished."""
    def done() -> bool:
        now = _reload(store, rec)
        if now is None:
            return True
        if signal_process(now.pid, now.pid_start, signal.SIGKILL):
            thaw_if_paused(now)
        wake_owner(now)
        return not owner_alive(now) and not is_alive(now.pid, now.pid_start)
    wait_until(done, OWNER_TIMEOUT)


def clean_up(store: StateStore, rec: ContainerRecord) -> None:
    """runtime.teardown for a record nobody else will tear down: everything goes."""
    from . import runtime
    from .supervisor import context_for
    ctx = context_for(store, rec)
    ctx.record.auto_remove = True
    runtime.teardown(ctx)


def wait_container(ref: str, root=None) -> int:
    """Block until the container stops running; its exit status (as `docker wait`)."""
    store = _store(root)
    rec = store.find(ref)
    exit_file = open_exit_file(store, rec)
    try:
        while True:
            now = store.load(rec.id)
            if now is None:                        # --rm: recorded and removed between two polls
                code = read_exit_file(exit_file)
                if code is None:
                    raise ContainerError(f"container {rec.name} was removed before its exit status was read")
                return code
            if now.status in ("exited", "restarting") and now.exit_code is not None:
                return now.exit_code
            if current_status(now) == "dead":
                raise ContainerError(f"container {rec.name} lost its supervisor: its exit status is "
                                     "unknown (`minicontainer gc` cleans it up)")
            time.sleep(POLL)
    finally:
        if exit_file is not None:
            os.close(exit_file)


def open_exit_file(store: StateStore, rec: ContainerRecord) -> int | None:
    """The supervisor's exit file (supervisor.write_exit_file), opened now: the descriptor
    still reads it after the container's directory is removed. Created empty if need be."""
    try:
        return os.open(store.container_dir(rec.id) / EXIT_FILE, os.O_RDONLY | os.O_CREAT, 0o600)
    except OSError:
        return None                                # removed already, or not ours to write


def read_exit_file(fd: int | None) -> int | None:
    try:
        return int(os.pread(fd, 16, 0)) if fd is not None else None
    except (OSError, ValueError):                  # empty: nothing was recorded
        return None


def pause_container(ref: str, root=None) -> ContainerRecord:
    store = _store(root)
    rec = store.find(ref)
    with store.locked():                           # check and change in one step: the supervisor
        rec = store.load(rec.id) or rec            # cannot record an exit in between (that we
        status = current_status(rec)               # would then overwrite with "paused")
        if status == "paused":
            raise ContainerError(f"container {rec.name} is already paused")
        if status != "running":
            raise ContainerError(f"container {rec.name} is not running")
        cgroup = _cgroup(rec)
        if cgroup is None:
            raise ContainerError(f"container {rec.name} cannot be paused: {no_cgroup_reason(rec)}")
        cgroup.freeze()
        rec.status = "paused"
        store.save(rec)
    return rec


def unpause_container(ref: str, root=None) -> ContainerRecord:
    store = _store(root)
    rec = store.find(ref)
    with store.locked():                           # as in pause: check and change in one step
        rec = store.load(rec.id) or rec
        if current_status(rec) != "paused":
            raise ContainerError(f"container {rec.name} is not paused")
        cgroup = _cgroup(rec)
        if cgroup is not None:
            cgroup.thaw()
        rec.status = "running"
        store.save(rec)
    return rec


def _cgroup(rec: ContainerRecord):
    """The container's group, in /sys/fs/cgroup or (rootless) in the tree delegated to its user."""
    from .cgroups import open_cgroup
    return open_cgroup(rec.cgroup, rec.cgroup_root) if rec.cgroup else None


def no_cgroup_reason(rec: ContainerRecord) -> str:
    """Why a container has no cgroup (for pause, stats): rootless without delegation, or gone."""
    if not rec.cgroup:
        return ("it has no cgroup, because it was started rootless where none is delegated to you "
                "(cgroup v1, or outside a delegated cgroup v2 scope: see docs/rootless.md)")
    return f"its cgroup {rec.cgroup_root or '/sys/fs/cgroup'}/…/{rec.cgroup} is gone (was it cleaned up?)"


# ── inspect and top ───────────────────────────────────────────────────────────────────────

def rfc3339(t: float) -> str:
    if not t:
        return "0001-01-01T00:00:00Z"              # Docker's "never"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def namespace_inodes(pid: int) -> dict[str, int]:
    """/proc/PID/ns/NAME → 'pid:[4026532245]': the inode number names the namespace."""
    out = {}
    for name in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts"):
        try:
            out[name] = int(os.readlink(f"/proc/{pid}/ns/{name}").split("[")[1].rstrip("]"))
        except (OSError, IndexError, ValueError):
            pass
    return out


def read_mounts(pid: int) -> list[dict]:
    """/proc/PID/mountinfo (proc(5)): the container's mount table, as its PID 1 sees it."""
    mounts = []
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return mounts
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 6 and len(rest) >= 2:
            mounts.append({"Destination": fields[4], "Type": rest[0], "Source": rest[1],
                           "Options": fields[5], "Root": fields[3]})
    return mounts


def inspect_container(ref: str, root=None) -> dict:
    """Docker-shaped JSON: the record, plus what the kernel says while it runs."""
    from .config import parse_restart_policy
    store = _store(root)
    rec = store.find(ref)
    status = current_status(rec)
    alive = status in ("running", "paused")
    cgroup = _cgroup(rec)
    policy, retries = parse_restart_policy(rec.config.get("restart", "no"))
    cdir = store.container_dir(rec.id)
    return {
        "Id": rec.id, "Name": rec.name, "Created": rfc3339(rec.created),
        "Path": rec.command[0], "Args": rec.command[1:], "Image": rec.image, "Hostname": rec.hostname,
        "State": {"Status": status, "Running": alive, "Paused": status == "paused",
                  "Restarting": status == "restarting", "OOMKilled": rec.oom_killed, "Dead": status == "dead",
                  "Pid": rec.pid if alive else 0, "ExitCode": rec.exit_code,
                  "StartedAt": rfc3339(rec.started_at), "FinishedAt": rfc3339(rec.finished_at),
                  "StopRequested": stop_requested(store, rec.id)},
        "RestartCount": rec.restart_count,
        "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
        "Supervisor": {"Pid": rec.supervisor_pid, "Running": owner_alive(rec)},
        "Namespaces": namespace_inodes(rec.pid) if alive else {},
        "Cgroup": {"Name": rec.cgroup, "Path": cgroup.relpath if cgroup else "",
                   "Dirs": [str(d) for d in cgroup.dirs] if cgroup else []},
        "Mounts": read_mounts(rec.pid) if alive else [],
        "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": str(cdir / "upper"),
                        "WorkDir": str(cdir / "work"), "MergedDir": str(cdir / "merged")}},
        "LogPath": str(cdir / LOG_FILE) if (cdir / LOG_FILE).exists() else "",
        "NetworkSettings": rec.network,
        "Config": rec.config,
    }


def top_container(ref: str, root=None) -> list[dict]:
    """The container's processes as the host sees them (host PID, and PID inside: NSpid)."""
    store = _store(root)
    rec = store.find(ref)
    if current_status(rec) not in ("running", "paused"):
        raise ContainerError(f"container {rec.name} is not running")
    cgroup = _cgroup(rec)
    pids = cgroup.procs() if cgroup is not None else pid_namespace_members(rec.pid)
    return [p for p in (describe_process(pid) for pid in pids) if p]


def pid_namespace_members(pid: int) -> list[int]:
    """Without a cgroup (rootless, no delegation): the processes in PID 1's PID namespace —
    those whose /proc/N/ns/pid names the same namespace (an exec'd process's parent, which
    only joined it, is not among them)."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return [pid]
    members = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                members.append(int(entry))
        except OSError:
            continue                                   # gone, or not ours to look at
    return sorted(members) or [pid]


def describe_process(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None                                    # exited meanwhile
    fields = stat[stat.rindex(b")") + 2:].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")
    return {"UID": status.get("Uid", "").split()[0], "PID": pid, "PPID": int(fields[1]),
            "NSPID": status.get("NSpid", "").split()[-1] if status.get("NSpid") else "",
            "STAT": fields[0].decode(), "TIME": time.strftime("%H:%M:%S", time.gmtime(ticks)),
            "CMD": cmdline or f"[{comm}]"}


# ── logs ──────────────────────────────────────────────────────────────────────────────────

class LogReader:
    """Entries of container.log, partial lines (P) joined to whole ones per stream."""

    def __init__(self, path):
        self.path, self.file, self.rest = path, None, b""
        self.pending: dict[str, tuple[str, bytes]] = {}

    def read_new(self, partial: bool = False) -> list[tuple[str, str, bytes]]:
        """What was appended since the last call. partial=True also gives unfinished lines
        (for -f: a prompt without newline should show up at once)."""
        if self.file is None:
            try:                                         # opened once: when --rm removes the
                self.file = open(self.path, "rb", buffering=0)   # directory, this descriptor
            except FileNotFoundError:                    # still reads the last output
                return []
        data = self.file.readall()
        data, out = self.rest + data, []
        lines = data.split(b"\n")
        self.rest = lines.pop()                          # an entry still being written
        for line in lines:
            entry = parse_entry(line + b"\n")
            if entry is None:
                continue
            ts, stream, text = entry
            first_ts, before = self.pending.pop(stream, (ts, b""))
            if text.endswith(b"\n"):
                out.append((first_ts, stream, before + text))
            elif partial:
                out.append((first_ts, stream, before + text))
            else:
                self.pending[stream] = (first_ts, before + text)
        return out

    def unfinished(self) -> list[tuple[str, str, bytes]]:
        out = [(ts, stream, text) for stream, (ts, text) in self.pending.items()]
        self.pending.clear()
        return out

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def log_path(ref: str, root=None):
    store = _store(root)
    rec = store.find(ref)
    return store, rec, store.container_dir(rec.id) / LOG_FILE


def read_logs(ref: str, tail: int | None = None, root=None) -> list[tuple[str, str, bytes]]:
    """(timestamp, 'stdout'|'stderr', line) for every line, or the last `tail`."""
    _, _, path = log_path(ref, root)
    reader = LogReader(path)
    try:
        return last(reader.read_new() + reader.unfinished(), tail)
    finally:
        reader.close()


def last(entries: list, tail: int | None) -> list:
    """--tail N: the last N lines (all of them without --tail; none for 0)."""
    if tail is None or tail < 0:
        return entries
    return entries[-tail:] if tail else []


def follow_logs(ref: str, emit, tail: int | None = None, root=None) -> None:
    """`logs -f`: emit(ts, stream, text) for the last `tail` lines, then for new output as it
    comes, until the container has stopped for good."""
    store, rec, path = log_path(ref, root)
    reader = LogReader(path)
    try:
        for entry in last(reader.read_new(), tail):
            emit(*entry)
        while True:
            over = settled(store, rec)                 # decided before the read: nothing is missed
            for entry in reader.read_new(partial=True):
                emit(*entry)
            if over:
                for entry in reader.unfinished():
                    emit(*entry)
                return
            time.sleep(0.1)
    finally:
        reader.close()
