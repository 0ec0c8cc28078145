"""QMP, the QEMU Machine Protocol: JSON commands and events over the VM's control socket.

What it is: every QEMU we start listens on <run dir>/qmp.sock (-qmp unix:...,server=on). A client
connects, receives a greeting, says qmp_capabilities, then sends {"execute": CMD, "arguments": {...}}
and gets {"return": ...} or {"error": {"class", "desc"}}. This module speaks it with the official
library, qemu.qmp (PyPI qemu-qmp), through its synchronous wrapper; long operations (snapshot jobs,
migration, block jobs) are polled with their query-* commands.
See: QEMU's docs/interop/qmp-spec.rst and the QMP reference (qemu-qmp-ref(7)).
Shell equivalent: socat - UNIX-CONNECT:qmp.sock, then type {"execute": "qmp_capabilities"}.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import VmError


class Monitor:
    """One QMP connection: `with Monitor(sock) as qmp: qmp.cmd("query-status")`."""

    def __init__(self, socket_path: Path, *, timeout: float = 30.0):
        from qemu.qmp.legacy import QEMUMonitorProtocol
        self.path = Path(socket_path)
        self.qmp = QEMUMonitorProtocol(str(self.path))
        try:
            self.qmp.connect(negotiate=True)
        except Exception as e:            # qemu.qmp's ConnectError, or an OSError beneath it
            raise VmError(f"cannot talk to QEMU on {self.path}: {e} (is the VM running?)") from None
        self.qmp.settimeout(timeout)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.qmp.close()
        except Exception:                 # QEMU may have quit already (after `quit`)
            pass

    def cmd(self, name: str, **arguments):
        """Execute one command; QEMU's error becomes a VmError carrying QEMU's own words."""
        from qemu.qmp import ExecuteError
        try:
            return self.qmp.cmd(name, **arguments)
        except ExecuteError as e:
            raise VmError(f"QEMU refused {name}: {e.error.desc}") from None
        except Exception as e:
            raise VmError(f"QMP {name} on {self.path}: {type(e).__name__} {e}") from None

    def quit(self) -> None:
        """QMP quit: QEMU exits; it may close the socket before or after its answer."""
        try:
            self.cmd("quit")
        except VmError:
            pass

    def human(self, command_line: str) -> str:
        """An HMP command (the human monitor, e.g. `info snapshots`) through QMP."""
        return self.cmd("human-monitor-command", **{"command-line": command_line})

    def wait_for(self, query, done, *, timeout: float, interval: float = 0.02, what: str = ""):
        """Poll query() until done(result); returns the last result."""
        deadline = time.monotonic() + timeout
        while True:
            result = query()
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise VmError(f"QEMU did not finish {what or 'in time'} within {timeout:.0f} s")
            time.sleep(interval)

    def run_job(self, command: str, job_id: str, *, timeout: float = 120.0, **arguments) -> float:
        """Start a background job (snapshot-save, -load, -delete), wait for it to conclude, dismiss
        it; returns its seconds. A failed job's own error message becomes a VmError."""
        started = time.monotonic()
        self.cmd(command, **{"job-id": job_id}, **arguments)

        def job():
            return next((j for j in self.cmd("query-jobs") if j["id"] == job_id), None)

        state = self.wait_for(job, lambda j: j is None or j["status"] == "concluded",
                              timeout=timeout, what=command)
        elapsed = time.monotonic() - started
        if state is not None:
            self.cmd("job-dismiss", id=job_id)
            if state.get("error"):
                raise VmError(f"{command} failed: {state['error']}")
        return elapsed
