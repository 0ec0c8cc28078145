"""Events: what happened to containers, in order — `minicontainer events`, as `docker events`.

    man 2 open (O_APPEND), man 7 inotify is not used: the reader polls the file
    shell: tail -f $ROOT/events.log

Each step that changes a container appends one JSON line to <root>/events.log (one write(2)
with O_APPEND: lines of parallel writers never mix):

    create → start → (kill) → die [exitCode, oom] → (stop) → start … → destroy
    also: pause, unpause, rename, restart, oom

`events` prints them Docker's way, `--since`/`--until` bound the time (without --until it
keeps following, like Docker), `--filter container=|event=|image=|label=` selects.
"""
from __future__ import annotations

import json
import os
import time

EVENTS_FILE = "events.log"
FILTERS = ("container", "event", "image", "label", "type")


def record(store, action: str, rec, **attributes) -> None:
    """Append one event for container REC (never fails the step that records it)."""
    now = time.time_ns()
    attrs = {**(rec.config.get("labels") or {}), "image": rec.image, "name": rec.name,
             **{k: str(v) for k, v in attributes.items()}}
    line = json.dumps({"Type": "container", "Action": action, "status": action, "id": rec.id,
                       "Actor": {"ID": rec.id, "Attributes": attrs},
                       "time": now // 10**9, "timeNano": now}, separators=(",", ":")) + "\n"
    try:
        fd = os.open(os.path.join(store.root, EVENTS_FILE),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.write(fd, line.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def parse_filters(items) -> dict[str, list[str]]:
    from .errors import ConfigError
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in FILTERS:
            raise ConfigError(f"invalid --filter {item!r}: use KEY=VALUE with KEY one of {', '.join(FILTERS)}")
        out.setdefault(key, []).append(value)
    return out


def matches(event: dict, filters: dict[str, list[str]]) -> bool:
    attrs = event["Actor"]["Attributes"]
    tests = {
        "container": lambda v: event["id"].startswith(v) or attrs.get("name") == v,
        "event": lambda v: event["Action"] == v,
        "image": lambda v: attrs.get("image") in (v, f"{v}:latest"),
        "label": lambda v: v.partition("=")[0] in attrs and (
            "=" not in v or attrs[v.partition("=")[0]] == v.partition("=")[2]),
        "type": lambda v: event["Type"] == v,
    }
    return all(any(tests[k](v) for v in values) for k, values in filters.items())


def follow_events(state_dir, emit, *, since: float | None = None, until: float | None = None,
                  filters=(), poll: float = 0.1) -> None:
    """emit(event) for each event in [since, until) of the state root STATE_DIR; without
    until, keep following (until interrupted), as `docker events` does. Without since: only
    events from now on."""
    chosen = parse_filters(filters)
    path = os.path.join(state_dir, EVENTS_FILE)
    start = time.time() if since is None else since
    offset, rest = 0, b""
    while True:
        now = time.time()
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
                offset = f.tell()
        except FileNotFoundError:
            data = b""
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            t = event["timeNano"] / 1e9
            if t >= start and (until is None or t < until) and matches(event, chosen):
                emit(event)
        if until is not None and now >= until:
            return
        time.sleep(poll)


def last_exit_code(state_dir, cid: str) -> int | None:
    """The exitCode of the container's last `die` event: what `run -a --rm` still knows once
    the supervisor has removed the container (its record and exit file with it)."""
    code = None
    try:
        with open(os.path.join(state_dir, EVENTS_FILE), "rb") as f:
            for line in f:
                if cid.encode() in line and b'"die"' in line:
                    event = json.loads(line)
                    if event.get("id") == cid and event.get("Action") == "die":
                        code = int(event["Actor"]["Attributes"].get("exitCode", 0))
    except (OSError, ValueError, KeyError):
        return code
    return code


def format_event(event: dict) -> str:
    """Docker's line: TIME container ACTION ID (key=value, …)."""
    ns = event["timeNano"]
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(event["Actor"]["Attributes"].items()))
    return f"{when} {event['Type']} {event['Action']} {event['id']} ({attrs})"
