"""logs: what a detached container wrote, read back from its log file.

    shell: cat /var/lib/minicontainer/containers/ID/container.log     (tail -f for `logs -f`)

The supervisor (supervisor.py) copies PID 1's stdout and stderr into container.log, one entry
a line — "TIMESTAMP STREAM F|P TEXT", F for a full line, P for a part of one (the CRI log
format, as Kubernetes and Podman's k8s-file write it). Reading joins the parts of a line back
together per stream; `logs -f` (follow_logs) shows a part at once, so that a prompt without a
newline appears while the container waits for input.
"""
from __future__ import annotations

import time

from .state import open_store
from .status import settled
from .supervisor import LOG_FILE, parse_entry


class LogReader:
    """Entries of container.log, partial lines (P) joined to whole ones per stream."""

    def __init__(self, path):
        self.path, self.file, self.rest = path, None, b""
        self.pending: dict[str, tuple[str, bytes]] = {}

    def read_new(self, partial: bool = False) -> list[tuple[str, str, bytes]]:
        """What was appended since the last call. partial=True also gives unfinished lines
        (for -f: a prompt without newline should show up at once)."""
        if self.file is None:
            try:                                         # opened once: when --rm removes the
                self.file = open(self.path, "rb", buffering=0)   # directory, this descriptor
            except FileNotFoundError:                    # still reads the last output
                return []
        data = self.file.readall()
        data, out = self.rest + data, []
        lines = data.split(b"\n")
        self.rest = lines.pop()                          # an entry still being written
        for line in lines:
            entry = parse_entry(line + b"\n")
            if entry is None:
                continue
            ts, stream, text = entry
            first_ts, before = self.pending.pop(stream, (ts, b""))
            if text.endswith(b"\n"):
                out.append((first_ts, stream, before + text))
            elif partial:
                out.append((first_ts, stream, before + text))
            else:
                self.pending[stream] = (first_ts, before + text)
        return out

    def unfinished(self) -> list[tuple[str, str, bytes]]:
        out = [(ts, stream, text) for stream, (ts, text) in self.pending.items()]
        self.pending.clear()
        return out

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def log_path(ref: str, root=None):
    store = open_store(root)
    rec = store.find(ref)
    return store, rec, store.container_dir(rec.id) / LOG_FILE


def read_logs(ref: str, tail: int | None = None, root=None) -> list[tuple[str, str, bytes]]:
    """(timestamp, 'stdout'|'stderr', line) for every line, or the last `tail`."""
    _, _, path = log_path(ref, root)
    reader = LogReader(path)
    try:
        return last(reader.read_new() + reader.unfinished(), tail)
    finally:
        reader.close()


def last(entries: list, tail: int | None) -> list:
    """--tail N: the last N lines (all of them without --tail; none for 0)."""
    if tail is None or tail < 0:
        return entries
    return entries[-tail:] if tail else []


def follow_logs(ref: str, emit, tail: int | None = None, root=None) -> None:
    """`logs -f`: emit(ts, stream, text) for the last `tail` lines, then for new output as it
    comes, until the container has stopped for good."""
    store, rec, path = log_path(ref, root)
    reader = LogReader(path)
    try:
        for entry in last(reader.read_new(), tail):
            emit(*entry)
        while True:
            over = settled(store, rec)                 # decided before the read: nothing is missed
            for entry in reader.read_new(partial=True):
                emit(*entry)
            if over:
                for entry in reader.unfinished():
                    emit(*entry)
                return
            time.sleep(0.1)
    finally:
        reader.close()
