"""Health checks: a command run inside a running container again and again; its exit status
says whether the service in there still works (Docker's HEALTHCHECK, `run --health-*`).

    Docker's reference: Dockerfile HEALTHCHECK, `docker run --health-cmd …`
    man 2 pidfd_open, man 2 poll, man 1 timeout
    shell, roughly:   while sleep $INTERVAL; do
                          if timeout $TIMEOUT minicontainer exec ID sh -c "$CMD"
                          then status=healthy failing=0
                          else failing=$((failing+1)); [ $failing -ge $RETRIES ] && status=unhealthy
                          fi
                      done

    starting ──check exits 0──▶ healthy ──RETRIES failures in a row──▶ unhealthy ──exit 0──▶ healthy

A failure during the start period (--health-start-period) does not count: a slow service is
given time to come up. The first check runs one interval after the start. A check that runs
longer than --health-timeout is stopped and counts as a failure.

Who runs the checks? A monitor (health_monitor.py), a process of its own that runtime.start()
launches next to the container (`python -m minicontainer.health_monitor ROOT ID PID START`), so neither the CLI
of a foreground `run` nor the detached container's supervisor (whose watch phase is kept
tiny) carries it. Each check is `exec` — the same setns steps as `minicontainer exec`. The
monitor waits on a pidfd of the container's PID 1 between checks, so it ends the moment the
container ends. The state is the record's `health` (Docker's State.Health: Status,
FailingStreak, the last 5 results), which `ps` (Up 3 minutes (healthy)) and `inspect` show.
With a restart policy, turning unhealthy kills PID 1, and the policy starts it again.
"""
from __future__ import annotations

import os
import re
import signal
import sys

from .errors import ConfigError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
DEFAULTS = {"interval": 30.0, "timeout": 30.0, "start_period": 0.0, "retries": 3}   # Docker's
KEEP_RESULTS = 5                 # State.Health.Log keeps the last five
MAX_OUTPUT = 4096                # bytes of a check's output kept, as Docker
HEALTH_FLAGS = ("health_cmd", "health_interval", "health_timeout", "health_start_period",
                "health_retries")


# ── what to check (ContainerConfig.validate and the monitor) ──────────────────────────────

def settings(config) -> dict | None:
    """The check the container gets: the image's HEALTHCHECK with each --health-* flag over it;
    None with --no-healthcheck, HEALTHCHECK NONE, or neither. ConfigError on a bad value."""
    image = getattr(config, "healthcheck", None) or {}
    if config.no_healthcheck:
        if any(getattr(config, f) is not None for f in HEALTH_FLAGS):
            raise ConfigError("--no-healthcheck conflicts with the --health-* options: drop one")
        return None
    test = ["CMD-SHELL", config.health_cmd] if config.health_cmd else list(image.get("test") or [])
    if config.health_cmd == "":
        raise ConfigError("--health-cmd is empty: give a command, e.g. --health-cmd 'wget -q -O- localhost'")
    if not test or test[0] == "NONE":
        return None
    out = {"test": test}
    for key in ("interval", "timeout", "start_period"):
        value = getattr(config, f"health_{key}")
        flag = f"--health-{key.replace('_', '-')}"
        if value is None:
            value = image.get(key)
            flag = f"HEALTHCHECK --{key.replace('_', '-')}"
        out[key] = DEFAULTS[key] if value in (None, "") else parse_duration(str(value), flag)
        if out[key] <= 0 and key != "start_period":
            raise ConfigError(f"invalid {flag} {value!r}: give a duration above 0, e.g. 30s")
    retries = config.health_retries if config.health_retries is not None else image.get("retries")
    try:
        out["retries"] = DEFAULTS["retries"] if retries in (None, "") else int(retries)
    except ValueError:
        out["retries"] = 0
    if out["retries"] < 1:
        raise ConfigError(f"invalid --health-retries {retries!r}: give a whole number of 1 or more")
    return out


def parse_duration(value: str, flag: str) -> float:
    """Go's durations, as Docker takes them: 30s, 1m30s, 500ms, 1.5h → seconds."""
    text = value.strip()
    if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", text):
        raise ConfigError(f"invalid {flag} {value!r}: give a duration such as 30s, 1m30s or 500ms")
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))


def command_of(test: list) -> list[str]:
    """["CMD-SHELL", "cmd"] → sh -c cmd (the image's shell form); ["CMD", prog, args…] → as is."""
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


# ── the monitor: started with the container, judging each result ──────────────────────────

def start_monitor(store, rec, config) -> None:
    """runtime.start: launch the monitor for a container that has a check (double fork and
    setsid: it belongs to no terminal and to nobody's wait; a fresh interpreter via execve)."""
    if settings(config) is None:
        return
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (package_parent,
                                                                      os.environ.get("PYTHONPATH")))))
    argv = [sys.executable, "-m", "minicontainer.health_monitor", str(store.root), rec.id, str(rec.pid),
            str(rec.pid_start)]
    log = str(store.container_dir(rec.id) / "health.log")
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork():
                os._exit(0)
            null = os.open("/dev/null", os.O_RDWR)
            err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            os.dup2(null, 0), os.dup2(null, 1), os.dup2(err, 2)
            os.closerange(3, 65536)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    os.waitpid(child, 0)


def judge(health: dict, result: dict, check: dict, in_start_period: bool) -> dict:
    """The new health after one result (Docker's rules; failures in the start period, before
    the first success, do not count)."""
    status, streak = health["Status"], health["FailingStreak"]
    if result["ExitCode"] == 0:
        status, streak = "healthy", 0
    elif not (in_start_period and status == "starting"):
        streak += 1
        if streak >= check["retries"]:
            status = "unhealthy"
    log = (health["Log"] + [result])[-KEEP_RESULTS:]
    return {"Status": status, "FailingStreak": streak, "Log": log}
