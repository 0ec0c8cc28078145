"""Demo: over its memory limit, a container meets the kernel's OOM killer: exit 137 (labs/03).

Shell equivalent:
    minicontainer run --rm -m 32m busybox sh -c 'head -c 200m /dev/zero | tail > /dev/null'; echo $?
See cgroups(7), Documentation/admin-guide/cgroup-v2.rst ("memory.max", "memory.events").
"""
from __future__ import annotations

TITLE = "The OOM killer, inside a memory cgroup"
SUMMARY = "over -m, the kernel's OOM killer kills inside the container: exit 137"

HOG = "head -c 200m /dev/zero | tail > /dev/null"


def run(demo) -> None:
    from .narrate import DemoError
    demo.ensure_image("busybox")
    demo.say("""`tail` keeps the last 10 lines of its input. /dev/zero has no newline, so 200 MB of
        zeros are one line that tail must hold in memory. -m 32m writes 33554432 into the
        container's memory.max (v1: memory.limit_in_bytes).""")
    demo.step("Where the limit goes (--explain prints every cgroup file written)")
    explained = demo.mc("run", "--rm", "--explain", "-m", "32m", "busybox", "true", show=False)
    demo.show("minicontainer run --rm --explain -m 32m busybox true 2>&1 | grep memory")
    demo.output("\n".join(line.strip() for line in explained.stderr.splitlines()
                          if "memory" in line and line.strip().startswith("$")))

    demo.step("200 MB into a 32 MB container")
    hog = demo.mc("run", "--rm", "-m", "32m", "busybox", "sh", "-c", HOG)
    demo.show("echo $?")
    demo.print(str(hog.returncode))
    if hog.returncode != 137:
        raise DemoError(f"expected exit status 137 (SIGKILL by the OOM killer), got {hog.returncode}")
    demo.say("""137 = 128 + 9: SIGKILL. The kernel ran out of memory *in that cgroup* and killed a
        process there — not your editor, not the database next door. minicontainer read
        memory.events (oom_kill 1) to tell you why.""")

    demo.step("The same command with room to breathe (-m 256m)")
    fine = demo.mc("run", "--rm", "-m", "256m", "busybox", "sh", "-c", HOG + " && echo done")
    if fine.returncode != 0:
        raise DemoError(f"with -m 256m the command failed too (exit {fine.returncode})")
