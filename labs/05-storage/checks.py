"""Lab 05 — copy-on-write, snapshots and rollback, volumes and persistent data. One check per
task (see README.md). The checker looks at the state the scripts leave (the container lab05-snap,
the volume lab05-data), not only at what they print, and removes it afterwards.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_copy_on_write(run_script, busybox):
    """cow.sh shows a container's changes: A /data.txt, C /etc/passwd, D /bin/vi
    de: cow.sh zeigt die Änderungen eines Containers: A /data.txt, C /etc/passwd, D /bin/vi

    Hint: sh -c 'echo data > /data.txt; echo … >> /etc/passwd; rm /bin/vi' in the container, then `minicontainer diff lab05-cow`.
    Hinweis: sh -c 'echo data > /data.txt; echo … >> /etc/passwd; rm /bin/vi' im Container, dann `minicontainer diff lab05-cow`.
    """
    result = run_script("cow.sh")
    lines = {line.strip() for line in result.stdout.splitlines()}
    missing = {"A /data.txt", "C /etc/passwd", "D /bin/vi"} - lines
    assert not missing, f"not listed: {', '.join(sorted(missing))} ({result.describe()})"


@pytest.fixture
def snap_container(mc):
    yield "lab05-snap"
    mc("rm", "-f", "lab05-snap")


def test_snapshot_rollback(run_script, mc, snap_container, busybox):
    """snapshot.sh leaves lab05-snap stopped, rolled back to its snapshot v1 ("version 1")
    de: snapshot.sh hinterlässt lab05-snap gestoppt und auf den Schnappschuss v1 zurückgesetzt („version 1“)

    Hint: snapshot create lab05-snap v1; exec … 'echo "version 2" > /etc/motd'; stop -t 1; snapshot restore lab05-snap v1.
    Hinweis: snapshot create lab05-snap v1; exec … 'echo "version 2" > /etc/motd'; stop -t 1; snapshot restore lab05-snap v1.
    """
    result = run_script("snapshot.sh", timeout=90)
    inspected = mc("inspect", "lab05-snap")
    assert inspected.returncode == 0, f"there is no container lab05-snap ({result.describe()})"
    info = json.loads(inspected.stdout)[0]
    assert info["State"]["Status"] == "exited", "lab05-snap should be stopped (snapshot restore wants that)"
    tags = mc("snapshot", "ls", "lab05-snap").stdout.split()
    assert "v1" in tags, "lab05-snap has no snapshot v1"
    motd = find_upper(info) / "etc" / "motd"
    content = motd.read_text().strip() if motd.exists() else "(no /etc/motd)"
    assert content == "version 1", f"/etc/motd of lab05-snap says {content!r}, not 'version 1'"


def find_upper(info: dict) -> Path:
    """The container's upper directory: GraphDriver.Data.UpperDir, as `docker inspect` names it."""
    data = (info.get("GraphDriver") or {}).get("Data") or {}
    if data.get("UpperDir"):
        return Path(data["UpperDir"])
    for mount in info.get("Mounts", []):
        if mount.get("Destination") == "/":
            return Path(mount["UpperDir"])
    raise AssertionError("no overlay root in `minicontainer inspect`")


@pytest.fixture
def data_volume(mc):
    yield "lab05-data"
    mc("volume", "rm", "lab05-data")


def test_volume_outlives_containers(run_script, mc, data_volume, busybox):
    """volume.sh counts to 2 in a named volume that outlives both containers
    de: volume.sh zählt in einem benannten Volume bis 2, das beide Container überlebt

    Hint: -v lab05-data:/data in both `minicontainer run` lines.
    Hinweis: -v lab05-data:/data in beiden Zeilen `minicontainer run`.
    """
    result = run_script("volume.sh", timeout=90)
    assert result.stdout.strip().splitlines()[-1:] == ["count: 2"], f"expected 'count: 2' ({result.describe()})"
    inspected = mc("volume", "inspect", "lab05-data")
    assert inspected.returncode == 0, "there is no volume lab05-data"
    count = Path(json.loads(inspected.stdout)[0]["Mountpoint"]) / "count"
    assert count.is_file() and count.read_text().strip() == "2", "the volume's count file does not say 2"


def test_bind_mount_read_only(run_script, work):
    """bind.sh: the container reads a host directory it cannot write to
    de: bind.sh: der Container liest ein Host-Verzeichnis, in das er nicht schreiben kann

    Hint: -v "$PWD/site:/www:ro"
    Hinweis: -v "$PWD/site:/www:ro"
    """
    result = run_script("bind.sh")
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "read: hello from the host" in lines, f"the container did not read site/index.html ({result.describe()})"
    assert "write: denied" in lines, "the container could write into the bind mount: mount it read-only (:ro)"
    assert not (work / "site" / "new").exists()


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/storage.md (overlayfs: lower, upper, whiteouts) answers q1–q3.
    Hinweis: docs/storage.md (overlayfs: lower, upper, Whiteouts) beantwortet q1–q3.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
