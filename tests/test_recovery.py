"""After a host reboot (recovery.py), simulated: every container and supervisor process
killed, so every container mount gone with its namespace, and the runtime directory emptied
(/run is a tmpfs). The next command tidies the records; `system boot` starts again what the
restart policy says. A state root and a runtime directory of the test's own."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from minicontainer.state import StateStore, is_alive

pytestmark = pytest.mark.root


@pytest.fixture
def machine(tmp_path, busybox_tar):
    """mc(*args) against a fresh root with busybox, with its own runtime directory."""
    from minicontainer.api import image_store
    root, run_dir = tmp_path / "root", tmp_path / "run"
    image_store(root).import_archive(busybox_tar, "busybox")
    env = {**os.environ, "MINICONTAINER_RUNTIME_DIR": str(run_dir)}

    def mc(*args, check=True):
        p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), *args],
                           capture_output=True, text=True, timeout=60, env=env)
        assert not check or p.returncode == 0, f"{args} → {p.returncode}: {p.stderr}"
        assert "Traceback" not in p.stderr, p.stderr
        return p
    mc.root, mc.run_dir = root, run_dir
    yield mc
    names = [r.name for r in StateStore(root).list()]
    if names:
        mc("rm", "-f", *names, check=False)


def reboot(mc) -> None:
    """SIGKILL every supervisor and PID 1 of the root (a PID namespace dies with its PID 1,
    and with it the container's mounts), then empty the runtime directory."""
    held = []
    for rec in StateStore(mc.root).list():
        for pid, start in ((rec.supervisor_pid, rec.supervisor_start), (rec.pid, rec.pid_start)):
            if is_alive(pid, start):
                os.kill(pid, signal.SIGKILL)
                held.append((pid, start))
    deadline = time.monotonic() + 10
    while any(is_alive(*p) for p in held) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(is_alive(*p) for p in held)
    assert not [line for line in open("/proc/self/mountinfo") if str(mc.root) in line]
    shutil.rmtree(mc.run_dir)


def address(mc, name: str) -> str:
    return json.loads(mc("inspect", name).stdout)[0]["NetworkSettings"]["ip"]


def test_reboot_recovery_and_system_boot(machine):
    mc = machine
    mc("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
    mc("run", "-d", "--name", "gone", "--rm", "busybox", "sleep", "1000")
    mc("run", "-d", "--name", "plain", "--net", "none", "busybox", "sleep", "1000")
    mc("run", "-d", "--name", "unless", "--restart", "unless-stopped", "--net", "none", "busybox", "sleep", "1000")
    assert address(mc, "always") != address(mc, "gone")
    leases = mc.root / "networks" / "bridge" / "leases"                 # one file per lease
    assert len(list(leases.glob("*.json"))) == 2

    reboot(mc)

    ps = json.loads(mc("ps", "-a", "--format", "json").stdout)      # the next command recovers
    assert {r["name"]: (r["status"], r["exit_code"]) for r in ps} == {
        "always": ("exited", 255), "plain": ("exited", 255), "unless": ("exited", 255)}
    assert list(leases.glob("*.json")) == []                            # every lease released
    assert not list((mc.root / "containers").glob("*/merged/*"))
    mc("run", "--rm", "--name", "gone", "--net", "none", "busybox", "true")   # the name is free
    got = mc("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0").stdout
    assert " inet 10." in got, got                  # the addresses were given back (they rest a
                                                    # while before reuse: network/leases.py)

    assert sorted(mc("system", "boot").stdout.split()) == ["always", "unless"]
    ps = {r["name"]: r["status"] for r in json.loads(mc("ps", "-a", "--format", "json").stdout)}
    assert ps == {"always": "running", "plain": "exited", "unless": "running"}
    assert mc("exec", "always", "true").returncode == 0
    assert len(list(leases.glob("*.json"))) == 1                    # always is back on the bridge

    mc("stop", "-t", "1", "unless")                                     # a user's stop is kept…
    reboot(mc)
    assert sorted(mc("system", "boot").stdout.split()) == ["always"]    # …by unless-stopped only
    ps = {r["name"]: r["status"] for r in json.loads(mc("ps", "-a", "--format", "json").stdout)}
    assert ps == {"always": "running", "plain": "exited", "unless": "exited"}


def test_a_live_root_is_not_recovered(machine):
    """A missing marker alone (a runtime directory wiped while containers run, an upgrade)
    must not touch a container whose processes live."""
    mc = machine
    mc("run", "-d", "--name", "alive", "--net", "none", "busybox", "sleep", "1000")
    shutil.rmtree(mc.run_dir)
    assert json.loads(mc("ps", "--format", "json").stdout)[0]["status"] == "running"
    assert mc.run_dir.is_dir()
