"""Demo: a fork bomb in a container stops at --pids-limit; the host does not notice (labs/03).

Shell equivalent:
    minicontainer run --rm --pids-limit 50 busybox sh -c '(b() { b | b & }; b) 2>/dev/null & exec sleep 5' &
    cat /sys/fs/cgroup/pids/minicontainer/<id>/pids.current     # v2: /sys/fs/cgroup/minicontainer/<id>/
See cgroups(7), Documentation/admin-guide/cgroup-v1/pids.rst.
"""
from __future__ import annotations

import secrets
import subprocess
import time

TITLE = "A fork bomb, contained by the pids cgroup"
SUMMARY = "a fork bomb stops at --pids-limit; the host does not notice"

LIMIT = 50
BOMB = "(b() { b | b & }; b) 2>/dev/null & exec sleep 5"


def run(demo) -> None:
    from .narrate import DemoError
    from .pid_namespace import container_pid
    demo.ensure_image("busybox")
    name = f"demo-bomb-{secrets.token_hex(3)}"
    demo.say(f"""A fork bomb: a function that starts two copies of itself in the background, forever.
        2, 4, 8, … processes until the machine has none left. The pids controller counts every
        process of a cgroup; at pids.max, fork() fails with EAGAIN — only in that cgroup.
        PID 1 here is `sleep 5`: when it exits, the kernel kills the rest of the namespace.""")
    demo.step(f"Start the bomb with --pids-limit {LIMIT}")
    proc = demo.mc_background("run", "--rm", "--pids-limit", LIMIT, "--name", name, "busybox", "sh", "-c", BOMB,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    demo.on_exit(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
    container_pid(demo, name)
    cgroup = open_cgroup_of(demo, name)

    demo.step("Watch the container's cgroup from the host")
    peak = 0
    for _ in range(6):
        stats = cgroup.stats() if cgroup.exists() else {}
        current, limit = stats.get("pids_current"), stats.get("pids_limit")
        if current is None:
            break
        peak = max(peak, current)
        demo.print(f"pids.current = {current:>3}   pids.max = {limit}")
        time.sleep(0.5)
    demo.step("Meanwhile, on the host")
    start = time.monotonic()
    demo.sh("ps -e --no-headers | wc -l; echo the host still forks", display="ps -e | wc -l; echo the host still forks")
    demo.print(f"(that took {1000 * (time.monotonic() - start):.0f} ms)")
    status = proc.wait(timeout=60)
    demo.say(f"""The bomb reached {peak} processes and stayed there: every further fork() in its cgroup
        failed (a few of the 50 come and go as the bomb's shells exit and retry). The container ended with its PID 1 (exit status {status}), and --rm removed its
        cgroup. Without --pids-limit, the same line would have filled the host's process table.""")
    if peak < LIMIT - 5:        # the last forks race with exits: "at the wall" is close enough
        raise DemoError(f"the bomb never reached the limit ({peak} of {LIMIT})")


def open_cgroup_of(demo, name: str):
    from ..api import container_cgroup, find_container
    from .narrate import DemoError
    cgroup = container_cgroup(find_container(name, demo.root))
    if cgroup is None:
        raise DemoError(f"container {name} has no cgroup")
    demo.show(f"cat {cgroup.paths.get('pids', next(iter(cgroup.paths.values())))}/pids.current")
    return cgroup
