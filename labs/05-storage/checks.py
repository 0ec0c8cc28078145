"""Lab 05 — copy-on-write, snapshots and rollback, volumes and persistent data. One check per
task (see README.md). The checker looks at the state the scripts leave (the container lab05-snap,
the volume lab05-data), not only at what they print, and removes it afterwards.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from minicontainer.api import msg


def test_copy_on_write(run_script, busybox, mc_calls):
    """cow.sh shows a container's changes: A /data.txt, C /etc/passwd, D /bin/vi
    de: cow.sh zeigt die Änderungen eines Containers: A /data.txt, C /etc/passwd, D /bin/vi

    Hint: docs/storage.md: a container's changes are the files in its upper directory; which minicontainer verb lists them like `docker diff`?
    Hint 2: in the container: add /data.txt, append a line to /etc/passwd, remove /bin/vi; then `minicontainer diff lab05-cow`.
    Hinweis: docs/storage.md: die Änderungen eines Containers sind die Dateien in seinem Upper-Verzeichnis; welches minicontainer-Verb listet sie wie `docker diff`?
    Hinweis 2: im Container /data.txt anlegen, eine Zeile an /etc/passwd anhängen, /bin/vi löschen; dann `minicontainer diff lab05-cow`.
    """
    result = run_script("cow.sh")
    lines = {line.strip() for line in result.stdout.splitlines()}
    missing = ", ".join(sorted({"A /data.txt", "C /etc/passwd", "D /bin/vi"} - lines))
    assert not missing, msg(f"not listed: {missing} ({result.describe()})", f"fehlt in der Liste: {missing} ({result.describe()})")
    assert mc_calls("run") and mc_calls("diff"), msg(
        "cow.sh printed the lines, but ran no `minicontainer run` and `minicontainer diff`: the task asks for the "
        "container's real changes", "cow.sh gibt die Zeilen aus, hat aber kein `minicontainer run` und `minicontainer diff` "
        "ausgeführt: verlangt sind die echten Änderungen eines Containers")


@pytest.fixture
def snap_container(mc):
    yield "lab05-snap"
    mc("rm", "-f", "lab05-snap")


def test_snapshot_rollback(run_script, mc, snap_container, busybox):
    """snapshot.sh leaves lab05-snap running again, rolled back to its snapshot v1 ("version 1")
    de: snapshot.sh hinterlässt lab05-snap wieder laufend, auf den Schnappschuss v1 zurückgesetzt („version 1“)

    Hint: `minicontainer snapshot --help`: a snapshot saves a container's upper directory under a tag, and restore puts it back — while the container is stopped; `start` runs the same container again.
    Hint 2: snapshot create lab05-snap v1; change /etc/motd with exec; stop the container; snapshot restore lab05-snap v1; start lab05-snap.
    Hinweis: `minicontainer snapshot --help`: ein Schnappschuss sichert das Upper-Verzeichnis eines Containers unter einem Tag, restore setzt es zurück — bei gestopptem Container; `start` startet denselben Container wieder.
    Hinweis 2: snapshot create lab05-snap v1; /etc/motd mit exec ändern; den Container stoppen; snapshot restore lab05-snap v1; start lab05-snap.
    """
    result = run_script("snapshot.sh", timeout=90)
    inspected = mc("inspect", "lab05-snap")
    assert inspected.returncode == 0, msg(f"there is no container lab05-snap ({result.describe()})",
                                          f"es gibt keinen Container lab05-snap ({result.describe()})")
    info = json.loads(inspected.stdout)[0]
    tags = mc("snapshot", "ls", "lab05-snap").stdout.split()
    assert "v1" in tags, msg("lab05-snap has no snapshot v1", "lab05-snap hat keinen Schnappschuss v1")
    # The restore itself: a restored container's upper directory no longer holds "version 2".
    motd = find_upper(info) / "etc" / "motd"
    content = motd.read_text().strip() if motd.exists() else msg("(no /etc/motd)", "(kein /etc/motd)")
    assert content == "version 1", msg(f"/etc/motd of lab05-snap says {content!r}, not 'version 1'",
                                       f"/etc/motd von lab05-snap sagt {content!r}, nicht 'version 1'")
    assert info["State"]["Status"] == "running", msg(
        f"lab05-snap is {info['State']['Status']}, not running: start it again after the restore "
        f"(`minicontainer start lab05-snap`)",
        f"lab05-snap ist {info['State']['Status']}, nicht laufend: nach dem Zurücksetzen wieder starten "
        f"(`minicontainer start lab05-snap`)")
    seen = mc("exec", "lab05-snap", "cat", "/etc/motd").stdout.strip()
    assert seen == "version 1", msg(f"inside the running lab05-snap, /etc/motd says {seen!r}, not 'version 1'",
                                    f"im laufenden lab05-snap sagt /etc/motd {seen!r}, nicht 'version 1'")


def find_upper(info: dict) -> Path:
    """The container's upper directory: GraphDriver.Data.UpperDir, as `docker inspect` names it."""
    data = (info.get("GraphDriver") or {}).get("Data") or {}
    if data.get("UpperDir"):
        return Path(data["UpperDir"])
    for mount in info.get("Mounts", []):
        if mount.get("Destination") == "/":
            return Path(mount["UpperDir"])
    raise AssertionError(msg("no overlay root in `minicontainer inspect`", "kein Overlay-Root in `minicontainer inspect`"))


@pytest.fixture
def data_volume(mc):
    yield "lab05-data"
    mc("volume", "rm", "lab05-data")


def test_volume_outlives_containers(run_script, mc, data_volume, busybox):
    """volume.sh counts to 2 in a named volume that outlives both containers
    de: volume.sh zählt in einem benannten Volume bis 2, das beide Container überlebt

    Hint: a named volume lives outside every container (docs/storage.md, "Volumes"); `run --help` shows the option that mounts one.
    Hint 2: -v lab05-data:/data in both `minicontainer run` lines: the second container finds what the first wrote.
    Hinweis: ein benanntes Volume liegt ausserhalb aller Container (docs/storage.md, "Volumes"); `run --help` zeigt die Option, die eines einhängt.
    Hinweis 2: -v lab05-data:/data in beiden Zeilen `minicontainer run`: der zweite Container findet, was der erste geschrieben hat.
    """
    result = run_script("volume.sh", timeout=90)
    assert result.stdout.strip().splitlines()[-1:] == ["count: 2"], msg(f"expected 'count: 2' ({result.describe()})",
                                                                        f"erwartet 'count: 2' ({result.describe()})")
    inspected = mc("volume", "inspect", "lab05-data")
    assert inspected.returncode == 0, msg("there is no volume lab05-data", "es gibt kein Volume lab05-data")
    count = Path(json.loads(inspected.stdout)[0]["Mountpoint"]) / "count"
    assert count.is_file() and count.read_text().strip() == "2", msg("the volume's count file does not say 2",
                                                                     "die Datei count im Volume sagt nicht 2")


def test_bind_mount_read_only(run_script, work, mc_calls):
    """bind.sh: the container reads a host directory it cannot write to
    de: bind.sh: der Container liest ein Host-Verzeichnis, in das er nicht schreiben kann

    Hint: a bind mount shows a host directory inside the container (-v HOST_PATH:CONTAINER_PATH); `run --help` names the suffix that makes it read-only.
    Hint 2: -v "$PWD/site:/www:ro" (an absolute host path: $PWD).
    Hinweis: ein Bind-Mount zeigt ein Host-Verzeichnis im Container (-v HOST_PFAD:CONTAINER_PFAD); `run --help` nennt die Endung, die ihn schreibgeschützt macht.
    Hinweis 2: -v "$PWD/site:/www:ro" (ein absoluter Host-Pfad: $PWD).
    """
    result = run_script("bind.sh")
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "read: hello from the host" in lines, msg(f"the container did not read site/index.html ({result.describe()})",
                                                     f"der Container hat site/index.html nicht gelesen ({result.describe()})")
    assert "write: denied" in lines, msg("the container could write into the bind mount: mount it read-only (:ro)",
                                         "der Container konnte in den Bind-Mount schreiben: schreibgeschützt einhängen (:ro)")
    assert mc_calls("run"), msg("bind.sh printed the lines, but ran no `minicontainer run`: the container must read and try to write",
                                "bind.sh gibt die Zeilen aus, hat aber kein `minicontainer run` ausgeführt: der Container soll lesen und schreiben versuchen")
    assert not (work / "site" / "new").exists(), msg("site/new exists: the container wrote into the host directory",
                                                     "site/new existiert: der Container hat ins Host-Verzeichnis geschrieben")


def test_image_layers(work, mc, busybox, image_fs):
    """layers/Containerfile builds lab05-layers: one layer adds /big, the next hides it with a whiteout
    de: layers/Containerfile baut lab05-layers: eine Schicht legt /big an, die nächste verdeckt es mit einem Whiteout

    Hint: docs/docker-compat.md, "build": every RUN is a layer of its own; what does overlayfs keep in the upper layer when a file of a lower one is deleted?
    Hint 2: two RUN lines after FROM busybox: `RUN dd if=/dev/zero of=/big bs=1k count=512`, then `RUN rm /big`.
    Hinweis: docs/docker-compat.md, „build“: jedes RUN ist eine eigene Schicht; was legt overlayfs in der oberen Schicht ab, wenn eine Datei einer unteren gelöscht wird?
    Hinweis 2: zwei RUN-Zeilen nach FROM busybox: `RUN dd if=/dev/zero of=/big bs=1k count=512`, dann `RUN rm /big`.
    """
    import stat
    if not (work / "layers" / "Containerfile").is_file():
        pytest.fail(msg("layers/Containerfile is missing", "layers/Containerfile fehlt"), pytrace=False)
    built = mc("build", "-t", "lab05-layers", work / "layers", timeout=120)
    try:
        assert built.returncode == 0, msg("the build fails: ", "der Build schlägt fehl: ") + built.stderr.strip()[-300:]
        layers = image_fs("lab05-layers").layers[len(image_fs("busybox").layers):]
        sizes = [(layer / "big").stat().st_size for layer in layers if (layer / "big").is_file()]
        assert sizes == [512 * 1024], msg(f"no layer holds a /big of 512 KiB (found: {sizes})",
                                          f"keine Schicht enthält ein /big mit 512 KiB (gefunden: {sizes})")
        holder = next(i for i, layer in enumerate(layers) if (layer / "big").is_file())
        hidden = [layer for layer in layers[holder + 1:] if (layer / "big").exists()
                  and stat.S_ISCHR((layer / "big").lstat().st_mode) and (layer / "big").lstat().st_rdev == 0]
        assert hidden, msg("no later layer hides /big: the file must be removed in a step of its own (a whiteout, "
                           "character device 0/0)", "keine spätere Schicht verdeckt /big: die Datei muss in einem "
                           "eigenen Schritt gelöscht werden (ein Whiteout, Zeichengerät 0/0)")
        seen = mc("run", "--rm", "--net", "none", "lab05-layers", "ls", "/big")
        assert seen.returncode != 0, msg("a container of lab05-layers still sees /big",
                                         "ein Container von lab05-layers sieht /big noch")
    finally:
        mc("image", "rm", "lab05-layers")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/storage.md (overlayfs: lower, upper, whiteouts) answers q1–q3.
    Hinweis: docs/storage.md (overlayfs: lower, upper, Whiteouts) beantwortet q1–q3.
    """
    answers.expect({"q1": "b", "q2": "c", "q3": "a", "q4": "b"})
