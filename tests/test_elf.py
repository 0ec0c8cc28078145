"""elf.py: reading PT_INTERP, the loader a dynamically linked program asks the kernel for."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from conftest import REPO
from minicontainer.elf import is_static, read_pt_interp

DYNAMIC = shutil.which("true") or "/usr/bin/true"          # a dynamically linked host program


def test_read_pt_interp_agrees_with_the_rootfs_builder():
    sys.path.insert(0, str(REPO / "rootfs-builder"))
    from elf import read_elf
    expected = read_elf(DYNAMIC).interpreter
    with open(DYNAMIC, "rb") as f:
        assert expected and read_pt_interp(f) == expected
    with open("/bin/busybox", "rb") as f:                   # static: no interpreter
        assert read_pt_interp(f) is None
    with open("/etc/passwd", "rb") as f:                    # not ELF
        assert read_pt_interp(f) is None


def test_is_static():
    assert is_static(Path("/bin/busybox").read_bytes())
    assert not is_static(Path(DYNAMIC).read_bytes())
    assert not is_static(b"#!/bin/sh\n")                    # not ELF at all: not a static program
