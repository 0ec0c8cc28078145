"""`minicontainer run`: the verb's body, and a fast lane that parses its argv without typer.

Why a fast lane: importing typer and click costs ~27 ms, a quarter of a whole
`minicontainer run --rm busybox true`, and `run` is the verb students time against docker.
parse_run_args() knows only run's options (RUN_OPTIONS below, the one declaration of them:
cli/commands.py builds typer's `run` from it; tests/test_cli_fastlane.py parses the same argv
both ways). It returns None for anything it does not fully understand —
--help, an unknown option, a missing value, no IMAGE — and typer then parses that argv and
prints its usual message: one behaviour, two parsers, the slow one the reference.

The grammar is click's: options before IMAGE, everything after IMAGE is the command;
`--name=x` or `--name x`; short flags cluster (`-it`), and a short option that takes a value
takes the rest of its word or the next word (`-eA=1`, `-e A=1`, `-ite A=1`); `--` ends options.
"""
from __future__ import annotations

import os
import sys

from .exits import fail

# run's options, declared once: (option strings, parameter, kind, help). cli/commands.py builds
# typer's `run` from this table, the fast lane parses with it. kind: "flag" is True when given,
# "value" keeps the last value, "list" collects every value. Defaults: None, False or [] unless
# DEFAULTS names one. The order is `run --help`'s.
RUN_OPTIONS = (
    (("--rm",), "rm", "flag", "Remove the container when it exits."),
    (("--name",), "name", "value", "A name for the container."),
    (("--hostname", "-h"), "hostname", "value", "Hostname inside (default: short ID)."),
    (("--env", "-e"), "env", "list", "Set KEY=VALUE (or KEY to copy yours)."),
    (("--workdir", "-w"), "workdir", "value", "Working directory inside."),
    (("--user", "-u"), "user", "value", "UID[:GID] or NAME[:GROUP] inside."),
    (("--read-only",), "read_only", "flag", "Mount the container's / read-only."),
    (("--interactive", "-i"), "interactive", "flag", "Keep stdin attached."),
    (("--tty", "-t"), "tty", "flag", "Allocate a pseudo-terminal."),
    (("--detach", "-d"), "detach", "flag", "Run in the background; print the ID."),
    (("--attach", "-a"), "attach", "list", "Attach only STDIN, STDOUT or STDERR (default: the output)."),
    (("--sig-proxy",), "sig_proxy", "value", "true (default): signals to the CLI go to the container; "
                                              "--sig-proxy=false: Ctrl-C leaves it running."),
    (("--init",), "init", "flag", "Run a tiny init as PID 1 (reaps, forwards signals)."),
    (("--restart",), "restart", "value", "no, on-failure[:N], always or unless-stopped (with -d)."),
    (("--isolation",), "isolation", "value", "pivot_root (default) or chroot (escapable; for labs)."),
    (("--explain",), "explain", "flag", "Narrate every step: syscall, shell, man page."),
    (("--net", "--network"), "net", "value",
     "bridge (default), none, host, a network's name, or container:NAME."),
    (("--publish", "-p"), "publish", "list", "[HOST_IP:][HOST_PORT:]CTR_PORT[/tcp|udp]"),
    (("--publish-all", "-P"), "publish_all", "flag", "Publish every exposed port on a random host port."),
    (("--expose",), "expose", "list", "Expose a port or a range (PORT[/PROTO]) without publishing it."),
    (("--memory", "-m"), "memory", "value", "Memory limit, e.g. 64m."),
    (("--memory-swap",), "memory_swap", "value", "Memory+swap limit (-1: unlimited)."),
    (("--pids-limit",), "pids_limit", "value", "Maximum number of processes."),
    (("--cpus",), "cpus", "value", "CPU quota in CPUs, e.g. 0.5."),
    (("--cpu-shares",), "cpu_shares", "value", "Relative CPU weight (default 1024)."),
    (("--cpuset-cpus",), "cpuset_cpus", "value", "CPUs allowed, e.g. 0-1 or 1."),
    (("--cap-add",), "cap_add", "list", "Add a capability (e.g. NET_ADMIN)."),
    (("--cap-drop",), "cap_drop", "list", "Drop a capability (ALL for all)."),
    (("--privileged",), "privileged", "flag", "All capabilities, no seccomp, no masks."),
    (("--security-opt",), "security_opt", "list", "seccomp=unconfined|PROFILE.json, no-new-privileges=false, …"),
    (("--volume", "-v"), "volume", "list", "HOST_DIR:CTR_DIR[:ro] or VOLUME_NAME:CTR_DIR[:ro]."),
    (("--tmpfs",), "tmpfs", "list", "CTR_DIR[:size=64m,mode=1777]: a tmpfs mount."),
    (("--mount",), "mount", "list", "type=bind|volume|tmpfs,source=…,target=…[,readonly]"),
    (("--storage-opt",), "storage_opt", "list", "size=N: limit the writable layer (e.g. size=1g)."),
    (("--pod",), "pod", "value", "Join pod NAME: its network, hostname and cgroup."),
    (("--label", "-l"), "label", "list", "Set a label KEY=VALUE (see ps --filter label=)."),
    (("--env-file",), "env_file", "list", "Read KEY=VALUE lines from a file."),
    (("--entrypoint",), "entrypoint", "value", "Replace the image's ENTRYPOINT (\"\" clears it)."),
    (("--cidfile",), "cidfile", "value", "Write the container's ID to this file."),
    (("--stop-signal",), "stop_signal", "value", "Signal `stop` sends first (default TERM)."),
    (("--stop-timeout",), "stop_timeout", "value", "Seconds `stop` waits before SIGKILL (default 10)."),
    (("--add-host",), "add_host", "list", "NAME:IP: a line in the container's /etc/hosts."),
    (("--dns",), "dns", "list", "A name server for /etc/resolv.conf (replaces the host's)."),
    (("--dns-search",), "dns_search", "list", "A search domain for /etc/resolv.conf."),
    (("--platform",), "platform", "value", "linux/ARCH: only this machine's is possible."),
    (("--pull",), "pull", "value", "never or missing (there is no registry)."),
    (("--ulimit",), "ulimit", "list", "TYPE=SOFT[:HARD], e.g. nofile=1024:2048 (-1: unlimited)."),
    (("--sysctl",), "sysctl", "list", "KEY=VALUE of a namespaced sysctl (net.*, kernel.shm* …)."),
    (("--pid",), "pid", "value", "host, or container:NAME: share that PID namespace."),
    (("--ipc",), "ipc", "value", "host, private, shareable or container:NAME."),
    (("--uts",), "uts", "value", "host: the host's hostname (no UTS namespace)."),
    (("--oom-score-adj",), "oom_score_adj", "value", "-1000 (never) … 1000 (first) for the OOM killer."),
    (("--group-add",), "group_add", "list", "A supplementary group ID."),
    (("--shm-size",), "shm_size", "value", "Size of /dev/shm, e.g. 128m (default 64m)."),
    (("--device",), "device", "list", "HOST[:CONTAINER][:PERMS]: a host device inside (PERMS of rwm)."),
    (("--cgroup-parent",), "cgroup_parent", "value", "The group to make the container's cgroup in "
                                                       "(/A/B from the root; A/B below minicontainer/)."),
    (("--health-cmd",), "health_cmd", "value", "A command run inside to check health (exit 0: healthy)."),
    (("--health-interval",), "health_interval", "value", "Time between checks, e.g. 30s (the default)."),
    (("--health-timeout",), "health_timeout", "value", "A check running longer fails (default 30s)."),
    (("--health-start-period",), "health_start_period", "value", "Failures before this do not count (default 0s)."),
    (("--health-retries",), "health_retries", "value", "Failures in a row that make it unhealthy (default 3)."),
    (("--no-healthcheck",), "no_healthcheck", "flag", "Disable the image's HEALTHCHECK."),
    (("--memory-reservation",), "memory_reservation", "value", "A soft memory limit, e.g. 32m."),
    (("--cpu-period",), "cpu_period", "value", "CFS period in microseconds (1000-1000000)."),
    (("--cpu-quota",), "cpu_quota", "value", "CFS quota in microseconds per period (-1: none)."),
)
DEFAULTS = {"restart": "no", "isolation": "pivot_root", "net": "bridge", "pull": "missing",
            "sig_proxy": "true"}
OPTIONS = {opt: (param, kind) for opts, param, kind, _ in RUN_OPTIONS for opt in opts}
LIMITS = ("memory", "memory_swap", "pids_limit", "cpus", "cpu_shares", "cpuset_cpus",
          "memory_reservation", "cpu_period", "cpu_quota")


def default(param: str, kind: str):
    """The value a parameter has when its option is not given."""
    return [] if kind == "list" else False if kind == "flag" else DEFAULTS.get(param)


def defaults() -> dict:
    """Every parameter at the value it has when its option is not given."""
    return {param: default(param, kind) for _, param, kind, _ in RUN_OPTIONS}


def parse_run_args(args: list[str]) -> dict | None:
    """`[--root DIR] run [OPTIONS] IMAGE [COMMAND…]` → run_container's keyword arguments,
    or None when typer should parse it instead (see the module's docstring)."""
    i, root = 0, None
    while i < len(args) and args[i] != "run":              # the global options
        if args[i] == "--root" and i + 1 < len(args):
            root, i = args[i + 1], i + 2
        elif args[i].startswith("--root="):
            root, i = args[i][len("--root="):], i + 1
        else:
            return None
    values = defaults()
    i += 1
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if arg[:1] != "-" or arg == "-":                   # IMAGE: options end here
            i -= 1
            break
        if arg.startswith("--"):
            opt, eq, value = arg.partition("=")
            if opt not in OPTIONS:
                return None
            param, kind = OPTIONS[opt]
            if kind == "flag":
                if eq and not (opt == "--explain" and value in ("full", "brief")):
                    return None                            # `--rm=x`: typer says what is wrong
                values[param] = value if eq and value == "brief" else True     # --explain=brief
                continue
            if not eq:
                if i == len(args):
                    return None
                value, i = args[i], i + 1
            store(values, param, kind, value)
            continue
        for n, letter in enumerate(arg[1:], start=1):      # -it, -eA=1, -ite A=1
            if "-" + letter not in OPTIONS:
                return None
            param, kind = OPTIONS["-" + letter]
            if kind == "flag":
                values[param] = True
                continue
            value = arg[n + 1:]
            if not value:
                if i == len(args):
                    return None
                value, i = args[i], i + 1
            store(values, param, kind, value)
            break
    if i >= len(args):
        return None                                        # no IMAGE: typer's usage message
    root = root or os.environ.get("MINICONTAINER_ROOT") or None
    return dict(values, root=root, image=args[i], command=args[i + 1:])


def store(values: dict, param: str, kind: str, value: str) -> None:
    if kind == "list":
        values[param].append(value)
    else:
        values[param] = value


def run_container(*, root, image: str, command, rm: bool, tty: bool, interactive: bool,
                  detach: bool, volume, create: bool = False, **options) -> int:
    """The verb itself, for both parsers: build the Container, run it, return its status.
    create=True (`minicontainer create`, the same options): only make it, print its ID."""
    from ..api import Container
    streams, sig_proxy = attach_options(options.pop("attach", None) or [], options.pop("sig_proxy", "true"),
                                        detach, interactive, create)
    limits = {k: options.pop(k) for k in LIMITS}
    limits = {k: v for k, v in limits.items() if v is not None}
    if tty and interactive and not detach and not create and not sys.stdin.isatty():
        fail("the input device is not a TTY: drop -t, or run from a terminal")
    if not interactive and not create and streams is None:
        stdin_from_devnull()
    container = Container(image, command, root=root, remove=rm, tty=tty,
                          interactive=interactive, detach=detach, limits=limits,
                          volumes=volume, **options)
    if create:
        print(container.create())
        return 0
    if detach:
        print(container.start())
        return 0
    if streams is not None or not sig_proxy:       # -a, --sig-proxy=false: as Docker's client,
        return run_attached(container, streams, sig_proxy, interactive)    # over a detached one
    return container.run()


STREAMS = ("stdin", "stdout", "stderr")


def attach_options(attach: list, sig_proxy: str, detach: bool, interactive: bool, create: bool):
    """-a STREAM… and --sig-proxy → (the streams to attach, or None: all, in the foreground;
    whether to pass signals on). Checked before anything exists."""
    value = str(sig_proxy).lower()
    if value not in ("true", "false", "1", "0"):
        fail(f"invalid --sig-proxy {sig_proxy!r}: use --sig-proxy=true or --sig-proxy=false")
    streams = [s.lower() for s in attach]
    if create and (streams or value in ("false", "0")):
        fail("-a and --sig-proxy are for run: attach a created container with `start -a`")
    if any(s not in STREAMS for s in streams):
        fail(f"invalid --attach {' '.join(attach)!r}: use STDIN, STDOUT or STDERR")
    if streams and detach:
        fail("conflicting options: -a and -d (a detached container is attached with `attach`)")
    if "stdin" in streams and not interactive:
        fail("-a stdin needs -i: stdin is kept open only with -i")
    if interactive and value in ("false", "0"):
        fail("-i with --sig-proxy=false is not supported: your stdin's end would not close the "
             "container's; use `run -d -i` and `attach`")
    return (streams or None), value in ("true", "1")


def run_attached(container, streams, sig_proxy: bool, interactive: bool) -> int:
    """Start the container detached (under its supervisor) and attach to it as `attach` does,
    from its first line: only the chosen streams (-a), stdin with -i, signals passed on only
    with --sig-proxy — with --sig-proxy=false, Ctrl-C ends this command and the container
    keeps running, as with Docker's client."""
    from ..api import attach_container
    container.config.detach = True
    interactive_stdin = interactive and (streams is None or "stdin" in streams)
    cid = container.start()
    shown = tuple(s for s in ("stdout", "stderr") if streams is None or s in streams)
    try:
        return attach_container(cid, emit, sig_proxy=sig_proxy, stdin=interactive_stdin,
                                streams=shown, from_start=True, root=container.store.root)
    except KeyboardInterrupt:
        return 130
    except Exception:                           # not attached: it must not run on unseen
        from ..api import remove_container
        try:
            remove_container(cid, force=True, root=container.store.root)
        except Exception as e:                  # the attach error stays the one raised; this
            print(f"minicontainer: could not remove {cid[:12]}: {e}", file=sys.stderr)   # one is said
        raise


def emit(_ts: str, stream: str, text: bytes) -> None:
    """Write one log entry where `attach` and `run -a` show it: stdout or stderr."""
    out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
    out.write(text)
    out.flush()


def stdin_from_devnull() -> None:
    """Without -i the container reads EOF from stdin, as with `docker run` (no -i)."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
