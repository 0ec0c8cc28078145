"""The supervisor: one small process per detached container (`run -d`), like Podman's conmon.

    man 2 execve, man 2 prctl (PR_SET_CHILD_SUBREAPER), man 2 waitpid, man 2 poll, man 7 pipe
    shell, roughly:  setsid sh -c 'minicontainer run … >log 2>&1; record $?' &

It waits for the container's PID 1 (so the exit status is known), copies the container's
stdout and stderr into a log file with a timestamp per line, records the exit, and applies
the --restart policy. Its life, in phases (each phase replaces the previous one with execve):

  CLI ─fork─▶ setsid, fork, exit ─▶ supervisor (still the CLI's Python, runtime loaded)
                                      prepare, start: PID 1 is our child (we are its subreaper)
  CLI ◀───────── "ok ID" / "err …" ── and its stdout/stderr are pipes to us
  prints the ID, exits              execve(minicontainer-watch …)   watch.c, ~0.3 MB PSS
                                      pipes → container.log; waitpid(PID 1)
                                      (rm -f's "removing" mark: exit status → exit file, exit)
                                    execve(python -m minicontainer.supervisor exited …)
                                      record the exit status; apply --restart:
                                        no restart → teardown (cgroup, network, --rm), exit
                                        restart    → "restarting", teardown, execve(… backoff)
                                                     sleep 0.1 s, 0.2 s, 0.4 s … ≤ 1 min,
                                                     execve(… start): prepare, start, watch

Why execve and not fork? execve swaps the memory image but keeps the PID, the children
(PID 1 stays ours to wait for), the subreaper flag and every inheritable descriptor (the log
pipes). So the phase that lasts as long as the container — watch — carries none of the
runtime: it is watch.c, a small C program built with gcc on first use (conmon's role). The
bare interpreter alone keeps ~2.6 MB of private heap, the C watcher ~0.3 MB: with a thousand
containers, 2.3 GB. Without gcc, watch() below does the same in Python (`-I -S`: no site, no
venv, only built-in modules; `import signal` alone would pull in enum, ~1 MB: `_signal`).

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
REMOVING_MARK = "removing"              # rm -f creates it: exit at once, rm itself tears down
EXIT_FILE = "exit"                      # the last exit status, rewritten in place (conmon's exit file)
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0   # seconds, as Docker
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATCH_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watch.c")
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
    from minicontainer.errors import MinicontainerError, StartError
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
    errors = [line[4:].partition(" ") for line in lines if line.startswith("err ")]
    if not errors:
        raise MinicontainerError("the supervisor exited before the container started "
                                 "(run `minicontainer gc` to clean up)")
    code, _, message = errors[0]
    raise StartError(message, int(code))            # 125, or 127/126 if execve failed (as Docker)


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
    report(report_w, f"supervisor {os.getpid()}")
    from minicontainer.state import StateStore, proc_start_time
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0), os.dup2(null, 1)              # `ID=$(minicontainer run -d …)` waits for EOF
    os.close(null)
    close_inherited_fds(keep=report_w)
    store = StateStore(container.store.root.absolute())
    os.chdir("/")                                   # pin no directory of the user's
    existing = getattr(container, "record", None)   # `start` of a created or exited container
    ctx = runtime.Context(container.config, store, container.explain, record=existing)
    if existing is not None:                        # we wait for it from now on
        existing.supervisor_pid, existing.supervisor_start = os.getpid(), proc_start_time(os.getpid())
    launch(ctx, report_w, streak=0, keep_record=existing is not None)


def close_inherited_fds(keep: int) -> None:
    """The CLI may have inherited descriptors from its caller (a shell's `3>file`, a test
    harness's pipe); the supervisor would hold them for the container's whole life."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and fd != keep and os.get_inheritable(fd):
                os.close(fd)
        except OSError:                             # the listing's own descriptor, gone by now
            pass


def launch(ctx, report_w: int | None, streak: int, keep_record: bool = False) -> None:
    """prepare + start with the container's output going to pipes, then become the watcher.
    For a restart (and `start`) ctx.record is set and prepare reuses it; keep_record: a
    failed first start keeps that record (it was not made for this start). Never returns."""
    import signal
    from minicontainer import runtime
    try:
        runtime.prepare(ctx)
    except BaseException as e:
        give_up(ctx, report_w, e, keep_record)
    try:
        keep = attach_output(ctx)
        with runtime.forward_signals(ctx):
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)   # `stop`'s wake-up call is for us,
            runtime.start(ctx)                              # not to be passed on to PID 1
        if ctx.console is not None:
            keep["out"] = ctx.console.receive_master()
    except BaseException as e:
        runtime.teardown(ctx)
        give_up(ctx, report_w, e, keep_record)
    if stop_requested(ctx.store, ctx.record.id):    # `stop` came while we started: it may have
        os.kill(ctx.pid, signal.SIGKILL)            # signalled the old PID 1; this one must not run
    detach_stdio(ctx)
    watcher = watch_binary(ctx.store.root)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)   # ignored across execve: no window for `stop`
    if report_w is not None:
        report(report_w, f"ok {ctx.record.id}")
        os.close(report_w)
    exec_phase("watch", ctx.store.root, ctx.record.id, ctx.pid, keep.get("out", -1),
               keep.get("err", -1), keep.get("stdin", -1), streak, small=True, keep=keep.values(),
               binary=watcher)


def watch_binary(root) -> str | None:
    """The watch phase as a C program (watch.c: ~0.1 MB, where the bare interpreter is
    ~2.6 MB), built with gcc on first use — next to the package's bytecode if that is
    writable, else in the state root. None without gcc: then the phase runs in Python."""
    from pathlib import Path
    from minicontainer.errors import ConfigError
    from minicontainer.init import find_static_binary
    cache = Path(__file__).with_name("__pycache__")
    try:
        return str(find_static_binary(cache if os.access(cache, os.W_OK) else root, Path(WATCH_SOURCE),
                                      "minicontainer-watch", "the supervisor"))
    except ConfigError as e:
        os.write(2, f"minicontainer: {e}: watching in Python instead\n".encode())
        return None


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


def report(report_w: int, line: str) -> None:
    """Tell the CLI — if it still listens: killed or interrupted, it has closed the pipe, and
    a BrokenPipeError must not end the supervisor (PID 1 would run with nobody watching)."""
    try:
        os.write(report_w, f"{line}\n".encode())
    except OSError:
        pass


def give_up(ctx, report_w: int | None, error: BaseException, keep_record: bool = False) -> None:
    """A start failed. First start: report the one line and leave nothing behind (but the
    record of a container that existed before: `start`). A restart: record the exit (125,
    or execve's 127/126) and stop restarting."""
    from minicontainer.errors import MinicontainerError
    message = str(error) if isinstance(error, MinicontainerError) else f"internal error: {error!r}"
    code = getattr(error, "exit_code", 125)
    if report_w is not None:
        if keep_record and ctx.record is not None:
            ctx.store.update(ctx.record.id, status="exited", exit_code=code, finished_at=time.time(),
                             pid=0)
        elif ctx.record is not None:
            ctx.record.auto_remove = True
            from minicontainer import runtime
            runtime.teardown(ctx)                   # prepare/start already undid the rest
        report(report_w, f"err {code} {message}")
    elif ctx.record is not None:
        try:
            detach_stdio(ctx)                       # fd 2 may be the container's stderr pipe by now
        except OSError:
            pass                                    # its directory is gone (rm -f)
        os.write(2, f"minicontainer: restart failed: {message}\n".encode())
        ctx.store.update(ctx.record.id, status="exited", exit_code=code, finished_at=time.time())
    os._exit(125)


# ── switching phases ──────────────────────────────────────────────────────────────────────

def exec_phase(phase: str, root, cid: str, *args, small: bool, keep=(), binary: str | None = None) -> None:
    """Become the next phase: the same PID, a new program image. Never returns. `binary`:
    the C watcher, told where Python and the package are for the phase after it."""
    for fd in keep:
        if fd >= 0:
            os.set_inheritable(fd, True)
    argv = [str(a) for a in (phase, root, cid, *args)]
    if binary:
        os.execv(binary, [binary, *argv[1:], sys.executable, PACKAGE_PARENT])
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
                os.close(fd)                        # inheritable: it would outlive every phase
    if os.path.exists(f"{root}/containers/{cid}/{REMOVING_MARK}"):
        write_status(f"{root}/containers/{cid}/{EXIT_FILE}", code)   # for rm's `die` event
        os._exit(0)                                 # rm -f waits on our pidfd, then tears down
    for fd, name in streams.items():                # PID 1 is gone, and every process of its
        os.set_blocking(fd, False)                  # PID namespace with it: drain what is left
        while copy_output(fd, name, log, block=False):
            pass
    for fd in (*streams, stdin_fd):
        if fd >= 0:
            os.close(fd)
    exec_phase("exited", root, cid, code, streak, small=False)


def write_status(path: str, code: int) -> None:
    """The exit status into the exit file (conmon's), rewritten in place (no rename), so
    every descriptor `wait` holds open sees the new content."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return                                      # removed meanwhile
    try:
        os.write(fd, b"%d\n" % code)
    finally:
        os.close(fd)


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
    oom = oom_killed(rec, code)
    rec.exit_code, rec.finished_at = code, time.time()
    delay, streak = restart_delay(store, rec, streak)
    # One locked update: `rm` (without -f) must never see "exited" while a restart follows
    # and tear down under our feet.
    rec = store.update(cid, exit_code=code, finished_at=rec.finished_at, oom_killed=oom,
                       status="exited" if delay is None else "restarting",
                       restart_count=rec.restart_count + (delay is not None))
    if rec is None:
        return
    from minicontainer.events import record as record_event
    if oom:
        record_event(store, "oom", rec)
    record_event(store, "die", rec, exitCode=code)
    write_exit_file(store, cid, code)
    ctx = context_for(store, rec)                   # after recording: the exit is kept even if this fails
    runtime.teardown(ctx)                           # cgroup, network; --rm: overlay and record
    if delay is None:
        return
    exec_phase("backoff", root, cid, delay, streak, small=True)


def oom_killed(rec, code: int) -> bool:
    """Did the kernel's OOM killer end it? (read before teardown removes the cgroup)"""
    from minicontainer.cgroups import open_cgroup
    cgroup = open_cgroup(rec.cgroup, rec.cgroup_root) if code == 137 and rec.cgroup else None
    return bool(cgroup is not None and cgroup.oom_killed())


def write_exit_file(store, cid: str, code: int) -> None:
    """The exit status, also in a file that `wait` keeps open: when --rm removes the record
    right after, a waiter that missed it still reads the status through its descriptor."""
    write_status(str(store.container_dir(cid) / EXIT_FILE), code)


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
    from minicontainer.explain import Explainer
    from minicontainer.status import container_cgroup
    ctx = runtime.Context(config_of(rec), store, explain or Explainer(False), record=rec)
    ctx.cgroup = container_cgroup(rec)
    return ctx


# ── phase 4: back-off (small), then phase 5: start again (full) ──────────────────────────

def backoff(root: str, cid: str, delay: float, streak: int) -> None:
    """Sleep before the restart; SIGUSR1 (sent by `stop`) or SIGTERM ends the sleep early."""
    import _signal
    import select
    wake = wake_on_signals(_signal, (_signal.SIGUSR1, _signal.SIGTERM))
    if not os.path.exists(f"{root}/containers/{cid}/{STOPPED_MARK}"):   # a stop that came before
        poller = select.poll()                                          # our handler was ignored
        poller.register(wake, select.POLLIN)
        poller.poll(int(delay * 1000))
    if os.path.exists(f"{root}/containers/{cid}/{REMOVING_MARK}"):      # rm -f: it tears down
        os._exit(0)
    _signal.signal(_signal.SIGUSR1, _signal.SIG_IGN)   # a handler would be reset to the default
    exec_phase("start", root, cid, streak, small=False)  # (death) by execve; SIG_IGN is kept


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


def boot_start(root: str, cid: str) -> None:
    """`system boot` (recovery.py): a new supervisor for a container the reboot ended. It
    becomes the record's owner first (gc must not take it for an orphan), then starts it."""
    from minicontainer.runtime import owner_fields
    from minicontainer.state import StateStore
    if StateStore(root).update(cid, **owner_fields()) is not None:
        restart(root, cid, 0)


PHASES = {"watch": (watch, (str, str, int, int, int, int, int)),
          "boot": (boot_start, (str, str)),
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
