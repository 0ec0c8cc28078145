"""seccomp: the compiler (checked by running its BPF in evaluate(), for both architectures) and
the real thing: each blocked call tried with harmless arguments in a filtered child, next to an
unfiltered control child, so the errno proves it was the filter and not a missing capability."""
from __future__ import annotations

import errno
import itertools
import json
import os
import socket
import tempfile
from pathlib import Path

import pytest

from minicontainer import seccomp_default, security
from minicontainer.errors import ConfigError
from minicontainer.kernel import seccomp, syscall_table
from minicontainer.kernel.seccomp import RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, evaluate
from security_child import ChildError, in_child, own_status, syscall

REPO = Path(__file__).resolve().parent.parent
DEFAULT = seccomp_default.DEFAULT_SECCOMP_PROFILE
CAPS = security.DEFAULT_CAPABILITIES
EPERM, ENOSYS = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS
CLONE_NEWUSER, CLONE_NEWNS, CLONE_FS = 0x10000000, 0x00020000, 0x00000200
root = pytest.mark.root


# ── the compiler, through the BPF interpreter ─────────────────────────────────────────────

@pytest.fixture(scope="module", params=["x86_64", "aarch64"])
def default_filter(request):
    return seccomp.compile_profile(DEFAULT, CAPS, request.param)


def test_default_filter_is_small(default_filter):
    assert 100 < len(default_filter) < 400          # a binary search, not 350 comparisons in a row


def test_names_this_architecture_lacks_are_skipped(default_filter):
    # Docker's profile also names 32-bit calls (chown32, …): no number here, so skipped, as Docker does.
    unknown = set(default_filter.unknown_names)
    assert {"chown32", "socketcall", "_llseek"} <= unknown
    assert not unknown & {"read", "write", "openat", "execve", "getpid", "clone", "mmap", "exit_group"}
    assert not unknown & set(syscall_table.BY_ARCH[default_filter.arch])


def test_every_call_gets_the_decision_the_profile_describes(default_filter):
    table = syscall_table.BY_ARCH[default_filter.arch]
    for name, nr in table.items():
        leaf = default_filter.leaves[name]
        if not leaf.rules:                           # argument rules are tested below
            assert evaluate(default_filter.program, nr, arch=default_filter.arch) == leaf.fallback, name


def test_docker_semantics_by_name(default_filter):
    d = default_filter.describe
    assert d("getpid") == d("read") == d("ptrace") == d("chroot") == "ALLOW"
    for name in ("keyctl", "add_key", "request_key", "bpf", "mount", "umount2", "unshare", "setns",
                 "pivot_root", "kexec_load", "kexec_file_load", "init_module", "finit_module",
                 "delete_module", "reboot", "swapon", "swapoff", "acct", "settimeofday",
                 "clock_settime", "open_by_handle_at", "perf_event_open", "userfaultfd",
                 "io_uring_setup", "io_uring_enter", "io_uring_register", "syslog", "vhangup"):
        assert d(name) == "ERRNO(EPERM)", name
    assert d("clone3") == "ERRNO(ENOSYS)"
    assert d("clone") == "ALLOW if arg0 & 0x7e020000 == 0x0; else ERRNO(EPERM)"
    assert d("socket") == "ALLOW if arg0 != 0x28; else ERRNO(EPERM)"


def test_clone_flags_and_personality_are_checked(default_filter):
    prog, arch = default_filter.program, default_filter.arch
    clone = syscall_table.BY_ARCH[arch]["clone"]
    assert evaluate(prog, clone, [0x01200011], arch) == RET_ALLOW            # what fork() passes
    assert evaluate(prog, clone, [0x003D0F00], arch) == RET_ALLOW            # what pthread_create passes
    for flag in (CLONE_NEWUSER, CLONE_NEWNS, 0x40000000, 0x20000000, 0x02000000):
        assert evaluate(prog, clone, [0x01200011 | flag], arch) == EPERM
    personality = syscall_table.BY_ARCH[arch]["personality"]
    assert evaluate(prog, personality, [0xFFFFFFFF], arch) == RET_ALLOW      # query
    assert evaluate(prog, personality, [0x0040000], arch) == EPERM           # ADDR_NO_RANDOMIZE


def test_cap_sys_admin_unlocks_what_docker_unlocks():
    f = seccomp.compile_profile(DEFAULT, CAPS + ("CAP_SYS_ADMIN",), "x86_64")
    for name in ("mount", "umount2", "unshare", "setns", "bpf", "clone", "clone3", "sethostname"):
        assert f.describe(name) == "ALLOW", name
    for name in ("pivot_root", "keyctl", "kexec_load", "init_module", "reboot"):
        assert f.describe(name) == "ERRNO(EPERM)", name


def test_foreign_architectures_and_x32_are_killed(default_filter):
    prog = default_filter.program
    for arch in (0x40000003, 0x40000028, 0xC00000F3):        # i386, arm, riscv64
        assert evaluate(prog, 39, [], arch) == RET_KILL_PROCESS
    if default_filter.arch == "x86_64":
        assert evaluate(prog, 0x40000000 + 39, [], "x86_64") == RET_KILL_PROCESS
    assert evaluate(prog, 0xFFFFFFFF, [], default_filter.arch) == ENOSYS    # nr -1 is not x32


def test_calls_newer_than_the_profile_get_enosys(default_filter):
    highest = syscall_table.BY_ARCH[default_filter.arch]["removexattrat"]   # newest name in Docker's list
    assert evaluate(default_filter.program, highest, [], default_filter.arch) == RET_ALLOW
    for nr in (highest + 1, 468, 500, 1000):
        assert evaluate(default_filter.program, nr, [], default_filter.arch) == ENOSYS


def test_a_profile_that_allows_by_default_allows_new_calls_too():
    f = seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}, [], "x86_64")
    assert evaluate(f.program, 165, []) == EPERM and evaluate(f.program, 1000, []) == RET_ALLOW


PROBES = [0, 1, 4, 5, 6, 0xFFFFFFFE, 0xFFFFFFFF, 2**32, 2**32 + 4, 2**32 + 5, 2**32 + 6,
          2**63, 2**64 - 2, 2**64 - 1]
PYTHON_OPS = {"SCMP_CMP_EQ": lambda a, v, _: a == v, "SCMP_CMP_NE": lambda a, v, _: a != v,
              "SCMP_CMP_LT": lambda a, v, _: a < v, "SCMP_CMP_LE": lambda a, v, _: a <= v,
              "SCMP_CMP_GT": lambda a, v, _: a > v, "SCMP_CMP_GE": lambda a, v, _: a >= v,
              "SCMP_CMP_MASKED_EQ": lambda a, v, w: a & v == w}


@pytest.mark.parametrize("op", sorted(PYTHON_OPS))
def test_64_bit_argument_comparisons(op):
    """Every comparison, done 32 bits at a time in BPF, agrees with Python's 64-bit one."""
    for value, value_two in itertools.product([0, 5, 0xFFFFFFFF, 2**32 + 5, 2**64 - 1], [0, 4, 2**32 + 4]):
        if op != "SCMP_CMP_MASKED_EQ" and value_two:
            continue
        profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{
            "names": ["lseek"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]}
        prog = seccomp.compile_profile(profile, [], "x86_64").program
        for arg in PROBES:
            expected = RET_ALLOW if PYTHON_OPS[op](arg, value, value_two) else EPERM
            assert evaluate(prog, 8, [3, arg]) == expected, (op, hex(value), hex(value_two), hex(arg))


def test_conditions_on_different_arguments_are_anded_on_the_same_argument_ored():
    args_and = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]
    args_or = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    for args, cases in ((args_and, {(1, 2): RET_ALLOW, (1, 3): EPERM, (2, 2): EPERM}),
                        (args_or, {(1, 0): RET_ALLOW, (2, 0): RET_ALLOW, (3, 0): EPERM})):
        prog = seccomp.compile_profile({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["lseek"], "action": "SCMP_ACT_ALLOW", "args": args}]}, [], "x86_64").program
        for a, expected in cases.items():
            assert evaluate(prog, 8, list(a)) == expected, (args, a)


def test_disassembly_reads_like_the_kernel_docs(default_filter):
    text = seccomp.disassemble(default_filter.program)
    assert text.splitlines()[0].endswith("ld   [4]  ; arch") and "ret  KILL_PROCESS" in text


# ── bad profiles ──────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("profile, message", [
    ({"syscalls": []}, "defaultAction is missing"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY is not supported: .*listener"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_TRACE"}]},
     r"syscalls\[0\]: SCMP_ACT_TRACE is not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}, "listenerPath not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}, "flags not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
      "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}, r"args\[0\]: index 6 must be 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
      "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_BETWEEN"}]}]}, "unknown op 'SCMP_CMP_BETWEEN'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
      "errnoRet": 5000}]}, "errnoRet 5000 must be an errno number"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
      "arg": []}]}, r"syscalls\[0\]: arg not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                                                      {"names": ["read"], "action": "SCMP_ACT_KILL"}]},
     "read has conflicting actions"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]},
     "names must be a non-empty list"),
])
def test_bad_profiles_are_config_errors(profile, message):
    with pytest.raises(ConfigError, match=message):
        seccomp.compile_profile(profile, [], "x86_64")


def test_profile_files_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  oops\n}')
    with pytest.raises(ConfigError, match=r"broken.json is not valid JSON: .* at line 3 column 3"):
        security.resolve(security_opt=[f"seccomp={broken}"])
    with pytest.raises(ConfigError, match=r"seccomp profile .*missing.json not found.*seccomp=unconfined"):
        security.resolve(security_opt=[f"seccomp={tmp_path / 'missing.json'}"])


def test_unsupported_machine_is_refused_clearly(monkeypatch):
    real = os.uname()                                          # a fake machine: we run on x86_64
    monkeypatch.setattr(seccomp.os, "uname", lambda: type(real)((*real[:4], "riscv64")))
    with pytest.raises(ConfigError, match="x86_64 and aarch64 only, not riscv64: use --security-opt seccomp=unconfined"):
        security.resolve()


def test_the_json_export_is_the_profile_the_code_uses():
    exported = (REPO / "docs" / "seccomp-default.json").read_text()
    assert exported == seccomp_default.default_seccomp_profile_json(), \
        "regenerate: python -c 'from minicontainer import seccomp_default; " \
        "print(seccomp_default.default_seccomp_profile_json(), end=\"\")' > docs/seccomp-default.json"
    again = seccomp.compile_profile(json.loads(exported), CAPS, "x86_64")
    assert again.program == seccomp.compile_profile(DEFAULT, CAPS, "x86_64").program


# ── the real kernel ───────────────────────────────────────────────────────────────────────

# Harmless arguments: without the filter each call fails on its arguments (EFAULT, EINVAL,
# EBADF…) even for full root; with it, it never runs. None of them changes anything.
BLOCKED = [
    ("keyctl", (9999, 0, 0, 0, 0)), ("add_key", (0, 0, 0, 0, 0)), ("request_key", (0, 0, 0, 0)),
    ("bpf", (9999, 0, 0)), ("unshare", (0xFF,)), ("setns", (-1, 0)), ("mount", (0, 0, 0, 0, 0)),
    ("umount2", (0, 0xFFFF)), ("pivot_root", (0, 0)), ("open_by_handle_at", (-1, 0, 0)),
    ("reboot", (0, 0, 0, 0)), ("swapon", (1, 0)), ("swapoff", (1,)), ("acct", (1,)),
    ("settimeofday", (1, 0)), ("clock_settime", (9999, 0)), ("perf_event_open", (0, 0, -1, -1, 0)),
    ("userfaultfd", (0xFFFF,)), ("syslog", (9999, 0, 0)), ("sethostname", (0, 9999)),
    ("set_mempolicy", (9999, 0, 0)), ("fsopen", (0, 0)), ("open_tree", (-1, 0, 0xFFFFFFFF)),
    ("fanotify_init", (0xFFFFFFFF, 0)), ("kcmp", (0, 0, 9999, 0, 0)), ("pidfd_getfd", (-1, -1, 0)),
    ("clone", (CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0)), ("clone", (CLONE_NEWNS | CLONE_FS, 0, 0, 0, 0)),
    ("personality", (0x0040000,)), ("socket", (40, 1, 0)),
]
# These may also fail with EPERM without a filter, depending on how the kernel is configured
# (lockdown, kexec_load_disabled, modules_disabled, io_uring_disabled): only the filtered errno counts.
CONFIG_DEPENDENT = [
    ("kexec_load", (0, 9999, 0, 0)), ("kexec_file_load", (-1, -1, 0, 0, 0xFFFF)),
    ("init_module", (0, 0, 0)), ("finit_module", (-1, 0, 0)), ("delete_module", (1, 0)),
    ("io_uring_setup", (0, 0)), ("io_uring_enter", (-1, 0, 0, 0, 0, 0)), ("io_uring_register", (-1, 9999, 0, 0)),
    ("iopl", (99,)), ("ioperm", (0, 0, 0)),
]


def try_calls(calls, program=None):
    """In a child that keeps every capability: install `program` (if any), try each call."""
    def run():
        if program is not None:
            import prctl
            prctl.set_no_new_privs(1)
            seccomp.install(program)
        return [syscall(name, *args)[1] for name, args in calls]
    return in_child(run)


@root
def test_blocked_calls_fail_with_eperm_because_of_the_filter():
    program = seccomp.compile_profile(DEFAULT, CAPS).program     # compiled for Docker's 14 caps…
    calls = BLOCKED + CONFIG_DEPENDENT
    filtered, control = try_calls(calls, program), try_calls(calls)   # …but run with all of them
    for (name, args), got, without in zip(calls, filtered, control):
        assert got == errno.EPERM, f"{name}{args}: {errno.errorcode.get(got, got)} with the filter"
        if (name, args) in BLOCKED:
            assert without != errno.EPERM, f"{name}{args}: EPERM even without the filter: a bad probe"


@root
def test_clone3_gets_enosys_so_libc_falls_back():
    program = seccomp.compile_profile(DEFAULT, CAPS).program
    assert try_calls([("clone3", (0, 0))], program) == [errno.ENOSYS]
    assert try_calls([("clone3", (0, 0))]) == [errno.EINVAL]


@root
def test_ordinary_calls_still_work_under_the_default_policy():
    def run():
        security.apply(security.resolve())
        r, w = os.pipe()
        written = os.write(w, b"ok")
        pid = os.fork()                       # clone(SIGCHLD|CLONE_CHILD_*): no CLONE_NEW* flag
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        a, b = socket.socketpair()                # socket(AF_UNIX): allowed
        a.sendall(b"x")
        return {"socket": b.recv(1).decode(), "pid": syscall("getpid")[0] == os.getpid(), "write": written,
                "read": os.read(r, 2).decode(), "child": os.waitstatus_to_exitcode(status),
                "uname": os.uname().sysname, "personality": syscall("personality", 0xFFFFFFFF)[1],
                "status": own_status()["Seccomp"]}
    assert in_child(run) == {"socket": "x", "pid": True, "write": 2, "read": "ok", "child": 7, "uname": "Linux",
                             "personality": 0, "status": "2"}


@root
def test_cap_add_sys_admin_allows_mount_unshare_and_clone_flags():
    def run():
        security.apply(security.resolve(cap_add=["SYS_ADMIN"]))
        return {name: errno.errorcode.get(syscall(name, *args)[1], "ok") for name, args in
                [("mount", (0, 0, 0, 0, 0)), ("unshare", (0xFF,)), ("clone3", (0, 0)),
                 ("clone", (CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0)), ("pivot_root", (0, 0)),
                 ("keyctl", (9999, 0, 0, 0, 0))]}
    # the kernel itself now rejects the bad arguments; pivot_root and keyctl stay blocked
    assert in_child(run) == {"mount": "EFAULT", "unshare": "EINVAL", "clone3": "EINVAL",
                             "clone": "EINVAL", "pivot_root": "EPERM", "keyctl": "EPERM"}


@root
def test_a_docker_format_profile_file(tmp_path):
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EOPNOTSUPP},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EFBIG,
             "args": [{"index": 1, "value": 2**32, "op": "SCMP_CMP_GE"}]},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        ]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    policy = security.resolve(security_opt=[f"seccomp={path}"])
    assert policy.seccomp_source == str(path)

    def run():
        fd = os.open(tempfile.mkdtemp(), os.O_RDONLY)
        security.apply(policy)
        out = {"getppid": syscall("getppid")[1], "uname_null": syscall("uname", 0)[1],
               "lseek_small": syscall("lseek", fd, 5, 0), "lseek_big": syscall("lseek", fd, 2**33, 0)[1]}
        try:
            os.mkdir("/tmp/mc-never-created")
        except OSError as e:
            out["mkdir"] = e.errno
        out["uname"] = os.uname().sysname                  # uname(buf) is still allowed
        return out
    got = in_child(run)
    assert got["getppid"] == errno.EOPNOTSUPP and got["uname_null"] == errno.EPERM
    assert got["lseek_small"] == [5, 0] and got["lseek_big"] == errno.EFBIG
    assert got["mkdir"] == errno.EROFS and got["uname"] == "Linux"
    assert not os.path.exists("/tmp/mc-never-created")


@root
def test_unconfined_means_no_filter():
    def run():
        security.apply(security.resolve(security_opt=["seccomp=unconfined"]))
        return own_status()["Seccomp"], syscall("keyctl", 9999, 0, 0, 0, 0)[1]
    assert in_child(run) == ["0", errno.EOPNOTSUPP]


@root
def test_install_errors_name_the_call():
    def run():
        seccomp.install(b"\x06\x00\x00\x00\x00\x00\xff\x7f" + b"\x99" * 8)   # ret ALLOW; a bad opcode
    with pytest.raises(ChildError, match=r"prctl\('PR_SET_SECCOMP'.*EINVAL"):
        in_child(run)


def test_the_blocked_list_in_the_docs_matches_the_filter():
    import re
    text = (REPO / "docs" / "security.md").read_text()
    section = text.split("<!-- blocked-syscalls -->")[1].split("<!-- /blocked-syscalls -->")[0]
    table = syscall_table.BY_ARCH["x86_64"]
    documented = {name for name in re.findall(r"`([a-z_0-9]+)`", section) if name in table}
    f = seccomp.compile_profile(DEFAULT, CAPS, "x86_64")
    blocked = {name for name in table if f.describe(name) != "ALLOW"}
    assert documented == blocked, {"missing from docs/security.md": sorted(blocked - documented),
                                   "documented but allowed": sorted(documented - blocked)}
