"""What list verbs print: `ps --filter`, and `--format` with the Go-template subset Docker uses.

    Docker's reference: "Format command and log output", `docker ps --filter`
    shell: minicontainer ps -a --filter status=exited --format '{{.ID}}\t{{.Names}}'

Templates (render): `{{.Field}}`, `{{.A.B}}`, `{{json .}}` / `{{json .Field}}`,
`{{.Label "key"}}`, `{{upper .X}}` / `{{lower .X}}`; `\\t` and `\\n` in the format are a tab and
a newline (as Docker reads them). `table …` prints a header line first (each placeholder's
column name) and aligns the columns like Go's tabwriter (min width 10, padding 3); `json`
is the whole list as JSON. Anything else is a one-line error naming the placeholders.

Filters (filter_containers): KEY=VALUE; the same key given twice matches either value,
different keys must all match — Docker's rule.
"""
from __future__ import annotations

import json
import re
import time

from .errors import ConfigError

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "Pid": "PID", "RestartCount": "RESTARTS", "Label": "LABEL"}
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
PS_FILTERS = ("status", "name", "label", "ancestor", "id", "exited")


# ── rows ──────────────────────────────────────────────────────────────────────────────────

def container_row(rec, no_trunc: bool = False) -> dict:
    """One container the way Docker's `ps --format` names its fields."""
    from .status import current_status, human_duration, status_text
    from .network.ports import PortMapping
    status = current_status(rec)
    ports = [str(PortMapping.from_dict(p)) for p in (rec.network or {}).get("ports", [])] \
        if status in ("running", "paused") else []
    command = " ".join(rec.command)
    labels = rec.config.get("labels") or {}
    return {"ID": rec.id if no_trunc else rec.short_id, "Names": rec.name, "Image": rec.image,
            "Command": json.dumps(command if no_trunc or len(command) <= 20 else command[:19] + "…"),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(rec.created)),
            "RunningFor": f"{human_duration(time.time() - rec.created)} ago",
            "Ports": ", ".join(ports), "State": status, "Status": status_text(rec),
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()), "LabelMap": labels,
            "Mounts": ",".join(v.split(":")[0] for v in rec.config.get("volumes", [])),
            "Networks": (rec.network or {}).get("network", "") or rec.config.get("net", "bridge"),
            "Pid": rec.pid if status in ("running", "paused") else 0,
            "RestartCount": rec.restart_count}


# ── filters ───────────────────────────────────────────────────────────────────────────────

def parse_filters(items, allowed=PS_FILTERS) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise ConfigError(f"invalid --filter {item!r}: use KEY=VALUE with KEY one of "
                              f"{', '.join(allowed)}")
        if key == "status" and value not in STATUSES:
            raise ConfigError(f"invalid --filter status={value}: use one of {', '.join(STATUSES)}")
        if key == "exited" and not value.lstrip("-").isdigit():
            raise ConfigError(f"invalid --filter exited={value}: give an exit status (a number)")
        if key == "name":
            try:
                re.compile(value)
            except re.error as e:
                raise ConfigError(f"invalid --filter name={value}: {e}") from None
        out.setdefault(key, []).append(value)
    return out


def filter_containers(records, items, images=None) -> list:
    """The records every filter matches. `images`: the ImageStore, for ancestor=."""
    from .status import current_status
    filters = parse_filters(items)
    tests = {
        "status": lambda r, v: current_status(r) == v,
        "name": lambda r, v: re.search(v, r.name) is not None,
        "id": lambda r, v: r.id.startswith(v),
        "label": lambda r, v: label_matches(r.config.get("labels") or {}, v),
        "exited": lambda r, v: current_status(r) == "exited" and r.exit_code == int(v),
        "ancestor": ancestor_test(images, filters.get("ancestor", [])),
    }
    return [r for r in records
            if all(any(tests[key](r, v) for v in values) for key, values in filters.items())]


def label_matches(labels: dict, want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def ancestor_test(images, refs):
    """ancestor=IMAGE: containers of IMAGE (NAME[:TAG] or an ID prefix) or of an image built
    on it (its layers are a prefix of theirs, as Docker follows the parent chain)."""
    if not refs or images is None:
        return lambda r, v: False
    from .errors import ImageError
    wanted = {}
    for ref in refs:
        try:
            wanted[ref] = images.get(ref)
        except ImageError:
            matches = [i for i in images.list() if i.id.startswith(ref)]
            wanted[ref] = matches[0] if len(matches) == 1 else None
    cache = {}

    def image_of(name):
        if name not in cache:
            try:
                cache[name] = images.get(name)
            except ImageError:
                cache[name] = None
        return cache[name]

    def test(rec, ref) -> bool:
        base, mine = wanted.get(ref), image_of(rec.image)
        if base is None or mine is None:
            return False
        if mine.ref == base.ref or mine.id == base.id:
            return True
        return bool(base.layers) and tuple(mine.layers[:len(base.layers)]) == tuple(base.layers)
    return test


# ── templates ─────────────────────────────────────────────────────────────────────────────

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def render(fmt: str, rows: list[dict], headers: dict | None = None) -> str:
    """The whole output of a list verb for --format FMT ("" ends without a newline)."""
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    table = fmt.startswith("table")
    if table:
        fmt = fmt[len("table"):].strip(" ")
    lines = []
    if table:
        lines.append(_ACTION.sub(lambda m: header_of(m.group(1), headers or {}), fmt))
    lines += [render_one(fmt, row) for row in rows]
    if table:
        lines = align(lines)
    return "".join(line + "\n" for line in lines)


def header_of(expr: str, headers: dict) -> str:
    field = expr.split()[-1].lstrip(".").split(".")[0] if expr.split() else ""
    if expr.startswith(".Label "):
        return headers.get("Label", "LABEL")
    return headers.get(field, field.upper())


def render_one(fmt: str, data: dict) -> str:
    return _ACTION.sub(lambda m: evaluate(m.group(1), data), fmt)


def evaluate(expr: str, data: dict) -> str:
    words = expr.split(None, 1)
    if not words:
        raise ConfigError("--format: an empty {{ }}")
    if words[0] in ("json", "upper", "lower", "title") and len(words) == 2:
        value = lookup(words[1], data)
        if words[0] == "json":
            return json.dumps(value)
        text = as_text(value)
        return {"upper": text.upper(), "lower": text.lower(), "title": text.title()}[words[0]]
    if words[0] == ".Label" and len(words) == 2:
        key = words[1].strip().strip('"')
        return str((data.get("LabelMap") or data.get("Labels") or {}).get(key, ""))
    if len(words) == 1 and words[0].startswith("."):
        return as_text(lookup(words[0], data))
    raise ConfigError(f"--format: {{{{{expr}}}}} is not understood: use {{{{.Field}}}}, "
                      "{{json .Field}}, {{.Label \"key\"}} (fields: " + ", ".join(
                          k for k in data if k != "LabelMap") + ")")


def lookup(path: str, data):
    value = data
    for key in filter(None, path.strip().split(".")):
        if not isinstance(value, dict) or key not in value:
            fields = ", ".join(k for k in data if k != "LabelMap") if isinstance(data, dict) else ""
            raise ConfigError(f"--format: no field {path!r} (fields: {fields})")
        value = value[key]
    if isinstance(value, dict) and "LabelMap" in value:
        value = {k: v for k, v in value.items() if k != "LabelMap"}
    return value


def as_text(value) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def align(lines: list[str]) -> list[str]:
    """Go's tabwriter as Docker sets it up: cells split at tabs, min width 10, padding 3."""
    cells = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for row in cells:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + 3, 10)
    return ["".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)).rstrip()
            for row in cells]
