"""The policy: --security-opt and --privileged, masked and read-only paths (on a private proc
mounted in a child's own mount namespace, never the host's), closing file descriptors, and
the order in which the layers are applied."""
from __future__ import annotations

import errno
import json
import os
import tempfile

import pytest

from minicontainer import seccomp_default, security
from minicontainer.errors import ConfigError, ContainerError
from minicontainer.kernel.mount import mount
import security_child
from security_child import in_child, own_status, private_mounts

root = pytest.mark.root


# ── flags → policy ────────────────────────────────────────────────────────────────────────

def test_defaults():
    p = security.resolve()
    assert p.no_new_privs and not p.privileged and p.seccomp is not None and p.seccomp_source == "default"
    assert "/proc/kcore" in p.masked_paths and "/proc/sys" in p.readonly_paths and not p.warnings
    json.dumps(p.summary())                                   # fit for config.json


@pytest.mark.parametrize("opt, field, value", [
    ("seccomp=unconfined", "seccomp", None), ("seccomp:unconfined", "seccomp", None),
    ("no-new-privileges", "no_new_privs", True), ("no-new-privileges=false", "no_new_privs", False),
    ("no-new-privileges:false", "no_new_privs", False), ("systempaths=unconfined", "masked_paths", ()),
])
def test_security_opt_spellings(opt, field, value):
    assert getattr(security.resolve(security_opt=[opt]), field) == value


@pytest.mark.parametrize("opt, message", [
    ("apparmor=unconfined", "no AppArmor or SELinux support"),
    ("label=disable", "no AppArmor or SELinux support"),
    ("no-new-privileges=maybe", "use no-new-privileges=true or =false"),
    ("seccomp", "invalid --security-opt 'seccomp': use seccomp=unconfined"),
    ("bogus=1", "invalid --security-opt 'bogus=1'"),
])
def test_bad_security_opts(opt, message):
    with pytest.raises(ConfigError, match=message):
        security.resolve(security_opt=[opt])


def test_privileged_has_everything_and_says_so():
    p = security.resolve(privileged=True, cap_drop=["NET_RAW"])
    assert p.privileged and p.seccomp is None and p.masked_paths == () and p.readonly_paths == ()
    assert "CAP_SYS_ADMIN" in p.capabilities and "CAP_NET_RAW" in p.capabilities
    assert p.warnings[0].startswith("--privileged: ") and "ignored with --privileged" in p.warnings[1]


def test_default_profile_copy_is_independent():
    copy = seccomp_default.default_seccomp_profile()
    copy["syscalls"].clear()
    assert seccomp_default.DEFAULT_SECCOMP_PROFILE["syscalls"]


# ── masked and read-only paths ────────────────────────────────────────────────────────────

def mount_private_proc_and_sys() -> str:
    """In this (child) process only: a private mount namespace, a fresh proc and sysfs below a
    temporary directory — the container's root as runc sees it just before pivot_root."""
    private_mounts()                                     # first: nothing may propagate out
    top = tempfile.mkdtemp(prefix="mc-mask-")
    for sub in ("proc", "sys", "dev"):
        os.mkdir(os.path.join(top, sub))
    mount("proc", os.path.join(top, "proc"), "proc", 2 | 4 | 8)   # nosuid,nodev,noexec
    mount("sysfs", os.path.join(top, "sys"), "sysfs", 1 | 2 | 4 | 8)
    return top


def read_or_errno(path: str):
    try:
        with open(path, "rb") as f:
            return f.read(64).decode(errors="replace")
    except OSError as e:
        return errno.errorcode[e.errno]


def open_for_writing(path: str, create: bool = False) -> str:
    """Open (never write: it is the host's kernel) and report the errno."""
    try:
        os.close(os.open(path, os.O_WRONLY | (os.O_CREAT if create else 0)))
        return "writable"
    except OSError as e:
        return errno.errorcode[e.errno]


@root
def test_masked_and_read_only_paths_in_a_private_proc():
    def run():
        top = mount_private_proc_and_sys()
        before = {p: os.path.lexists(os.path.join(top, p.lstrip("/")))
                  for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi", "/sys/firmware",
                            "/proc/sysrq-trigger")}
        writable_before = open_for_writing(os.path.join(top, "proc/sys/kernel/hostname"))
        steps = []
        security.mask_paths(security.resolve(), lambda title, shell, man: steps.append((title, shell, man)), top)
        at = lambda p: os.path.join(top, p.lstrip("/"))          # noqa: E731
        proc_sys = os.statvfs(at("/proc/sys")).f_flag
        out = {"before": before, "steps": steps, "writable_before": writable_before,
               "keys": read_or_errno(at("/proc/keys")), "timer_list": read_or_errno(at("/proc/timer_list")),
               "keys_is_empty_file": os.stat(at("/proc/keys")).st_size == 0,
               "keys_write": open_for_writing(at("/proc/keys")),
               "dev_after": os.listdir(at("/dev")),
               "acpi": os.listdir(at("/proc/acpi")), "firmware": os.listdir(at("/sys/firmware")),
               "acpi_write": open_for_writing(at("/proc/acpi/x"), create=True) if before["/proc/acpi"] else "EROFS",
               "hostname": open_for_writing(at("/proc/sys/kernel/hostname")),
               "ostype": read_or_errno(at("/proc/sys/kernel/ostype")).strip(),
               "proc_sys_flags": [bool(proc_sys & f) for f in (os.ST_RDONLY, os.ST_NOSUID, os.ST_NODEV, os.ST_NOEXEC)],
               "cpuinfo": read_or_errno(at("/proc/cpuinfo"))[:9]}
        if before["/proc/kcore"]:
            out["kcore"] = read_or_errno(at("/proc/kcore"))
        return out
    host_flags = os.statvfs("/proc/sys").f_flag
    got = in_child(run)
    assert got["writable_before"] == "writable"                              # a fresh proc: rw
    assert got["keys"] == "" and got["timer_list"] == "" and got["keys_is_empty_file"]
    assert got["keys_write"] == "EROFS"                  # an empty read-only file: writes fail
    assert got["dev_after"] == []                        # its source is unlinked again
    assert got["kcore"] == "" if got["before"]["/proc/kcore"] else True      # absent on this kernel
    assert got["acpi"] == [] and got["firmware"] == [] and got["acpi_write"] == "EROFS"
    assert got["hostname"] == "EROFS" and got["ostype"] == "Linux"
    assert got["proc_sys_flags"] == [True, True, True, True]                # read-only, flags kept
    assert got["cpuinfo"] == "processor"                                      # the rest is untouched
    titles = [s[0] for s in got["steps"]]
    assert titles[0].startswith("hide") and titles[1] == "make the kernel's settings read-only"
    assert "mount --bind /dev/.empty /proc/keys" in got["steps"][0][1] and got["steps"][0][2] == "mount(2)"
    # and the host saw nothing of it
    assert os.statvfs("/proc/sys").f_flag == host_flags
    with open("/proc/self/mountinfo") as f:
        assert "/proc/keys" not in [line.split()[4] for line in f]


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    (tmp_path / "proc").symlink_to("/proc")                 # an image whose /proc points at the host's
    with pytest.raises(ContainerError, match=r"/proc/\w+ in the container resolves to /proc/\w+, outside its root"):
        security.mask_paths(security.resolve(), None, str(tmp_path))


# ── file descriptors ──────────────────────────────────────────────────────────────────────

def fd_state(fds):
    out = {}
    for fd in fds:
        try:
            out[fd] = "inheritable" if os.get_inheritable(fd) else "cloexec"
        except OSError:
            out[fd] = "closed"
    return out


@root
@pytest.mark.parametrize("slow", [False, True])
def test_close_fds(monkeypatch, slow):
    if slow:                                   # a fake old kernel: close_range(2) missing
        monkeypatch.setattr(security, "_close_range", lambda *a: errno.ENOSYS)

    def run(cloexec):
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(4)]
        security.close_fds(keep=(0, 1, 2, fds[1], security_child.RESULT_FD), cloexec=cloexec)
        return fd_state(fds)
    closed = in_child(run, False)
    assert list(closed.values()) == ["closed", "inheritable", "closed", "closed"]
    marked = in_child(run, True)
    assert list(marked.values()) == ["cloexec", "inheritable", "cloexec", "cloexec"]


# ── the order ─────────────────────────────────────────────────────────────────────────────

class Recorder:
    """Stands in for the run sequence's Explainer (has .step)."""
    def __init__(self):
        self.titles = []

    def step(self, title, shell="", syscall="", man="", why=""):
        assert shell and man and why
        self.titles.append(title)


@root
def test_apply_runs_the_layers_in_order():
    def run():
        top = mount_private_proc_and_sys()
        rec = Recorder()
        security.apply(security.resolve(), uid=65534, gid=65534, root=top, explain=rec)
        s = own_status()
        return rec.titles, s["NoNewPrivs"], s["Seccomp"], s["Uid"]
    titles, nnp, filtered, uid = in_child(run)
    assert [t.split()[0] for t in titles] == ["hide", "make", "forbid", "drop", "install"]
    assert "become uid 65534" in titles[3] and (nnp, filtered, uid) == ("1", "2", "65534 65534 65534 65534")


# ── the working directory ─────────────────────────────────────────────────────────────────

@root
def test_a_working_directory_outside_the_root_is_refused(tmp_path):
    """What `-w /proc/self/fd/N` reaches when N is a host directory leaked into PID 1
    (runc CVE-2024-21626): a cwd the new root cannot name. verify_workdir sees it."""
    inside, outside = tmp_path / "root", tmp_path / "host"
    inside.mkdir(), outside.mkdir()

    def run():
        fd = os.open(outside, os.O_RDONLY | os.O_DIRECTORY)    # the "leaked" descriptor
        os.chroot(inside)
        os.chdir("/")
        security.verify_workdir("/")                          # inside: accepted
        os.fchdir(fd)                                         # = chdir("/proc/self/fd/N")
        try:
            security.verify_workdir(f"/proc/self/fd/{fd}")
        except ContainerError as e:
            return str(e)
        return "accepted"
    assert "outside the container's root" in in_child(run)
