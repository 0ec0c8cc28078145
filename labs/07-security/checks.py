"""Lab 07 — security: capabilities, seccomp, no_new_privs, rootless. One check per task (see README.md)."""
from __future__ import annotations

import pytest

from minicontainer.api import msg

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

    Hint: the grep runs inside each container, not on the host: capabilities(7) and proc(5) (CapEff in /proc/PID/status); `minicontainer run --help` names the flags.
    Hint 2: minicontainer run --rm --net none [--cap-drop ALL | --privileged] busybox sh -c "grep CapEff /proc/self/status | cut -f2"
    Hinweis: das grep läuft in jedem Container, nicht auf dem Host: capabilities(7) und proc(5) (CapEff in /proc/PID/status); `minicontainer run --help` nennt die Flags.
    Hinweis 2: minicontainer run --rm --net none [--cap-drop ALL | --privileged] busybox sh -c "grep CapEff /proc/self/status | cut -f2"
    """
    truth = {}
    for key, flags in (("default", []), ("none", ["--cap-drop", "ALL"])):
        truth[key] = mc("run", "--rm", "--net", "none", *flags, busybox, "sh", "-c", CAPEFF).stdout.strip()
    truth["privileged"] = host_bounding_set()
    result = run_script("caps.sh")
    got = said(result)
    wrong = [msg(f"{key}: expected {value}, got {got.get(key, 'nothing')}",
                 f"{key}: erwartet {value}, erhalten {got.get(key, 'nichts')}") for key, value in truth.items()
             if got.get(key) != value]
    if got.get("privileged") != truth["privileged"]:
        wrong.append(msg(f"(--privileged gives every capability the host itself still has: its bounding set, "
                         f"CapBnd {truth['privileged']} in the host's /proc/self/status)",
                         f"(--privileged gibt jede Capability, die der Host selbst noch hat: sein Bounding-Set, "
                         f"CapBnd {truth['privileged']} in /proc/self/status des Hosts)"))
    assert not wrong, "\n".join(wrong) + f"\n({result.describe()})"


def host_bounding_set() -> str:
    """CapBnd of this (host) process: a container, even --privileged, cannot hold more."""
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("CapBnd:"))


def test_net_admin(run_script, busybox):
    """netadmin.sh: denied by default, allowed with exactly --cap-add NET_ADMIN
    de: netadmin.sh: standardmässig verweigert, erlaubt mit genau --cap-add NET_ADMIN

    Hint: which capability allows "interface configuration" (capabilities(7))? Add exactly that one to the second run.
    Hint 2: --cap-add NET_ADMIN on the second run.
    Hinweis: welche Capability erlaubt „interface configuration“ (capabilities(7))? Genau diese beim zweiten Aufruf hinzufügen.
    Hinweis 2: --cap-add NET_ADMIN beim zweiten Aufruf.
    """
    result = run_script("netadmin.sh")
    got = said(result)
    assert got.get("default") == "denied", msg("default should be denied ", "default sollte verweigert sein ") + f"({result.describe()})"
    assert got.get("net_admin") == "allowed", msg("net_admin should be allowed ", "net_admin sollte erlaubt sein ") + f"({result.describe()})"


def test_seccomp(run_script, busybox):
    """seccomp.sh: unshare -U is blocked by the seccomp filter, not by a missing capability
    de: seccomp.sh: unshare -U blockiert der seccomp-Filter, nicht eine fehlende Capability

    Hint: docs/security.md, "seccomp": which --security-opt turns the filter off for one container?
    Hint 2: --security-opt seccomp=unconfined on the second run.
    Hinweis: docs/security.md, Abschnitt „seccomp“: welche --security-opt schaltet den Filter für einen Container ab?
    Hinweis 2: --security-opt seccomp=unconfined beim zweiten Aufruf.
    """
    result = run_script("seccomp.sh")
    got = said(result)
    assert got.get("default") == "denied", msg("default should be denied ", "default sollte verweigert sein ") + f"({result.describe()})"
    assert got.get("unconfined") == "allowed", msg("unconfined should be allowed ", "unconfined sollte erlaubt sein ") + f"({result.describe()})"


def test_no_new_privs(run_script, busybox):
    """nnp.sh: a setuid-root program gives student no root with no_new_privs, root without it
    de: nnp.sh: ein setuid-root-Programm macht student nur ohne no_new_privs zu root

    Hint: no_new_privs is on by default; docs/security.md names the --security-opt that switches it off for one container.
    Hint 2: add a second run with --security-opt no-new-privileges=false; print "nnp off: $(…)".
    Hinweis: no_new_privs ist standardmässig an; docs/security.md nennt die --security-opt, die es für einen Container abschaltet.
    Hinweis 2: einen zweiten Aufruf mit --security-opt no-new-privileges=false ergänzen; „nnp off: $(…)“ ausgeben.
    """
    result = run_script("nnp.sh", timeout=120)
    got = said(result)
    assert got.get("default") == "euid 1000", msg("default: expected 'euid 1000' ", "default: erwartet 'euid 1000' ") + f"({result.describe()})"
    assert got.get("nnp off") == "euid 0", msg("nnp off: expected 'euid 0' ", "nnp off: erwartet 'euid 0' ") + f"({result.describe()})"


def test_rootless(run_script, busybox):
    """rootless.sh: root inside a rootless container is nobody on the host
    de: rootless.sh: root in einem rootless Container ist auf dem Host nobody

    Hint: start the container as the user nobody (the as_nobody helper in rootless.sh), with a volume, and create a file in it from inside: who owns it on the host (docs/rootless.md)?
    Hint 2: as_nobody minicontainer run --rm -v "$DIR/shared:/shared" busybox sh -c 'echo "inside: $(id -u)"; touch /shared/made-inside'
    Hinweis: den Container als Benutzer nobody starten (die Hilfsfunktion as_nobody in rootless.sh), mit einem Volume, und darin von innen eine Datei anlegen: wem gehört sie auf dem Host (docs/rootless.md)?
    Hinweis 2: as_nobody minicontainer run --rm -v "$DIR/shared:/shared" busybox sh -c 'echo "inside: $(id -u)"; touch /shared/made-inside'
    """
    from minicontainer.api import probe_unprivileged_userns
    works, why = probe_unprivileged_userns()
    if not works:
        pytest.skip(msg(f"this machine forbids unprivileged user namespaces ({why}); `minicontainer doctor` shows the fix",
                        f"diese Maschine verbietet unprivilegierte User-Namespaces ({why}); `minicontainer doctor` zeigt die Abhilfe"))
    result = run_script("rootless.sh", timeout=120)
    got = said(result)
    assert got.get("inside") == "0", msg("inside: expected 0 ", "inside: erwartet 0 ") + f"({result.describe()})"
    assert got.get("on the host") == "65534", msg("on the host: expected 65534 ", "on the host: erwartet 65534 ") + f"({result.describe()})"


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: docs/security.md ("The layers, and why each one exists") and docs/rootless.md answer them.
    Hinweis: docs/security.md („The layers, and why each one exists“) und docs/rootless.md beantworten sie.
    """
    answers.expect({"q1": "c", "q2": "a", "q3": "b", "q4": "c"})
