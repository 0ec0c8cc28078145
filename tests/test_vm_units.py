"""minicontainer/vm without QEMU running: the command line, sizes, the accelerator choice and the
refusals that happen before anything is started (the real guests: tests/test_vm_qemu.py)."""
from pathlib import Path

import pytest

from minicontainer.errors import VmError
from minicontainer.vm import accel, qemu
from minicontainer.vm.disks import check_target, parse_size
from minicontainer.vm.machine import VmStore, create
from minicontainer.vm.migration import migrate


def test_parse_size():
    assert parse_size("1G", what="--disk") == 1 << 30
    assert parse_size("512M", what="--disk") == 512 << 20
    assert parse_size("64KiB", what="--disk") == 64 << 10
    for bad in ("", "0", "1X", "-1G", "G"):
        with pytest.raises(VmError, match="invalid --disk"):
            parse_size(bad, what="--disk")


def test_command_line_is_one_machine_description(tmp_path, monkeypatch):
    monkeypatch.setattr(qemu, "find_qemu", lambda: "/usr/bin/qemu-system-x86_64")
    args = qemu.command(name="v", accel_args=accel.Choice("tcg", "").qemu_args(), memory_mb=256,
                        kernel=Path("/k"), initramfs=Path("/i"), disk=tmp_path / "d.qcow2", run_dir=tmp_path,
                        console_log=tmp_path / "console.log", incoming="defer")
    line = " ".join(args)
    assert "-accel tcg,thread=single" in line and "-m 256" in line and "-incoming defer" in line
    assert f"file.filename={tmp_path}/d.qcow2" in line and f"unix:{tmp_path}/qmp.sock,server=on" in line
    assert args[-2:] == ["-incoming", "defer"] and "-daemonize" in args


def test_socket_path_too_long_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(qemu, "find_qemu", lambda: "qemu")
    deep = tmp_path / ("x" * 100)
    with pytest.raises(VmError, match="longer than a unix socket path"):
        qemu.command(name="v", accel_args=[], memory_mb=64, kernel=Path("/k"), initramfs=Path("/i"),
                     disk=Path("/d"), run_dir=deep, console_log=deep / "c.log")


def test_accelerator_override_and_reason(monkeypatch):
    monkeypatch.setenv("MC_VM_ACCEL", "tcg")
    assert accel.choose().accel == "tcg" and accel.choose().qemu_args() == ["-accel", "tcg,thread=single"]
    monkeypatch.setenv("MC_VM_ACCEL", "")
    choice = accel.choose()
    assert choice.accel in ("kvm", "tcg") and choice.reason
    assert (choice.accel == "kvm") == (accel.kvm_problem() == "")


def test_refusals_before_anything_exists(tmp_path):
    store = VmStore(tmp_path)
    with pytest.raises(VmError, match="invalid VM name"):
        create(store, "../escape")
    with pytest.raises(VmError, match="invalid --memory"):
        create(store, "ok", memory_mb=8)
    with pytest.raises(VmError, match="host 'elsewhere' is not running"):
        migrate(store, "ok", "elsewhere")
    with pytest.raises(VmError, match="no VM named 'ok'"):
        migrate(store, "ok", "localhost")
    assert not (tmp_path / "vms").exists() or not list((tmp_path / "vms").iterdir())


def test_storage_target_checks(tmp_path):
    (tmp_path / "taken.qcow2").write_text("")
    with pytest.raises(VmError, match="exists already"):
        check_target(tmp_path / "taken.qcow2", 1)
    with pytest.raises(VmError, match="no directory"):
        check_target(tmp_path / "nodir" / "d.qcow2", 1)
    with pytest.raises(VmError, match="MB free"):
        check_target(tmp_path / "d.qcow2", 1 << 60)
    check_target(tmp_path / "d.qcow2", 1)
