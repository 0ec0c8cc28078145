"""The state directory: where minicontainer remembers its images and containers.

    <root>/                    /var/lib/minicontainer, or --root / $MINICONTAINER_ROOT
      images/<name>/<tag>/     unpacked once by storage/images.py
      containers/<id>/         one per container:
        state.json             this record (status, PIDs, exit code, what was created)
        upper/ work/ merged/   its overlay directories (storage/overlay.py)
      containers/.lock         flock(2) held while names are allocated or records change
      containers/.names/NAME   the ID that holds NAME: create and find by name in O(1), not a
                               read of every record (1,000 containers: ~40 ms per command)
    (an ordinary user's root is ~/.local/share/minicontainer: see state_root)

A record is written *before* the thing it describes is created (a cgroup, a directory), so
after a crash at any step the record says what to clean up. A PID is stored with its start
time from /proc/PID/stat, so a PID that the kernel reused for another process is never
signalled by mistake.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import ContainerError, ConfigError
from .events import record as record_event
from .procfs import is_alive, proc_start_time   # (here first; procfs is lighter: minicontainer-oci)
from .records import asdict, field, fields, record

DEFAULT_ROOT = "/var/lib/minicontainer"
# Hooks, filled by recovery.py when the API is loaded (a seam, so that state.py imports
# nothing of what recovery needs): called with every new StateStore, and after a create.
OPENED: list = []
CREATED: list = []


def state_root(root: str | os.PathLike | None = None) -> Path:
    """--root, else $MINICONTAINER_ROOT, else /var/lib/minicontainer for root — and for an
    ordinary user (rootless, userns.py) $XDG_DATA_HOME/minicontainer, or, without that
    variable, ~/.local/share/minicontainer: their images and containers are theirs, as
    Podman's are under ~/.local/share/containers."""
    chosen = root or os.environ.get("MINICONTAINER_ROOT")
    if chosen:
        return check_root(Path(chosen))
    if os.geteuid() == 0:
        return Path(DEFAULT_ROOT)
    data = os.environ.get("XDG_DATA_HOME", "")
    if not data.startswith("/"):                  # the XDG spec: a relative value is ignored
        data = str(Path.home() / ".local" / "share")
    return Path(data) / "minicontainer"


def check_root(root: Path) -> Path:
    """A chosen root must be a directory, or creatable as one (its first existing ancestor is)."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"state root {root}: {existing} is not a directory — "
                          "choose another --root or MINICONTAINER_ROOT")
    return root


@contextmanager
def dir_lock(directory: Path):
    """flock(2) on DIR/.lock: one writer at a time for the JSON records in DIR (containers,
    pods, Kubernetes objects); the lock goes with the file's close, even on SIGKILL."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@record
class ContainerRecord:
    id: str
    name: str
    image: str
    command: list[str]
    created: float
    status: str = "created"            # created → running (⇄ paused) → exited (→ restarting → running)
    pid: int = 0                       # host PID of the container's PID 1
    pid_start: int = 0                 # its start time (clock ticks since boot), see proc(5)
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    auto_remove: bool = False
    hostname: str = ""
    cgroup: str = ""                   # the cgroup's name, recorded before it is created ("": none)
    cgroup_root: str = ""              # the tree it is made in, when not /sys/fs/cgroup: a rootless
                                       # container's delegated group (cgroups/delegation.py)
    network: dict = field(default_factory=dict)   # network/: the lease and veth, before they exist
    config: dict = field(default_factory=dict)
    supervisor_pid: int = 0            # who waits for PID 1: the CLI (foreground) or supervisor.py (-d)
    supervisor_start: int = 0          # its start time, like pid_start
    restart_count: int = 0             # restarts done by the --restart policy
    health: dict = field(default_factory=dict)    # health.py: Status, FailingStreak, Log (State.Health)

    @property
    def short_id(self) -> str:
        return self.id[:12]


_ADJECTIVES = ("agile brave calm clever eager fancy gentle happy jolly keen lively merry "
               "nifty proud quick quiet sharp shiny swift tidy witty zesty").split()
_NOUNS = ("babbage curie dijkstra hopper kernighan knuth lamport liskov lovelace noether "
          "ritchie shannon thompson torvalds turing wirth").split()


class StateStore:
    """Container records under <root>/containers, safe for parallel CLI calls (flock)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / "containers"
        for hook in OPENED:                     # recovery.py: the first command after a reboot
            hook(self)

    def locked(self):
        return dir_lock(self.dir)

    def container_dir(self, cid: str) -> Path:
        return self.dir / cid

    def create(self, image: str, command: list[str], name: str | None, **fields) -> ContainerRecord:
        """Allocate an ID and a unique name, and write the record (status 'created')."""
        if name is not None:
            validate_name(name)
        with self.locked():
            names = self.names_index()
            if name is not None and self.holder(name) is not None:
                raise ContainerError(f"the name {name!r} is already in use: remove that "
                                     f"container (`minicontainer rm {name}`) or pick another --name")
            name = name or _free_name(lambda n: self.holder(n) is not None)
            cid = os.urandom(32).hex()              # (the secrets module costs 4 ms to import)
            rec = ContainerRecord(id=cid, name=name, image=image, command=command,
                                  created=time.time(), **fields)
            self.container_dir(cid).mkdir(mode=0o700)
            self.save(rec)
            (names / name).write_text(cid)          # after the record: a crash leaves no claim
            for hook in CREATED:                # recovery.py: this root is now checked after a reboot
                hook(self)
        record_event(self, "create", rec)
        return rec

    def save(self, rec: ContainerRecord) -> None:
        """Write state.json atomically (write a temp file, then rename over the old one).
        The temp file is per process: two writers must not share (and truncate) one."""
        path = self.container_dir(rec.id) / "state.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(rec), indent=1))
        os.replace(tmp, path)

    def update(self, cid: str, **changes) -> ContainerRecord | None:
        """Read-modify-write one record under the lock (stop, pause, the supervisor's exit
        record): a change made by another process in between is never lost. None if gone."""
        with self.locked():
            rec = self.load(cid)
            if rec is None:
                return None
            for key, value in changes.items():
                setattr(rec, key, value)
            self.save(rec)
        return rec

    def load(self, cid: str) -> ContainerRecord | None:
        try:
            data = json.loads((self.container_dir(cid) / "state.json").read_text())
        except (OSError, ValueError):
            return None
        known = {f.name for f in fields(ContainerRecord)}       # a field from another version
        return ContainerRecord(**{k: v for k, v in data.items() if k in known})   # is ignored

    def list(self) -> list[ContainerRecord]:
        if not self.dir.is_dir():
            return []
        recs = (self.load(d.name) for d in self.dir.iterdir() if not d.name.startswith("."))
        return sorted((r for r in recs if r), key=lambda r: r.created)

    def names_index(self) -> Path:
        """containers/.names/, made (from every record, once) by the first create. Under the lock."""
        names = self.dir / ".names"
        if not names.is_dir():
            tmp = self.dir / f".names.tmp{os.getpid()}"
            tmp.mkdir(mode=0o700, exist_ok=True)
            for rec in self.list():
                (tmp / rec.name).write_text(rec.id)
            os.rename(tmp, names)
        return names

    def rename_claim(self, rec: ContainerRecord, old: str) -> None:
        """`rename`: REC now holds its new name and no longer OLD. Under the lock."""
        names = self.names_index()
        (names / rec.name).write_text(rec.id)
        try:
            if (names / old).read_text() == rec.id:
                (names / old).unlink()
        except OSError:
            pass

    def holder(self, name: str) -> ContainerRecord | None:
        """The record that holds NAME (the index says who; its record must agree: a claim
        whose container is gone — removed by gc, a crash — is stale)."""
        try:
            cid = (self.dir / ".names" / name).read_text()
        except (OSError, ValueError):
            return None
        rec = self.load(cid) if _is_id(cid) else None
        return rec if rec is not None and rec.name == name else None

    def find(self, ref: str) -> ContainerRecord:
        """A container by full ID, unique ID prefix or name — as Docker accepts them. A name
        or a full ID is one lookup; only a prefix reads every record."""
        if "/" not in ref and ref not in ("", ".", ".."):
            rec = self.holder(ref) or (self.load(ref) if _is_id(ref) else None)
            if rec is not None:
                return rec
        recs = self.list()
        for r in recs:
            if r.id == ref or r.name == ref:
                return r
        matches = [r for r in recs if r.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ContainerError(f"the ID prefix {ref!r} matches {len(matches)} containers: "
                                 "give more characters")
        raise ContainerError(f"no such container: {ref} (see `minicontainer ps -a`)")

    def delete(self, rec: ContainerRecord) -> None:
        """Under the lock the directory is renamed away (one atomic step: no reader or
        update() ever sees half a record); the files are removed after, outside it."""
        import shutil
        gone = self.dir / f".removing-{rec.id}-{os.getpid()}"
        with self.locked():
            try:
                os.rename(self.container_dir(rec.id), gone)
            except FileNotFoundError:
                return
            claim = self.dir / ".names" / rec.name
            try:
                if claim.read_text() == rec.id:
                    claim.unlink()                  # the name is free again
            except OSError:
                pass
        record_event(self, "destroy", rec)
        shutil.rmtree(gone, ignore_errors=True)
        if gone.exists() and os.geteuid() != 0:      # rootless: files of the container's other
            from .userns import remove_tree          # users (subordinate uids) need its map
            remove_tree(gone)


def open_store(root: str | os.PathLike | None = None) -> StateStore:
    """The records of the state root `root` (see state_root for the default)."""
    return StateStore(state_root(root))


def write_cidfile(path: str | None, cid: str) -> None:
    """--cidfile: the full ID, written once the record exists; never over an existing file."""
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(f"the container ID file {path} exists: remove it or choose another "
                          "--cidfile") from None
    except OSError as e:
        raise ConfigError(f"--cidfile {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(cid)


def validate_name(name: str) -> None:
    import re
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) or len(name) > 128:
        raise ConfigError(f"invalid container name {name!r}: use letters, digits, '_', '.' "
                          "and '-', starting with a letter or digit")


def _free_name(taken) -> str:
    """A random adjective_scientist name for which taken(name) is false."""
    while True:
        a, b, c = os.urandom(3)
        name = f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[b % len(_NOUNS)]}"
        if not taken(name):
            return name
        name += f"_{c}"
        if not taken(name):
            return name


def _is_id(text: str) -> bool:
    """64 lowercase hex digits: a full container ID."""
    return len(text) == 64 and all(ch in "0123456789abcdef" for ch in text)
