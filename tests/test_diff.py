"""`diff`: A/C/D read from the container's upper dir, printed as `docker diff` prints them."""
from __future__ import annotations

import os
import secrets
import stat

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def container(mc):
    """Run a command in a new (kept) container; removed after the test."""
    names = []

    def run(*command, image="busybox"):
        name = f"diff-{secrets.token_hex(4)}"
        names.append(name)
        mc("run", "--name", name, "--net", "none", image, *command, check=True)
        return name
    yield run
    for name in names:
        mc("rm", "-f", name)


def test_no_changes_no_diff(mc, container):
    """The runtime's mount points (/etc/hostname, /etc/resolv.conf) live in the init layer,
    not in the upper dir: a container that wrote nothing has nothing to show."""
    name = container("true")
    assert mc("diff", name, check=True).stdout == ""


def test_added_changed_deleted_exactly(mc, container):
    name = container("sh", "-c", "chmod 700 /tmp; mkdir -p /usr/local/lib/x; echo > /usr/local/lib/x/y; "
                                 "rm /bin/vi; ln -s /nowhere /etc/link")
    assert mc("diff", name, check=True).stdout == (
        "C /bin\n"
        "D /bin/vi\n"
        "C /etc\n"
        "A /etc/link\n"
        "C /tmp\n"
        "C /usr\n"
        "A /usr/local\n"
        "A /usr/local/lib\n"
        "A /usr/local/lib/x\n"
        "A /usr/local/lib/x/y\n")


def test_a_modified_file_alone(mc, container):
    """Copy-up keeps the directory's times, so only the file is listed."""
    name = container("sh", "-c", "echo more >> /etc/profile")
    assert mc("diff", name, check=True).stdout == "C /etc/profile\n"


def test_directory_removed_and_made_again_is_opaque(mc, container, mc_root):
    name = container("sh", "-c", "rm -rf /home/student && mkdir /home/student && touch /home/student/new")
    assert mc("diff", name, check=True).stdout == "C /home\nD /home/student\nA /home/student/new\n"
    from minicontainer.state import StateStore
    upper = mc_root / "containers" / StateStore(mc_root).find(name).id / "upper"
    assert os.getxattr(upper / "home/student", "trusted.overlay.opaque") == b"y"


def test_diff_through_layers_and_whiteouts(mc, container, busybox_tar):
    """A file deleted in a committed layer and made again is *added* (the lower stack hides it)."""
    base = f"diffbase:{secrets.token_hex(3)}"
    image = f"difflayers:{secrets.token_hex(3)}"
    mc("image", "import", str(busybox_tar), base, check=True)
    try:
        first = container("rm", "/etc/profile", image=base)
        mc("commit", first, image, check=True)
        second = container("sh", "-c", "echo back > /etc/profile", image=image)
        assert mc("diff", second, check=True).stdout == "C /etc\nA /etc/profile\n"
        mc("rm", first, second, check=True)
    finally:
        mc("image", "rm", image)
        mc("image", "rm", base)


def test_diff_of_a_running_container(mc):
    name = f"diff-run-{secrets.token_hex(3)}"
    mc("run", "-d", "--name", name, "--net", "none", "busybox", "sleep", "60", check=True)
    try:
        mc("exec", name, "touch", "/root/.ash_history", check=True)
        assert mc("diff", name, check=True).stdout == "C /root\nA /root/.ash_history\n"
    finally:
        mc("rm", "-f", name)


def test_unknown_container(mc):
    p = mc("diff", "no-such-container")
    assert p.returncode == 125 and "no such container" in p.stderr


def test_lookup_follows_overlayfs_rules(tmp_path):
    """layers.lookup, the lower-stack view diff uses: whiteouts, opaque dirs, files over dirs."""
    from minicontainer.storage.layers import lookup, make_whiteout
    bottom, middle, top = (tmp_path / n for n in ("bottom", "middle", "top"))
    for layer in (bottom, middle, top):
        layer.mkdir()
    (bottom / "d").mkdir(), (bottom / "d/old").write_text("x"), (bottom / "gone").write_text("x")
    (bottom / "f").mkdir(), (bottom / "f/inner").write_text("x")
    (bottom / "link").symlink_to("/etc")
    (middle / "d").mkdir(), (middle / "d/mid").write_text("x")
    fd = os.open(middle, os.O_RDONLY)
    make_whiteout("gone", fd)
    os.close(fd)
    (middle / "f").write_text("a file hides the directory below")
    (top / "d").mkdir()
    os.setxattr(top / "d", "trusted.overlay.opaque", b"y")
    (top / "d/new").write_text("x")
    stack = [top, middle, bottom]
    assert lookup(stack, "d/new") is not None
    assert lookup(stack, "d/mid") is None and lookup(stack, "d/old") is None   # opaque
    assert lookup([middle, bottom], "d/old") is not None                        # merged
    assert lookup(stack, "gone") is None
    assert stat.S_ISREG(lookup(stack, "f").st_mode) and lookup(stack, "f/inner") is None
    assert stat.S_ISLNK(lookup(stack, "link").st_mode) and lookup(stack, "link/passwd") is None
