"""Demo: one process, two PIDs — the host's view and the container's, side by side (labs/02).

Shell equivalent:
    minicontainer run --rm -i --name demo-pidns busybox sh -c 'sleep 300 & sleep 300 & ps -o pid,comm; read x'
    grep NSpid /proc/<host PID>/status          # "NSpid: 48213 1": host PID, then PID inside
See pid_namespaces(7), proc(5) (NSpid).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import time

TITLE = "The PID namespace: one process, two PIDs"
SUMMARY = "one process, two PIDs: the host's view and the container's side by side"

END = "END-OF-PS"


def run(demo) -> None:
    from .narrate import DemoError
    demo.ensure_image("busybox")
    name = f"demo-pidns-{secrets.token_hex(3)}"
    demo.say("""A PID namespace numbers its processes from 1. The first process in it is PID 1 —
        the container's init. The host still sees every one of them, under its own numbers.""")
    demo.step("Start a container with two sleeping processes; it lists what it sees")
    command = f"sleep 300 & sleep 300 & ps -o pid,comm; echo {END}; read x"
    proc = demo.mc_background("run", "--rm", "-i", "--name", name, "busybox", "sh", "-c", command,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    demo.on_exit(lambda: stop(proc))
    inside = []
    for line in proc.stdout:
        if line.strip() == END:
            break
        inside.append(line.rstrip("\n"))
    if not inside:
        raise DemoError(f"the container printed nothing (exit {proc.poll()})")
    pid1 = container_pid(demo, name)
    host = processes_in_namespace_of(pid1)

    demo.step("The same processes, seen from the host and from inside")
    left = ["  PID COMMAND"] + [f"{p['host']:>5} {p['comm']}" for p in host]
    demo.columns("on the host (ps -e, only these)", left, "in the container (ps)", inside)
    demo.say(f"""Same processes, different numbers. The container cannot even name a host process
        (there is no PID {max(p['host'] for p in host)} in its namespace), and it cannot see one:
        its /proc shows only its own. The host's /proc/PID/status lists both numbers (NSpid).""")
    demo.show(f"grep NSpid /proc/{pid1}/status")
    demo.print(nspid_line(pid1))
    demo.show("for p in …; do grep -H NSpid /proc/$p/status; done")
    for p in host:
        demo.print(f"{p['comm']:<8} host PID {p['host']:>6}  →  container PID {p['inside']}")

    demo.step("Namespaces are links in /proc/PID/ns")
    demo.show(f"readlink /proc/self/ns/pid /proc/{pid1}/ns/pid")
    demo.print(os.readlink("/proc/self/ns/pid"))
    demo.print(os.readlink(f"/proc/{pid1}/ns/pid"))
    demo.say("""Different numbers: different PID namespaces. When PID 1 exits, the kernel kills
        every other process in its namespace — the two sleeps end with the container.""")
    stop(proc)


def container_pid(demo, name: str, timeout: float = 10.0) -> int:
    """The host PID of the container's PID 1, from minicontainer's state record."""
    from ..api import find_container
    from ..errors import ContainerError
    from .narrate import DemoError
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = find_container(name, demo.root)
            if rec.pid:
                return rec.pid
        except ContainerError:                 # no such container: not recorded yet
            pass
        time.sleep(0.05)
    raise DemoError(f"container {name} did not start within {timeout:.0f} s")


def nspid_line(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next((line.rstrip() for line in f if line.startswith("NSpid:")), "NSpid: ?")


def processes_in_namespace_of(pid1: int) -> list[dict]:
    """Every process in the same PID namespace as pid1: comm, host PID, PID inside."""
    target = os.readlink(f"/proc/{pid1}/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != target:
                continue
            comm = open(f"/proc/{entry}/comm").read().strip()
            ids = nspid_line(int(entry)).split()[1:]
        except OSError:
            continue                       # it exited while we looked
        found.append({"host": int(entry), "inside": int(ids[-1]), "comm": comm})
    return sorted(found, key=lambda p: p["inside"])


def stop(proc: subprocess.Popen) -> None:
    """End the container: its PID 1 is waiting in `read`; closing stdin ends it."""
    if proc.poll() is None:
        try:
            proc.stdin.write("\n")
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout and not proc.stdout.closed:
        proc.stdout.read()
        proc.stdout.close()
