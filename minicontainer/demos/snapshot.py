"""Demo: snapshot a container, break it, roll back (labs/05).

Shell equivalent:
    minicontainer run -d --name demo-snap busybox sh -c 'echo "version 1" > /etc/motd; exec sleep 1000'
    minicontainer snapshot create demo-snap good
    minicontainer exec demo-snap sh -c 'echo broken > /etc/motd; rm /bin/ls /bin/cat'
    minicontainer diff demo-snap
    minicontainer stop demo-snap && minicontainer snapshot restore demo-snap good
    minicontainer commit demo-snap demo-restored && minicontainer run --rm demo-restored cat /etc/motd
The lecture: *Schnappschuss — verschiedene Zustände festhalten, einfaches Rollback von fehlerhaften
Änderungen; alle schreibenden Zugriffe werden in eine andere Datei umgeleitet* — here: overlayfs's upper dir.
"""
from __future__ import annotations

import secrets

TITLE = "Snapshot and rollback of a container's files"
SUMMARY = "change a container's files, roll back to a snapshot"


def run(demo) -> None:
    demo.ensure_image("busybox")
    name = f"demo-snap-{secrets.token_hex(3)}"
    image = f"demo-restored-{secrets.token_hex(3)}"
    demo.say("""A container's root is an overlay: the image below, read-only, and the container's
        own upper directory above, where every write lands. A snapshot copies that upper
        directory — small, because it holds only the changes. Rolling back puts the copy back.""")
    demo.step("A running container that has written one file")
    demo.mc("run", "-d", "--name", name, "--net", "none", "busybox", "sh", "-c",
            'echo "version 1" > /etc/motd; exec sleep 1000', check=True)
    demo.on_exit(lambda: demo.mc("rm", "-f", name, show=False))
    demo.mc("exec", name, "cat", "/etc/motd", check=True)
    demo.mc("diff", name)

    demo.step("Take a snapshot")
    demo.mc("snapshot", "create", name, "good", check=True)
    demo.mc("snapshot", "ls", name)

    demo.step("A bad change: overwrite the file, delete two programs")
    demo.mc("exec", name, "sh", "-c", "echo broken > /etc/motd; rm /bin/ls /bin/cat")
    demo.mc("exec", name, "cat", "/etc/motd")
    demo.mc("diff", name)
    demo.say("""D: deleted. The image still has /bin/ls; the upper directory holds a *whiteout*
        (a 0/0 character device) that hides it.""")

    demo.step("Roll back: stop, restore the snapshot")
    demo.mc("stop", "-t", "1", name, check=True)
    demo.mc("snapshot", "restore", name, "good", check=True)
    demo.mc("diff", name)

    demo.step("Look at the restored files (commit them as an image and run it)")
    demo.mc("commit", name, image, check=True)
    demo.on_exit(lambda: demo.mc("image", "rm", image, show=False))
    restored = demo.mc("run", "--rm", "--net", "none", image, "sh", "-c", "cat /etc/motd; ls /bin/ls /bin/cat",
                       check=True)
    from .narrate import DemoError
    if "version 1" not in restored.stdout:
        raise DemoError("the restored container does not have version 1 of /etc/motd")
    demo.say("""version 1 is back, and so are ls and cat. A VM snapshot does the same with a disk
        image (writes redirected to a new file) plus the RAM and CPU state; a container snapshot
        needs only the upper directory.""")
