"""The supervisor: one small process per detached container (`run -d`), like Podman's conmon.

    man 2 execve, man 2 prctl (PR_SET_CHILD_SUBREAPER), man 2 waitpid, man 2 poll, man 7 pipe
    shell, roughly:  setsid sh -c 'minicontainer run … >log 2>&1; record $?' &

It waits for the container's PID 1 (so the exit status is known), copies the container's
stdout and stderr into a log file with a timestamp per line, records the exit, and applies
the --restart policy. Its life, in phases (each phase replaces the previous one with execve):

  CLI ─fork─▶ setsid, fork, exit ─▶ supervisor (still the CLI's Python, runtime loaded)
                                      prepare, start: PID 1 is our child (we are its subreaper)
  CLI ◀───────── "ok ID" / "err …" ── and its stdout/stderr are pipes to us
  prints the ID, exits              execve(python -I -S -c "…supervisor import main" watch …)  ~3 MB
                                      pipes → container.log; waitpid(PID 1)
                                    execve(python -m minicontainer.supervisor exited …)
                                      record the exit status; apply --restart:
                                        no restart → teardown (cgroup, network, --rm), exit
                                        restart    → teardown, "restarting", execve(… backoff)
                                                     sleep 0.1 s, 0.2 s, 0.4 s … ≤ 1 min,
                                                     execve(… start): prepare, start, watch

Why execve and not fork? execve swaps the memory image but keeps the PID, the children
(PID 1 stays ours to wait for), the subreaper flag and every inheritable descriptor (the log
pipes). So the phase that lasts as long as the container — watch — carries none of the
runtime: it is the bare interpreter (`-I -S`: no site, no venv) and only built-in modules.
`import signal` alone would pull in enum (~1 MB): the watch phase uses `_signal`, its C half.

The log is the CRI format that Kubernetes and Podman (k8s-file) use, one line per entry:

    2025-01-31T12:00:00.123456789Z stdout F a whole line
    2025-01-31T12:00:00.123457001Z stderr P the start of a line, continued in the next entry

This module is imported by the small phases without site: stdlib built-ins only at module
level, and no relative imports (the full phases import what they need inside functions).
"""
import os
import sys
import time

LOG_FILE = "container.log"              # in the container's directory
SUPERVISOR_LOG = "supervisor.log"       # the supervisor's own messages (its stderr)
STOPPED_MARK = "stopped"                # stop/kill/rm create it: the restart policy must not restart
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0   # seconds, as Docker
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The small phases import this module from its cached bytecode: run as a script, it would be
# compiled at every start, and the compiler's garbage costs ~1 MB that is never given back.
SMALL_BOOT = ("# minicontainer supervisor\nimport sys; sys.path[:0] = [%r]\n"
              "from minicontainer.supervisor import main; main(sys.argv[1:])" % PACKAGE_PARENT)


# ── the log format (written by watch, read by `minicontainer logs`) ───────────────────────

def timestamp() -> bytes:
    """RFC 3339 with nanoseconds, UTC: 2025-01-31T12:00:00.123456789Z."""
    ns = time.time_ns()
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9))
            + ".%09dZ" % (ns % 10**9)).encode()


def format_entries(stream: bytes, data: bytes) -> bytes:
    """One log entry per line of `data`; a last piece without newline is a partial (P)."""
    ts, out = timestamp(), []
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break
        out.append(b"%s %s %s %s\n" % (ts, stream, b"P" if last else b"F", line))
    return b"".join(out)


def parse_entry(line: bytes):
    """b'TS STREAM F|P TEXT' → (ts, stream, text with its newline restored for F), or None."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"F", b"P"):
        return None
    text = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(), parts[1].decode(), text + (b"\n" if parts[2] == b"F" else b"")


# ── phase 1: started by the CLI ───────────────────────────────────────────────────────────

def start_detached(container) -> str:
    """`run -d`: fork a supervisor for `container` (an api.Container), wait until it reports
    that PID 1 runs (→ the ID) or why it could not start (→ MinicontainerError, nothing left)."""
    from minicontainer.errors import MinicontainerError
    report_r, report_w = os.pipe()
    sys.stdout.flush(), sys.stderr.flush()          # nothing buffered may be written twice
    middle = os.fork()
    if middle == 0:                                 # the classic double fork: the supervisor
        try:                                        # is nobody's child, in its own session,
            os.close(report_r)                      # without a controlling terminal
            os.setsid()
            if os.fork() == 0:
                first_start(container, report_w)    # never returns
        finally:
            os._exit(0)
    os.close(report_w)
    os.waitpid(middle, 0)
    lines = read_report(report_r).splitlines()
    ok = [line[3:] for line in lines if line.startswith("ok ")]
    if ok:
        return ok[0]
    errors = [line[4:] for line in lines if line.startswith("err ")]
    raise MinicontainerError(errors[0] if errors else "the supervisor exited before the container "
                             "started (run `minicontainer gc` to clean up)")


def read_report(report_r: int) -> str:
    """Read the supervisor's report until end of file — or until the supervisor has died: a
    child it left behind may still hold the pipe open. A pidfd (pidfd_open(2)) becomes
    readable when its process exits, so one poll() waits for both."""
    import select
    first = b""                                     # "supervisor PID\n", written first
    while not first.endswith(b"\n"):
        byte = os.read(report_r, 1)
        if not byte:
            break
        first += byte
    data = first
    try:
        pidfd = os.pidfd_open(int(first.split()[1]))
    except (IndexError, ValueError, OSError):
        pidfd = -1                                  # it died already: the pipe says the rest
    poller = select.poll()
    poller.register(report_r, select.POLLIN)
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    while True:
        events = dict(poller.poll())
        if report_r in events:
            chunk = os.read(report_r, 4096)
            data += chunk
            if not chunk:
                break
        elif pidfd in events:
            os.set_blocking(report_r, False)
            try:
                data += os.read(report_r, 4096)
            except BlockingIOError:
                pass
            break
    os.close(report_r)
    if pidfd >= 0:
        os.close(pidfd)
    return data.decode(errors="replace")


def first_start(container, report_w: int) -> None:
    """The new supervisor, still holding the CLI's memory: run prepare and start."""
    from minicontainer import runtime
    os.write(report_w, f"supervisor {os.getpid()}\n".encode())
    from minicontainer.state import StateStore
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0), os.dup2(null, 1)              # `ID=$(minicontainer run -d …)` waits for EOF
    os.close(null)
    store = StateStore(container.store.root.absolute())
    os.chdir("/")                                   # pin no directory of the user's
    ctx = runtime.Context(container.config, store, container.explain)
    launch(ctx, report_w, streak=0)


def launch(ctx, report_w: int | None, streak: int) -> None:
    """prepare + start with the container's output going to pipes, then become the watcher.
    For a restart ctx.record is set and prepare reuses it. Never returns."""
    from minicontainer import runtime
    try:
        runtime.prepare(ctx)
    except BaseException as e:
        give_up(ctx, report_w, e)
    try:
        keep = attach_output(ctx)
        with runtime.forward_signals(ctx):
            runtime.start(ctx)
        if ctx.console is not None:
            keep["out"] = ctx.console.receive_master()
    except BaseException as e:
        runtime.teardown(ctx)
        give_up(ctx, report_w, e)
    detach_stdio(ctx)
    if report_w is not None:
        os.write(report_w, f"ok {ctx.record.id}\n".encode())
        os.close(report_w)
    exec_phase("watch", ctx.store.root, ctx.record.id, ctx.pid, keep.get("out", -1),
               keep.get("err", -1), keep.get("stdin", -1), streak, small=True, keep=keep.values())


def attach_output(ctx) -> dict:
    """Pipes for the container's stdout and stderr (a pty with -t), put on our fds 0-2 so the
    setup child and PID 1 inherit them. Returns the ends the watcher keeps."""
    keep = {}
    null = os.open("/dev/null", os.O_RDWR)
    if ctx.config.tty:
        from minicontainer.tty import Console
        ctx.console = Console(interactive=ctx.config.interactive, size=(24, 80))
        os.dup2(null, 1), os.dup2(null, 2)          # PID 1 replaces them with the pty
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        os.dup2(out_w, 1), os.dup2(err_w, 2)
        os.close(out_w), os.close(err_w)
        keep.update(out=out_r, err=err_r)
    if ctx.config.interactive and not ctx.config.tty:
        in_r, in_w = os.pipe()                      # -d -i: stdin stays open (nobody writes)
        os.dup2(in_r, 0), os.close(in_r)
        keep["stdin"] = in_w
    else:
        os.dup2(null, 0)
    os.close(null)
    return keep


def detach_stdio(ctx) -> None:
    """Our own stdin/stdout → /dev/null, stderr → supervisor.log (also closes the CLI's)."""
    null = os.open("/dev/null", os.O_RDWR)
    log = os.open(ctx.store.container_dir(ctx.record.id) / SUPERVISOR_LOG,
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(null, 0), os.dup2(null, 1), os.dup2(log, 2)
    os.close(null), os.close(log)


def give_up(ctx, report_w: int | None, error: BaseException) -> None:
    """A start failed. First start: report the one line and leave nothing behind. A restart:
    record exit 125 and stop restarting."""
    from minicontainer.errors import MinicontainerError
    message = str(error) if isinstance(error, MinicontainerError) else f"internal error: {error!r}"
    if report_w is not None:
        if ctx.record is not None:
            ctx.record.auto_remove = True
            from minicontainer import runtime
            runtime.teardown(ctx)                   # prepare/start already undid the rest
        os.write(report_w, f"err {message}\n".encode())
    elif ctx.record is not None:
        os.write(2, f"minicontainer: restart failed: {message}\n".encode())
        ctx.store.update(ctx.record.id, status="exited", exit_code=125, finished_at=time.time())
    os._exit(125)


# ── switching phases ──────────────────────────────────────────────────────────────────────

def exec_phase(phase: str, root, cid: str, *args, small: bool, keep=()) -> None:
    """Become the next phase: the same PID, a new program image. Never returns."""
    for fd in keep:
        if fd >= 0:
            os.set_inheritable(fd, True)
    argv = [str(a) for a in (phase, root, cid, *args)]
    if small:        # -I: no environment variables, no user site; -S: no site, no venv
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", SMALL_BOOT, *argv])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (PACKAGE_PARENT, env.get("PYTHONPATH"))))
    os.execve(sys.executable, [sys.executable, "-m", "minicontainer.supervisor", *argv], env)


# ── phase 2: watch (the long one; built-in modules only) ──────────────────────────────────

def watch(root: str, cid: str, pid: int, out_fd: int, err_fd: int, stdin_fd: int, streak: int) -> None:
    """Copy the container's output into its log until PID 1 exits; then record the exit."""
    import _signal
    import select
    log = os.open(f"{root}/containers/{cid}/{LOG_FILE}",
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    wake = wake_on_signals(_signal, (_signal.SIGCHLD,))
    streams = {fd: name for fd, name in ((out_fd, b"stdout"), (err_fd, b"stderr")) if fd >= 0}
    poller = select.poll()
    for fd in (*streams, wake):
        poller.register(fd, select.POLLIN)
    code = None
    while code is None:
        code = reap(pid)
        if code is not None:
            break
        for fd, _ in poller.poll():
            if fd == wake:
                os.read(wake, 512)
            elif not copy_output(fd, streams[fd], log, block=True):
                poller.unregister(fd)
                del streams[fd]
    for fd, name in streams.items():                # PID 1 is gone, and every process of its
        os.set_blocking(fd, False)                  # PID namespace with it: drain what is left
        while copy_output(fd, name, log, block=False):
            pass
    for fd in (*streams, stdin_fd):
        if fd >= 0:
            os.close(fd)
    exec_phase("exited", root, cid, code, streak, small=False)


def wake_on_signals(_signal, signals) -> int:
    """A pipe that gets a byte whenever one of `signals` arrives (signal.set_wakeup_fd), so
    one poll() waits for output and for signals alike."""
    r, w = os.pipe()
    os.set_blocking(r, False), os.set_blocking(w, False)
    _signal.set_wakeup_fd(w)
    for sig in signals:
        _signal.signal(sig, lambda *_: None)       # a handler must exist for the byte to be sent
    return r


def reap(pid: int) -> int | None:
    """The exit status of PID 1 if it has ended (128+N for signal N), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 255                                  # not our child (cannot happen): give up waiting
    if not done:
        return None
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def copy_output(fd: int, stream: bytes, log: int, block: bool) -> bool:
    """Read once from a pipe (or pty) and append it to the log. False at end of file."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return False
    except OSError:                                 # EIO: a pty whose other side is closed
        return False
    if data:
        os.write(log, format_entries(stream, data))
    return bool(data)


# ── phase 3: exited (full runtime) ────────────────────────────────────────────────────────

def exited(root: str, cid: str, code: int, streak: int) -> None:
    """Record how PID 1 ended, then tear down, or tear down and restart after a back-off."""
    from minicontainer import runtime
    from minicontainer.state import StateStore
    store = StateStore(root)
    rec = store.load(cid)
    if rec is None:                                 # removed meanwhile (rm -f): nothing to record
        return
    ctx = context_for(store, rec)
    oom = bool(code == 137 and ctx.cgroup is not None and ctx.cgroup.oom_killed())
    finished = time.time()
    rec = store.update(cid, status="exited", exit_code=code, finished_at=finished, oom_killed=oom)
    if rec is None:
        return
    ctx.record = rec
    delay, streak = restart_delay(store, rec, streak)
    runtime.teardown(ctx)                           # cgroup, network; --rm: overlay and record
    if delay is None:
        return
    store.update(cid, status="restarting", restart_count=rec.restart_count + 1)
    exec_phase("backoff", root, cid, delay, streak, small=True)


def restart_delay(store, rec, streak: int) -> tuple[float | None, int]:
    """Docker's rule: 0.1 s, doubling per restart, at most 1 min; back to 0.1 s once the
    container ran 10 s. None if the policy (or a user's stop) says no restart."""
    from minicontainer.config import parse_restart_policy
    policy, maximum = parse_restart_policy(rec.config.get("restart", "no"))
    if policy == "no" or stop_requested(store, rec.id):
        return None, streak
    if policy == "on-failure" and (rec.exit_code == 0 or (maximum and rec.restart_count >= maximum)):
        return None, streak
    if rec.finished_at - rec.started_at >= BACKOFF_RESET:
        streak = 0
    return min(BACKOFF_FIRST * 2 ** streak, BACKOFF_MAX), streak + 1


def stop_requested(store, cid: str) -> bool:
    return (store.container_dir(cid) / STOPPED_MARK).exists()


def config_of(rec):
    """The ContainerConfig a record was made with (its config summary; unknown keys — from
    another version of minicontainer — are ignored)."""
    from minicontainer.config import ContainerConfig
    from minicontainer.records import fields
    known = {f.name for f in fields(ContainerConfig)}
    return ContainerConfig(**{"image": rec.image, **{k: v for k, v in rec.config.items() if k in known}})


def context_for(store, rec, explain=None):
    """A runtime.Context for an existing record (restart, teardown by the supervisor or gc)."""
    from minicontainer import runtime
    from minicontainer.cgroups import open_cgroup
    from minicontainer.gc import make_explainer
    ctx = runtime.Context(config_of(rec), store, explain or make_explainer(False), record=rec)
    ctx.cgroup = open_cgroup(rec.cgroup, rec.cgroup_root) if rec.cgroup else None
    return ctx


# ── phase 4: back-off (small), then phase 5: start again (full) ──────────────────────────

def backoff(root: str, cid: str, delay: float, streak: int) -> None:
    """Sleep before the restart; SIGUSR1 (sent by `stop`) or SIGTERM ends the sleep early."""
    import _signal
    import select
    wake = wake_on_signals(_signal, (_signal.SIGUSR1, _signal.SIGTERM))
    poller = select.poll()
    poller.register(wake, select.POLLIN)
    poller.poll(int(delay * 1000))
    exec_phase("start", root, cid, streak, small=False)


def restart(root: str, cid: str, streak: int) -> None:
    from minicontainer.state import StateStore
    store = StateStore(root)
    rec = store.load(cid)
    if rec is None:
        return
    if stop_requested(store, cid):                  # stopped during the back-off
        store.update(cid, status="exited")
        return
    launch(context_for(store, rec), None, streak)


PHASES = {"watch": (watch, (str, str, int, int, int, int, int)),
          "exited": (exited, (str, str, int, int)),
          "backoff": (backoff, (str, str, float, int)),
          "start": (restart, (str, str, int))}


def main(argv: list[str]) -> None:
    import _signal
    _signal.signal(_signal.SIGUSR1, _signal.SIG_IGN)   # `stop` ends a back-off with it; a late
    function, types = PHASES[argv[0]]                  # one must not kill the next phase
    function(*(t(a) for t, a in zip(types, argv[1:])))


if __name__ == "__main__":
    main(sys.argv[1:])
