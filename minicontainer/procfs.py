"""/proc: what the kernel says about a process — its mounts, its PID namespace, its state.

    man 5 proc (/proc/PID/{stat,status,cmdline,mountinfo,ns/*}), man 7 pid_namespaces
    shell: cat /proc/PID/mountinfo; readlink /proc/PID/ns/pid; ps -o pid,ppid,stat,time,cmd

The one reader of /proc for the package: `inspect` and `top` (inspection.py), `gc` (gc.py),
the cgroup layout (cgroups/layout.py: where cgroupfs is mounted), the run sequence (a PID's
start time), OCI delete (oci/control.py) and volume migrate (storage/migrate.py). Every reader
returns an empty answer for a process that has exited meanwhile: a PID is only a snapshot,
and /proc/PID vanishes with its process.

    mountinfo_lines(pid)   the mount table, one entry a line: "36 35 98:0 /mnt1 /mnt2 rw … - ext3 …"
    mountinfo_text(pid)    the same, the kernel's octal escapes decoded (for searching a path)
    read_mounts(pid)       parsed: Destination, Type, Source, Options, Root (`inspect`)
    processes_with_mounts_of(path)   every PID whose mount table names `path` (gc's orphans)
    in_my_mount_namespace(pid)       does `pid` share this process's mount namespace?
    pid_namespace_members(pid)       the PIDs in `pid`'s PID namespace (`top` without a cgroup)
    describe_process(pid)            one row of `top`: UID, PID, PPID, NSPID, STAT, TIME, CMD
    proc_start_time(pid), is_alive(pid, start)   is PID still the process we started?
"""
from __future__ import annotations

import os
import re
import time

OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def is_alive(pid: int, start: int) -> bool:
    """True if `pid` is still the process we started (same PID *and* same start time) and
    has not exited (a zombie, state Z in /proc/PID/stat, waits only to be reaped)."""
    if pid <= 0 or proc_start_time(pid) != start:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] != b"Z"


def unescape(text: str) -> str:
    """The kernel writes a space in a mountinfo path as \\040, a tab \\011, a backslash \\134."""
    return OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text) if "\\" in text else text


def mountinfo_lines(pid) -> list[str]:
    """/proc/PID/mountinfo as it is (escapes and all); [] if the process is gone."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return f.read().splitlines()
    except OSError:
        return []


def mountinfo_text(pid) -> str:
    """/proc/PID/mountinfo with the escapes decoded, for `path in text`; "" if it is gone."""
    return unescape("\n".join(mountinfo_lines(pid)))


def read_mounts(pid) -> list[dict]:
    """The mount table as PID sees it. A line is split first and each field decoded after,
    so a path with a space in it stays one field."""
    mounts = []
    for line in mountinfo_lines(pid):
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 6 and len(rest) >= 2:
            mounts.append({"Destination": unescape(fields[4]), "Type": rest[0],
                           "Source": unescape(rest[1]), "Options": fields[5],
                           "Root": unescape(fields[3])})
    return mounts


def processes_with_mounts_of(path: str) -> list[int]:
    """The PIDs whose mount table names `path` (a mount on it, under it, or an overlay with
    its upperdir there)."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))
            if path in mountinfo_text(pid)]


def in_my_mount_namespace(pid: int) -> bool:
    """Same device and inode of /proc/PID/ns/mnt as ours: the same mount namespace."""
    try:
        theirs, mine = os.stat(f"/proc/{pid}/ns/mnt"), os.stat("/proc/self/ns/mnt")
    except OSError:                                  # gone meanwhile
        return False
    return (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino)


def pid_namespace_members(pid: int) -> list[int]:
    """The processes in PID's PID namespace — those whose /proc/N/ns/pid names the same
    namespace (an exec'd process's parent, which only joined it, is not among them)."""
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
    """One row of `top` from /proc/PID/{stat,status,cmdline}; None if it exited meanwhile."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()      # after "(comm)": comm may hold spaces
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")    # utime + stime
    comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")
    return {"UID": status.get("Uid", "").split()[0], "PID": pid, "PPID": int(fields[1]),
            "NSPID": status.get("NSpid", "").split()[-1] if status.get("NSpid") else "",
            "STAT": fields[0].decode(), "TIME": time.strftime("%H:%M:%S", time.gmtime(ticks)),
            "CMD": cmdline or f"[{comm}]"}
