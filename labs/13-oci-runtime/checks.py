"""Lab 13 — one container, three ways: minicontainer, podman + runc, podman + minicontainer-oci.
One check per task (see README.md). The podman store lives in the work directory (./podman);
the checker resets it afterwards.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicontainer.api import msg

# Docker's 14 default capabilities (minicontainer run) and podman's 11 (containers.conf).
DOCKER_CAPEFF = "00000000a80425fb"
PODMAN_CAPEFF = "00000000800405fb"
OCI = str(Path(sys.executable).with_name("minicontainer-oci"))


@pytest.fixture(scope="module", autouse=True)
def podman_store(work):
    if not shutil.which("podman"):
        pytest.skip(msg("podman is not installed (scripts/setup.sh installs it)",
                        "podman ist nicht installiert (scripts/setup.sh installiert es)"))
    yield
    run = "/tmp/lab13-" + hashlib.md5(str(work).encode()).hexdigest()[:10]    # as the scripts
    store = ["podman", "--root", str(work / "podman/root"), "--runroot", run, "--storage-driver", "vfs"]
    subprocess.run([*store, "system", "reset", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(run, ignore_errors=True)


def capeff(result) -> str:
    found = re.search(r"^capeff: ([0-9a-f]{16})$", result.stdout, re.M)
    assert found, msg(f"no line 'capeff: HEX' ({result.describe()})", f"keine Zeile 'capeff: HEX' ({result.describe()})")
    return found.group(1)


def test_minicontainer(run_script, busybox):
    """minicontainer.sh prints the container's CapEff: Docker's 14 capabilities
    de: minicontainer.sh gibt CapEff des Containers aus: die 14 Capabilities von Docker

    Hint: minicontainer run --rm busybox sh -c 'echo "capeff: $(grep CapEff /proc/self/status | cut -f2)"'
    Hinweis: minicontainer run --rm busybox sh -c 'echo "capeff: $(grep CapEff /proc/self/status | cut -f2)"'
    """
    seen = capeff(run_script("minicontainer.sh", timeout=120))
    assert seen == DOCKER_CAPEFF, msg(f"capeff {seen}, expected {DOCKER_CAPEFF} (Docker's default set)",
                                      f"capeff {seen}, erwartet {DOCKER_CAPEFF} (die Vorgabe von Docker)")


def test_podman_runc(run_script, busybox):
    """podman-runc.sh runs busybox with podman and runc: podman's 11 capabilities
    de: podman-runc.sh startet busybox mit podman und runc: die 11 Capabilities von podman

    Hint: minicontainer image export busybox -o busybox.tar; podman … load -i busybox.tar; podman … run --rm --runtime runc --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 IMAGE sh -c '…'
    Hinweis: minicontainer image export busybox -o busybox.tar; podman … load -i busybox.tar; podman … run --rm --runtime runc --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 IMAGE sh -c '…'
    """
    seen = capeff(run_script("podman-runc.sh", timeout=240))
    assert seen == PODMAN_CAPEFF, msg(f"capeff {seen}, expected {PODMAN_CAPEFF} (podman's default set)",
                                      f"capeff {seen}, erwartet {PODMAN_CAPEFF} (die Vorgabe von podman)")


def test_podman_minicontainer_oci(run_script, work, busybox):
    """podman-mc.sh: the same config.json, run by minicontainer-oci, narrated into steps.txt
    de: podman-mc.sh: dieselbe config.json, ausgeführt von minicontainer-oci, erzählt in steps.txt

    Hint: podman … run --rm --runtime "$MINICONTAINER_OCI" --annotation org.minicontainer.explain=$PWD/steps.txt …; then echo "steps: $(grep -c '^▸' steps.txt)"
    Hinweis: podman … run --rm --runtime "$MINICONTAINER_OCI" --annotation org.minicontainer.explain=$PWD/steps.txt …; dann echo "steps: $(grep -c '^▸' steps.txt)"
    """
    result = run_script("podman-mc.sh", timeout=240, extra_env={"MINICONTAINER_OCI": OCI})
    seen = capeff(result)
    assert seen == PODMAN_CAPEFF, msg(f"capeff {seen}: with the same config.json minicontainer-oci must give "
                                      f"what runc gave ({PODMAN_CAPEFF})",
                                      f"capeff {seen}: mit derselben config.json muss minicontainer-oci "
                                      f"dasselbe ergeben wie runc ({PODMAN_CAPEFF})")
    steps = work / "steps.txt"
    assert steps.is_file(), msg("steps.txt is missing: pass --annotation org.minicontainer.explain=$PWD/steps.txt",
                                "steps.txt fehlt: --annotation org.minicontainer.explain=$PWD/steps.txt angeben")
    text = steps.read_text(errors="replace")
    count = len(re.findall(r"^▸", text, re.M))
    for step in ("create new namespaces", "pivot_root", "wait for `start`", "execute the command"):
        assert step in text, msg(f"steps.txt does not narrate {step!r}", f"steps.txt erzählt {step!r} nicht")
    said = re.search(r"^steps: (\d+)$", result.stdout, re.M)
    assert said and int(said.group(1)) == count, \
        msg(f"expected a line 'steps: {count}' ({result.describe()})", f"erwartet eine Zeile 'steps: {count}' ({result.describe()})")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/oci.md, "Who waits for PID 1" and "The state machine"; compare your three capeff lines.
    Hinweis: docs/oci.md, "Who waits for PID 1" und "The state machine"; vergleiche deine drei capeff-Zeilen.
    """
    answers.expect({"q1": "b", "q2": "b", "q3": "b"})
