"""Demo: 50 containers start in seconds; each is just a process in new namespaces (labs/02, 03).

Shell equivalent:
    for i in $(seq 50); do minicontainer run --rm --net none busybox sleep 8 & done
    minicontainer ps | wc -l
Here the 50 are forked from the demo's own Python process and each calls
minicontainer.Container(…).run(): the same run sequence as the CLI, without paying for 50
Python start-ups, so the time shown is the containers' own.
The lecture: *Startet innert Sekundenbruchteilen — müheloser Parallelbetrieb*.
"""
from __future__ import annotations

import os
import signal
import time

TITLE = "Fifty containers in a few seconds"
SUMMARY = "50 containers started at once, counted, gone again"

COUNT = 50
SLEEP = 8


def run(demo) -> None:
    from .narrate import DemoError
    from ..api import Container, list_containers, preload_runtime
    preload_runtime()                                  # once here, not 50 times in the children
    demo.ensure_image("busybox")
    demo.say(f"""A VM boots a kernel; a container is a fork(), a few unshare() and mount() calls
        and an execve(). Let us start {COUNT} of them at once, each sleeping {SLEEP} seconds.""")
    demo.step(f"Start {COUNT} containers")
    demo.show(f"for i in $(seq {COUNT}); do minicontainer run --rm --net none busybox sleep {SLEEP} & done")
    tag = f"fifty-{os.getpid()}"
    start = time.monotonic()
    children = []
    for i in range(COUNT):
        pid = os.fork()
        if pid == 0:                                   # child: one container, then exit
            status = 125
            try:
                status = Container("busybox", ["sleep", str(SLEEP)], root=demo.root, remove=True,
                                   net="none", name=f"{tag}-{i:02d}").run()
            except BaseException as e:                 # one line, like the CLI
                os.write(2, f"minicontainer: {e}\n".encode())
            finally:
                os._exit(status)
        children.append(pid)
    demo.on_exit(lambda: reap(children, kill=True))
    peak, all_up = 0, None
    while time.monotonic() - start < 120 and all_up is None:
        running = sum(1 for r in list_containers(demo.root) if r.status == "running" and r.name.startswith(tag))
        peak = max(peak, running)
        if running >= COUNT:
            all_up = time.monotonic() - start
        time.sleep(0.05)
    demo.step("Count them, from the host")
    demo.sh(f"minicontainer ps | grep -c {tag}", display="minicontainer ps | grep -c fifty")
    if all_up is not None:
        demo.print(f"all {COUNT} running {all_up:.1f} s after the first fork")
    statuses = reap(children)
    failed = sum(1 for s in statuses if s != 0)
    demo.print(f"all ended {time.monotonic() - start:.1f} s after the first fork; {failed} failed")
    demo.sh(f"minicontainer ps -a | grep -c {tag} || true", display="minicontainer ps -a | grep -c fifty")
    if failed or all_up is None:
        raise DemoError(f"{failed} of {COUNT} containers failed; at most {peak} ran at the same time")
    demo.say("""Each one had its own PID 1, hostname, mount table and cgroup — and --rm left no
        trace. Compare a VM's boot in `minicontainer demo vm-vs-container`.""")


def reap(children: list[int], kill: bool = False) -> list[int]:
    statuses = []
    for pid in children:
        try:
            if kill:
                os.kill(pid, signal.SIGTERM)          # minicontainer passes it on to PID 1
            _, status = os.waitpid(pid, 0)
            statuses.append(os.waitstatus_to_exitcode(status))
        except (ChildProcessError, ProcessLookupError):
            pass
    children.clear()
    return statuses
