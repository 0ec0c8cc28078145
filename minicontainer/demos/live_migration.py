"""Demo: a running VM moves to another QEMU process while its counter goes on (docs/vms.md, lab 12).

Shell equivalent:
    minicontainer vm create demo-mig --memory 256 && minicontainer vm start demo-mig --wait
    tail -f /var/lib/minicontainer/vms/demo-mig/console.log        # tick 1, tick 2, …
    minicontainer vm snapshot create demo-mig before; sleep 3; minicontainer vm snapshot restore demo-mig before
    minicontainer vm migrate demo-mig --to localhost
    minicontainer vm rm -f demo-mig
The lecture: *in Clustern können VMs im laufenden Betrieb beliebig verschoben werden* — and a
container here can only move cold (CRIU does not work on this kernel).
"""
from __future__ import annotations

import re
import secrets
import time

TITLE = "Live migration of a VM (QEMU), and a snapshot with RAM"
SUMMARY = "a running VM moves to another QEMU process; its counter goes on"
TICK = re.compile(r"tick (\d+)")


def ticks_since(log, offset: int, count: int, timeout: float = 120.0) -> list[int]:
    """The first `count` ticks the guest prints after byte `offset` of its console log."""
    deadline = time.monotonic() + timeout
    while True:
        seen = [int(n) for n in TICK.findall(log.read_bytes()[offset:].decode(errors="replace"))]
        if len(seen) >= count or time.monotonic() > deadline:
            return seen[:count]
        time.sleep(0.2)


def run(demo) -> None:
    from .narrate import DemoError
    name = f"demo-mig-{secrets.token_hex(2)}"
    log = demo.state_root() / "vms" / name / "console.log"
    demo.say("""A VM is one QEMU process: its RAM is that process's memory. The guest here prints
        "tick N" once a second; the number lives in the guest's RAM.""")
    demo.step("Create and boot a small VM (busybox on a qcow2 disk, the project's Debian kernel)")
    demo.mc("vm", "create", name, "--memory", "256", check=True, timeout=300)
    demo.on_exit(lambda: demo.mc("vm", "rm", "-f", name, show=False))
    demo.mc("vm", "start", name, "--wait", check=True, timeout=300)
    demo.mc("vm", "ls")
    demo.show(f"tail -f {log}")
    demo.output("\n".join(f"tick {n}" for n in ticks_since(log, 0, 3)))

    demo.step("A snapshot with RAM, then back to it")
    demo.mc("vm", "snapshot", "create", name, "before", check=True)
    at = int(TICK.findall(log.read_text(errors="replace"))[-1])
    time.sleep(3)
    demo.mc("vm", "snapshot", "restore", name, "before", check=True)
    after = ticks_since(log, log.stat().st_size, 2)
    demo.output(f"snapshot at tick {at}; after the restore: " + ", ".join(map(str, after)))
    demo.say("""The counter went back: the guest's RAM, with the shell's variable in it, was put
        back as it was at the snapshot.""")

    demo.step("Live migration to a second QEMU started with -incoming")
    offset = log.stat().st_size
    demo.mc("vm", "migrate", name, "--to", "localhost", check=True, timeout=300)
    seen = ticks_since(log, offset, 5)
    demo.output("the counter across the migration: " + ", ".join(map(str, seen)))
    if not seen or any(not 1 <= b - a <= 2 for a, b in zip(seen, seen[1:])):
        raise DemoError(f"the counter did not go on smoothly: {seen}")
    demo.mc("vm", "ls")
    demo.say("""The guest never noticed: QEMU copied its RAM while it ran, re-sent the pages it
        wrote meanwhile, and stopped it only for the last pages and the CPU state (the downtime).
        A container cannot do this here: CRIU does not work on this kernel, so it moves cold —
        stopped, started again elsewhere, its memory lost.""")
