"""`minicontainer-oci`: runc's command line, so podman (conmon), containerd and the OCI
validation suite can drive minicontainer's run sequence.

    minicontainer-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug]
                      [--systemd-cgroup] VERB [OPTIONS] ID …
    VERB: create start run state kill delete exec pause resume ps list features spec

Any failure: one line on stderr (and, with --log-format json, a JSON line in --log, where
containerd-shim and conmon look for it), exit status 1, and nothing left behind.
argparse, not typer: runc's grammar has global options before the verb and `kill ID SIGNAL`
positionals that typer would get in the way of; and this is the start-up path conmon and
containerd-shim pay for every container (docs/performance.md). The verbs they call most
(create, run, start, state, kill, delete, pause, resume) in their usual forms are parsed by
hand (parse_fast): importing argparse alone costs more than answering `state`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

from ..errors import MinicontainerError


def parser():
    import argparse
    p = argparse.ArgumentParser(prog="minicontainer-oci", description="an OCI runtime with runc's "
                                "command line, built on minicontainer's run sequence")
    p.add_argument("--root", default=os.environ.get("MINICONTAINER_OCI_ROOT") or "/run/minicontainer-oci",
                   help="the state directory (default /run/minicontainer-oci)")
    p.add_argument("--log", help="where errors are logged (containerd and conmon read it)")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true", help="narrate every step (as --explain)")
    p.add_argument("--systemd-cgroup", action="store_true", help="refused: cgroups are managed directly")
    p.add_argument("--rootless", default="auto", help="accepted for runc compatibility (auto|true|false)")
    p.add_argument("-v", "--version", action="store_true")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")

    def verb(name, help_, *aliases):
        return verbs.add_parser(name, help=help_, aliases=list(aliases))

    for name, help_ in (("create", "set a container up; its process waits for `start`"),
                        ("run", "create + start + wait, then delete")):
        v = verb(name, help_)
        v.add_argument("-b", "--bundle", default=".")
        v.add_argument("--pid-file")
        v.add_argument("--console-socket")
        v.add_argument("--no-pivot", action="store_true", help="chroot instead of pivot_root")
        v.add_argument("--no-new-keyring", action="store_true", help="(no keyring is ever made)")
        v.add_argument("--preserve-fds", type=int, default=0, help="pass fds 3…3+N-1 to the process")
        if name == "run":
            v.add_argument("-d", "--detach", action="store_true")
            v.add_argument("--keep", action="store_true", help="do not delete it after it exits")
        v.add_argument("id")
    for name, help_ in (("start", "let a created container's process run"), ("state", "print the state JSON"),
                        ("pause", "freeze every process (cgroup freezer)"), ("resume", "thaw them")):
        verb(name, help_).add_argument("id")
    v = verb("kill", "send a signal to the container's process")
    v.add_argument("-a", "--all", action="store_true", help="to every process in its cgroup")
    v.add_argument("id")
    v.add_argument("signal", nargs="?", default="SIGTERM")
    v = verb("delete", "remove a stopped container", "rm")
    v.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")
    v.add_argument("id")
    v = verb("exec", "run a new process in a running container")
    v.add_argument("-p", "--process", help="a JSON file with the process (config.json's process)")
    v.add_argument("-d", "--detach", action="store_true")
    v.add_argument("--pid-file")
    v.add_argument("-t", "--tty", action="store_true")
    v.add_argument("--console-socket")
    v.add_argument("--cwd")
    v.add_argument("-e", "--env", action="append", default=[])
    v.add_argument("-u", "--user", help="UID[:GID]")
    v.add_argument("-g", "--additional-gids", action="append", default=[])
    v.add_argument("-c", "--cap", action="append", default=[])
    v.add_argument("--no-new-privs", action="store_true")
    v.add_argument("--preserve-fds", type=int, default=0)
    v.add_argument("id")
    v.add_argument("args", nargs=argparse.REMAINDER)
    v = verb("ps", "the processes of a container")
    v.add_argument("-f", "--format", choices=("table", "json"), default="table")
    v.add_argument("id")
    v.add_argument("ps_args", nargs=argparse.REMAINDER)
    v = verb("list", "the containers under --root", "ls")
    v.add_argument("-f", "--format", choices=("table", "json"), default="table")
    v.add_argument("-q", "--quiet", action="store_true")
    verb("features", "what this runtime supports, as JSON (as `runc features`)")
    v = verb("spec", "write a config.json to start from (as `runc spec`)")
    v.add_argument("-b", "--bundle", default=".")
    return p


# What conmon, containerd-shim and the validation suite call, in the forms they call it: parsed by
# hand (parse_fast) into the same names parser() gives. Per verb: flags, options with a value,
# positionals ("?": optional).
CREATE_FLAGS = {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}
CREATE_VALUES = {"-b": "bundle", "--bundle": "bundle", "--pid-file": "pid_file",
                 "--console-socket": "console_socket", "--preserve-fds": "preserve_fds"}
FAST_VERBS = {
    "create": (CREATE_FLAGS, CREATE_VALUES, ("id",)),
    "run": ({**CREATE_FLAGS, "-d": "detach", "--detach": "detach", "--keep": "keep"}, CREATE_VALUES, ("id",)),
    "start": ({}, {}, ("id",)), "state": ({}, {}, ("id",)),
    "pause": ({}, {}, ("id",)), "resume": ({}, {}, ("id",)),
    "kill": ({"-a": "all", "--all": "all"}, {}, ("id", "signal?")),
    "delete": ({"-f": "force", "--force": "force"}, {}, ("id",)),
}
GLOBAL_FLAGS = {"--debug": "debug", "--systemd-cgroup": "systemd_cgroup"}
GLOBAL_VALUES = {"--root": "root", "--log": "log", "--log-format": "log_format", "--rootless": "rootless"}


def parse_fast(argv: list[str]):
    """runc's grammar for the FAST_VERBS without argparse (importing it and building the parser
    costs more than answering `state`); None for anything else (help, an abbreviation, an
    unknown option, a missing ID …): argparse then parses it and words its errors."""
    args = SimpleNamespace(root=os.environ.get("MINICONTAINER_OCI_ROOT") or "/run/minicontainer-oci",
                           log=None, log_format="text", debug=False, systemd_cgroup=False,
                           rootless="auto", version=False, bundle=".", pid_file=None,
                           console_socket=None, no_pivot=False, no_new_keyring=False, preserve_fds="0",
                           detach=False, keep=False, signal="SIGTERM", all=False, force=False)
    i = take_options(argv, 0, GLOBAL_FLAGS, GLOBAL_VALUES, args)
    if i is None or i == len(argv) or argv[i] not in FAST_VERBS:
        return None
    args.verb = argv[i]
    flags, values, positionals = FAST_VERBS[args.verb]
    words: list[str] = []
    while (i := take_options(argv, i + 1, flags, values, args)) is not None \
            and i < len(argv):
        words.append(argv[i])
    required = [p for p in positionals if not p.endswith("?")]
    if i is None or not len(required) <= len(words) <= len(positionals) \
            or args.log_format not in ("text", "json") or not str(args.preserve_fds).isdigit():
        return None
    for name, word in zip(positionals, words):
        setattr(args, name.rstrip("?"), word)
    args.preserve_fds = int(args.preserve_fds)
    return args


def take_options(argv: list[str], i: int, flags: dict, values: dict, args):
    """Consume options from argv[i]; the index of the first word that is not one, or None when
    an option is unknown or lacks its value."""
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name in flags and not eq:
            setattr(args, flags[name], True)
        elif name in values and (eq or i + 1 < len(argv)):
            if not eq:
                i, value = i + 1, argv[i + 1]
            setattr(args, values[name], value)
        else:
            return None
        i += 1
    return i


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_fast(argv) or parser().parse_args(argv)
    try:
        if args.version:
            from .. import __version__
            from ..spec import OCI_VERSION
            print(f"minicontainer-oci version {__version__}\nspec: {OCI_VERSION}")
            return 0
        if not args.verb:
            parser().print_help()
            return 1
        if args.systemd_cgroup:
            raise MinicontainerError(refuse_systemd())
        if args.debug:
            os.environ.setdefault("MINICONTAINER_OCI_EXPLAIN", "1")
        return VERBS[args.verb](args) or 0
    except MinicontainerError as e:
        return fail(args, str(e))
    except OSError as e:
        return fail(args, f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
    except KeyboardInterrupt:
        return fail(args, "interrupted")
    except Exception as e:                      # a bug: still one line, still exit 1
        return fail(args, f"internal error: {e!r}")


def fail(args, message: str) -> int:
    """One line on stderr; with --log, the same as a log line (JSON with --log-format json)."""
    os.write(2, f"minicontainer-oci: {message}\n".encode(errors="replace"))
    if getattr(args, "log", None):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = (json.dumps({"level": "error", "msg": message, "time": stamp}) if args.log_format == "json"
                else f'time="{stamp}" level=error msg="{message}"')
        try:
            with open(args.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass
    return 1


def refuse_systemd() -> str:
    if not os.path.isdir("/run/systemd/system"):
        return ("--systemd-cgroup: systemd is not running on this machine, so it cannot manage the "
                "container's cgroup; drop the flag (podman: --cgroup-manager cgroupfs)")
    return ("--systemd-cgroup: minicontainer-oci manages cgroups itself, through cgroupfs; drop the "
            "flag (podman: --cgroup-manager cgroupfs; containerd: SystemdCgroup = false)")


# ── the verbs ─────────────────────────────────────────────────────────────────────────────

def do_create(args) -> None:
    from .container import create
    create(args.root, args.id, args.bundle, args.pid_file, args.console_socket, args.no_pivot,
           args.preserve_fds)


def do_run(args) -> int:
    """create (as a subreaper: we wait for PID 1 ourselves), start, wait, delete."""
    from .. import runtime
    from .container import create
    from .control import delete, start
    ctx = create(args.root, args.id, args.bundle, args.pid_file, args.console_socket, args.no_pivot,
                 args.preserve_fds, subreaper=not args.detach)
    start(args.root, args.id)
    if args.detach:
        return 0
    code = runtime.wait_for(ctx.pid)
    if not args.keep:
        delete(args.root, args.id, force=True)
    return code


def do_start(args) -> None:
    from .control import start
    start(args.root, args.id)


def do_state(args) -> None:
    from .state import OciState
    print(json.dumps(OciState.load(args.root, args.id).oci_state(), indent=2))


def do_kill(args) -> None:
    from .control import kill
    kill(args.root, args.id, args.signal, args.all)


def do_delete(args) -> None:
    from .control import delete
    from .state import OciState
    if args.force and not os.path.isdir(os.path.join(args.root, args.id)):
        OciState(args.root, args.id)           # the ID is still checked; runc -f: no error
        return
    delete(args.root, args.id, args.force)


def do_pause(args) -> None:
    from .control import pause
    pause(args.root, args.id, True)


def do_resume(args) -> None:
    from .control import pause
    pause(args.root, args.id, False)


def do_exec(args) -> int:
    from .container import exec_process
    return exec_process(args.root, args.id, exec_process_spec(args), args.detach, args.pid_file,
                        args.console_socket, args.preserve_fds)


def exec_process_spec(args):
    """--process FILE, or the command line's ARGS with --cwd/--env/--user/--cap."""
    from .config import read_process
    from .state import OciState
    if args.process:
        try:
            with open(args.process) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            raise MinicontainerError(f"--process {args.process}: {e}") from None
        return read_process(doc)
    if not args.args:
        raise MinicontainerError("exec needs a command (exec ID CMD…) or --process FILE")
    from .config import load_bundle
    base = load_bundle(OciState.load(args.root, args.id).data["bundle"])[0].process
    uid, _, gid = (args.user or f"{base.uid}:{base.gid}").partition(":")
    caps = {k: list(v) + [c if c.startswith("CAP_") else "CAP_" + c for c in args.cap]
            for k, v in base.capabilities.items()}
    doc = {"args": args.args, "env": base.env + args.env, "cwd": args.cwd or base.cwd,
           "terminal": args.tty, "user": {"uid": int(uid), "gid": int(gid or 0),
                                           "additionalGids": [int(g) for g in args.additional_gids]},
           "capabilities": caps, "noNewPrivileges": args.no_new_privs or base.no_new_privileges,
           "rlimits": [{"type": t, "soft": s, "hard": h} for t, s, h in base.rlimits]}
    return read_process(doc)


def do_ps(args) -> None:
    from .control import processes
    pids = processes(args.root, args.id)
    if args.format == "json":
        print(json.dumps(pids))
        return
    import subprocess
    if pids:
        subprocess.run(["ps", *(args.ps_args or ["-f"]), "-p", ",".join(map(str, pids))], check=False)


def do_list(args) -> None:
    from .state import list_states
    states = list_states(args.root)
    if args.quiet:
        for s in states:
            print(s.id)
        return
    rows = [{**s.oci_state(), "rootfs": s.data.get("rootfs", ""),
             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.data.get("created", 0))),
             "owner": "root" if s.data.get("owner") == 0 else str(s.data.get("owner", ""))} for s in states]
    if args.format == "json":
        print(json.dumps(rows))
        return
    print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} {'BUNDLE':<40} {'CREATED':<22} OWNER")
    for r in rows:
        print(f"{r['id']:<20} {r['pid']:<8} {r['status']:<10} {r['bundle']:<40} {r['created']:<22} {r['owner']}")


def do_features(args) -> None:
    from ..kernel.capabilities import CAPABILITIES, last_cap
    from ..kernel.seccomp import ACTIONS, OPS
    from ..spec import NAMESPACE_TYPES, OCI_VERSION
    from ..rootfs import OPTION_FLAGS, PROPAGATION
    print(json.dumps({
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                  "poststop"],
        "mountOptions": sorted({*OPTION_FLAGS, *PROPAGATION}),
        "linux": {"namespaces": list(NAMESPACE_TYPES),
                  "capabilities": [n for n, bit in CAPABILITIES.items() if bit <= last_cap()],
                  "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
                  "seccomp": {"enabled": True, "actions": sorted(ACTIONS), "operators": list(OPS),
                              "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]},
                  "apparmor": {"enabled": False}, "selinux": {"enabled": False}},
        "annotations": {"org.minicontainer.explain": "1 (stderr) or a file: narrate every step"},
    }, indent=2))


def do_spec(args) -> None:
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise MinicontainerError(f"{path} exists already: remove it first")
    with open(path, "w") as f:
        json.dump(default_config(), f, indent=2)
        f.write("\n")


def default_config() -> dict:
    """`runc spec`'s example: sh in ./rootfs, Docker's capabilities, the usual mounts."""
    from ..security import DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS
    from ..spec import OCI_VERSION
    caps = list(DEFAULT_CAPABILITIES)
    fs = ["nosuid", "noexec", "nodev"]
    return {"ociVersion": OCI_VERSION,
            "process": {"terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                        "cwd": "/", "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
                        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                        "noNewPrivileges": True},
            "root": {"path": "rootfs", "readonly": True}, "hostname": "minicontainer",
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": fs},
                       {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                       {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                       {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                        "options": fs + ["mode=1777", "size=65536k"]},
                       {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": fs},
                       {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": fs + ["ro"]},
                       {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": fs + ["relatime", "ro"]}],
            "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                      "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
                      "maskedPaths": list(MASKED_PATHS), "readonlyPaths": list(READONLY_PATHS)}}


VERBS = {"create": do_create, "run": do_run, "start": do_start, "state": do_state, "kill": do_kill,
         "delete": do_delete, "rm": do_delete, "exec": do_exec, "pause": do_pause, "resume": do_resume,
         "ps": do_ps, "list": do_list, "ls": do_list, "features": do_features, "spec": do_spec}


def entry() -> None:
    """The console script (and launcher.py's). Ends with os._exit once the output is flushed,
    as `minicontainer` does: the interpreter's shutdown costs every call several ms, and
    podman pays for at least three calls a container. The cyclic garbage collector is off: a
    call lives for one step (or one container's wait) and frees nothing worth a collection,
    while the run path's imports would trigger two dozen of them."""
    import gc
    gc.disable()
    from ..cli.exits import exit_now
    try:
        code = main()
    except SystemExit as e:                     # argparse: --help (0) or a usage error (2)
        code = e.code if isinstance(e.code, int) else 0
    exit_now(code)
