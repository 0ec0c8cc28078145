"""Lab 07 — security: capabilities, seccomp, no_new_privs, rootless. One check per task (see README.md)."""
from __future__ import annotations

import pytest

CAPEFF = "grep CapEff /proc/self/status | cut -f2"


def said(result) -> dict[str, str]:
    """'key: value' or 'key value' lines → {key: value}."""
    pairs = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":") if ":" in line else line.partition(" ")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


def test_capabilities(run_script, mc, busybox):
    """caps.sh prints root's CapEff in a default, a --cap-drop ALL and a --privileged container
    de: caps.sh gibt CapEff von root in einem Standard-, einem --cap-drop-ALL- und einem --privileged-Container aus

    Hint: minicontainer run --rm --net none [--cap-drop ALL | --privileged] busybox sh -c "grep CapEff /proc/self/status | cut -f2"
    Hinweis: minicontainer run --rm --net none [--cap-drop ALL | --privileged] busybox sh -c "grep CapEff /proc/self/status | cut -f2"
    """
    truth = {}
    for key, flags in (("default", []), ("none", ["--cap-drop", "ALL"]), ("privileged", ["--privileged"])):
        truth[key] = mc("run", "--rm", "--net", "none", *flags, busybox, "sh", "-c", CAPEFF).stdout.strip()
    result = run_script("caps.sh")
    got = said(result)
    wrong = [f"{key}: expected {value}, got {got.get(key, 'nothing')}" for key, value in truth.items()
             if got.get(key) != value]
    assert not wrong, "\n".join(wrong) + f"\n({result.describe()})"


def test_net_admin(run_script, busybox):
    """netadmin.sh: denied by default, allowed with exactly --cap-add NET_ADMIN
    de: netadmin.sh: standardmässig verweigert, erlaubt mit genau --cap-add NET_ADMIN

    Hint: --cap-add NET_ADMIN on the second run (capabilities(7) lists what it allows).
    Hinweis: --cap-add NET_ADMIN beim zweiten Aufruf (capabilities(7) listet, was sie erlaubt).
    """
    result = run_script("netadmin.sh")
    got = said(result)
    assert got.get("default") == "denied", f"default should be denied ({result.describe()})"
    assert got.get("net_admin") == "allowed", f"net_admin should be allowed ({result.describe()})"


def test_seccomp(run_script, busybox):
    """seccomp.sh: unshare -U is blocked by the seccomp filter, not by a missing capability
    de: seccomp.sh: unshare -U blockiert der seccomp-Filter, nicht eine fehlende Capability

    Hint: --security-opt seccomp=unconfined on the second run.
    Hinweis: --security-opt seccomp=unconfined beim zweiten Aufruf.
    """
    result = run_script("seccomp.sh")
    got = said(result)
    assert got.get("default") == "denied", f"default should be denied ({result.describe()})"
    assert got.get("unconfined") == "allowed", f"unconfined should be allowed ({result.describe()})"


def test_no_new_privs(run_script, busybox):
    """nnp.sh: a setuid-root program gives student no root with no_new_privs, root without it
    de: nnp.sh: ein setuid-root-Programm macht student mit no_new_privs nicht zu root, ohne schon

    Hint: add a second run with --security-opt no-new-privileges=false; print "nnp off: $(…)".
    Hinweis: einen zweiten Aufruf mit --security-opt no-new-privileges=false ergänzen; "nnp off: $(…)" ausgeben.
    """
    result = run_script("nnp.sh", timeout=120)
    got = said(result)
    assert got.get("default") == "euid 1000", f"default: expected 'euid 1000' ({result.describe()})"
    assert got.get("nnp off") == "euid 0", f"nnp off: expected 'euid 0' ({result.describe()})"


def test_rootless(run_script, busybox):
    """rootless.sh: root inside a rootless container is nobody on the host
    de: rootless.sh: root in einem rootless Container ist auf dem Host nobody

    Hint: as_nobody minicontainer run --rm -v "$DIR/shared:/shared" busybox sh -c 'echo "inside: $(id -u)"; touch /shared/made-inside'
    Hinweis: as_nobody minicontainer run --rm -v "$DIR/shared:/shared" busybox sh -c 'echo "inside: $(id -u)"; touch /shared/made-inside'
    """
    from minicontainer.doctor import probe_unprivileged_userns
    works, why = probe_unprivileged_userns()
    if not works:
        pytest.skip(f"this machine forbids unprivileged user namespaces ({why}); `minicontainer doctor` shows the fix")
    result = run_script("rootless.sh", timeout=120)
    got = said(result)
    assert got.get("inside") == "0", f"inside: expected 0 ({result.describe()})"
    assert got.get("on the host") == "65534", f"on the host: expected 65534 ({result.describe()})"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/security.md ("The layers, and why each one exists") and docs/rootless.md answer them.
    Hinweis: docs/security.md („The layers, and why each one exists“) und docs/rootless.md beantworten sie.
    """
    answers.expect({"q1": "c", "q2": "a", "q3": "b", "q4": "c"})
