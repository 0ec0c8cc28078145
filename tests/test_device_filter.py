"""cgroups/device_filter.py and kernel/bpf.py: the device rules as an eBPF program.

The program is pure data, checked here instruction by instruction's effect: loaded into the
kernel (the verifier accepts it), attached to a cgroup-v2 group, and judged by what a process in
that group can open. A cgroup-v2 directory works on this machine's hybrid layout too: the kernel
runs a group's device programs whichever hierarchy holds the other controllers (on the VM
stage's pure v2 the OCI test covers it end to end).
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from minicontainer.cgroups.device_filter import compile_rules, effective_rules

DENY_ALL = (False, "a", -1, -1, "rwm")


def test_a_rule_for_every_device_resets_the_list_as_v1_does():
    allow_null = (True, "c", 1, 3, "rwm")
    assert effective_rules([allow_null, DENY_ALL, (True, "c", 240, 1, "r")]) == \
        (False, [(True, "c", 240, 1, "r")])
    assert effective_rules([allow_null]) == (True, [allow_null])      # nothing said: allow-all
    assert len(compile_rules([DENY_ALL])) == 8 * 8                     # loads, return 0, exit


def cgroup2_dir() -> Path | None:
    """Where cgroup2 is mounted: /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup (pure v2)."""
    mounts = {line.split()[1]: line.split()[2] for line in Path("/proc/self/mounts").read_text().splitlines()}
    for path in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if mounts.get(path) == "cgroup2":
            return Path(path)
    return None


@pytest.mark.root
def test_the_program_decides_what_a_process_in_the_group_may_open(tmp_path):
    from minicontainer.cgroups.device_filter import attach_device_filter
    base = cgroup2_dir()
    if base is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    group = base / f"{os.environ['MINICONTAINER_CGROUP_PARENT']}-bpf"
    group.mkdir()
    try:
        attach_device_filter(str(group), [DENY_ALL, (True, "c", 240, 1, "rw"), (True, "c", 1, 3, "r"),
                                          (False, "c", 1, 3, "w"), (True, "c", -1, -1, "m")])
        for name, minor in (("denied", 0), ("allowed", 1)):
            os.mknod(tmp_path / name, 0o600 | stat.S_IFCHR, os.makedev(240, minor))
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        results = in_group(group, tmp_path)
    finally:
        group.rmdir()
    assert results == {"denied": errno.EPERM, "allowed": errno.ENXIO, "null r": 0,
                       "null w": errno.EPERM, "mknod c": 0, "mknod b": errno.EPERM}, results


def in_group(group: Path, where: Path) -> dict:
    """Fork a child into the group; it tries each open/mknod and reports the errno (0: it worked)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        (group / "cgroup.procs").write_text(str(os.getpid()))
        out = {}
        for key, call in (("denied", lambda: os.close(os.open(where / "denied", os.O_RDONLY))),
                          ("allowed", lambda: os.close(os.open(where / "allowed", os.O_RDWR))),
                          ("null r", lambda: os.close(os.open(where / "null", os.O_RDONLY))),
                          ("null w", lambda: os.close(os.open(where / "null", os.O_WRONLY))),
                          ("mknod c", lambda: os.mknod(where / "c", stat.S_IFCHR, os.makedev(7, 7))),
                          ("mknod b", lambda: os.mknod(where / "b", stat.S_IFBLK, os.makedev(7, 7)))):
            try:
                call()
                out[key] = 0
            except OSError as e:
                out[key] = e.errno
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        said = f.read()
    os.waitpid(pid, 0)
    return json.loads(said)
