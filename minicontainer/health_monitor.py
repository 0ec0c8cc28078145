"""The health monitor: one process per container with a health check (health.py says what
and why). Started by health.start_monitor as `python -m minicontainer.health_monitor ROOT ID
PID START`; never imported by the run sequence (it uses exec, which builds on it).

    man 2 pidfd_open, man 2 poll, man 2 fork, man 7 pipe
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

from .health import MAX_OUTPUT, command_of, judge, settings


def monitor(root: str, cid: str, pid: int, start: int) -> None:
    """Check every interval until PID 1 (pid, start) ends; keep the record's health current."""
    from .state import StateStore, proc_start_time
    from .supervisor import config_of
    store = StateStore(root)
    rec = store.load(cid)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    if rec is None or proc_start_time(pid) != start:
        return
    check = settings(config_of(rec))
    from . import exec as preloaded                       # noqa: F401 — each check's fork has it
    health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    store.update(cid, health=health)
    began, poller = time.monotonic(), select.poll()
    poller.register(pidfd, select.POLLIN)
    while not poller.poll(check["interval"] * 1000):      # readable: PID 1 has exited
        result = run_check(root, cid, command_of(check["test"]), check["timeout"])
        if poller.poll(0):
            break                                         # it ended during the check: no verdict
        was = health["Status"]
        health = judge(health, result, check, time.monotonic() - began < check["start_period"])
        rec = store.update(cid, health=health)
        if rec is None:
            break                                         # removed
        if health["Status"] != was:
            from .events import record as record_event
            record_event(store, f"health_status: {health['Status']}", rec)
            if health["Status"] == "unhealthy":
                restart_if_policy(rec)


def restart_if_policy(rec) -> None:
    """Unhealthy with --restart: end PID 1 (SIGKILL, exit 137) so the supervisor restarts it."""
    from .config import parse_restart_policy
    from .stop import signal_process
    if parse_restart_policy(rec.config.get("restart", "no"))[0] != "no":
        signal_process(rec.pid, rec.pid_start, signal.SIGKILL)


def run_check(root: str, cid: str, command: list[str], timeout: float) -> dict:
    """One check: `exec` of the command in a child whose stdout and stderr are a pipe; stopped
    (SIGTERM, which exec passes on, then SIGKILL) after `timeout` seconds."""
    from .inspection import rfc3339
    began = time.time()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        os.dup2(w, 1), os.dup2(w, 2)
        code = 255
        try:
            from .exec import exec_in_container
            code = exec_in_container(cid, command, root=root)
        except BaseException as e:              # the container stopped, the command is missing …
            os.write(2, f"{e}\n".encode(errors="replace"))
        finally:
            os._exit(code)
    os.close(w)
    output, deadline, code = b"", time.monotonic() + timeout, None
    with os.fdopen(r, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                code = stop_check(child)
                break
            data = pipe.read(65536)
            if not data:
                break
            output = (output + data)[-MAX_OUTPUT:]
    if code is None:
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        text = output.decode(errors="replace")
    else:
        text = f"Health check exceeded timeout ({timeout:g}s)"
    return {"Start": rfc3339(began), "End": rfc3339(time.time()), "ExitCode": code, "Output": text}


def stop_check(child: int) -> int:
    """Timed out: SIGTERM (exec forwards it into the container), SIGKILL a second later."""
    os.kill(child, signal.SIGTERM)
    for _ in range(20):
        done, _ = os.waitpid(child, os.WNOHANG)
        if done:
            return -1
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    return -1


if __name__ == "__main__":
    root_arg, cid_arg, pid_arg, start_arg = sys.argv[1:5]
    monitor(root_arg, cid_arg, int(pid_arg), int(start_arg))
