"""Lab 08 — kernel modules and `minicontainer doctor`. One check per task (see README.md).

The truth each script is compared with comes from minicontainer/doctor.py: modules.sh must agree
with doctor's module states, layout.sh with its cgroup layout, and works.sh with the checker's
own attempt to use each feature. modprobe.sh is seen in /proc/modules itself: macvlan listed after
`load`, gone after `unload`. On a kernel without loadable modules that task is skipped: it runs in
the QEMU VM instead (tests/vm/, GUEST_SELECTION runs this lab's checks there both ways).
"""
from __future__ import annotations

import subprocess

import pytest

from minicontainer.api import msg

FEATURES = ("overlay", "veth", "bridge", "nf_nat")


def parse_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2:
            pairs[words[0]] = words[1]
    return pairs


def test_modules(run_script):
    """modules.sh tells for overlay, veth, bridge, nf_nat: loaded, builtin, loadable or missing
    de: modules.sh sagt für overlay, veth, bridge, nf_nat: loaded, builtin, loadable oder missing

    Hint: the table in README.md, "Background": which file does lsmod read, which one lists what is built in, where is the kernel's config? Ask in that order.
    Hint 2: check in this order: /proc/modules, modules.builtin, CONFIG_X=y (zcat /proc/config.gz), modinfo NAME, CONFIG_X=m.
    Hinweis: die Tabelle in README.de.md, „Hintergrund“: welche Datei liest lsmod, welche listet, was eingebaut ist, wo steht die Konfiguration des Kernels? In dieser Reihenfolge fragen.
    Hinweis 2: prüfe in dieser Reihenfolge: /proc/modules, modules.builtin, CONFIG_X=y (zcat /proc/config.gz), modinfo NAME, CONFIG_X=m.
    """
    from minicontainer.api import module_state
    result = run_script("modules.sh")
    said = parse_pairs(result.stdout)
    wrong = []
    for name in FEATURES:
        truth = module_state(name)
        accepted = {"missing", "unknown"} if truth.state in ("missing", "unknown") else {truth.state}
        if said.get(name) not in accepted:
            wrong.append(msg(f"{name}: you said {said.get(name, 'nothing')}, it is {truth.state} ({truth.how})",
                             f"{name}: du sagst {said.get(name, 'nichts')}, es ist {truth.state} ({truth.how})"))
    assert not wrong, "\n".join(wrong)


def feature_works(name: str) -> bool:
    commands = {
        "overlay": ["grep", "-qw", "overlay", "/proc/filesystems"],
        "veth": ["unshare", "--net", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        "bridge": ["unshare", "--net", "ip", "link", "add", "br0", "type", "bridge"],
    }
    return subprocess.run(commands[name], capture_output=True).returncode == 0


def test_works(run_script):
    """works.sh loads and tries overlay, veth and bridge: "NAME works" or "NAME fails"
    de: works.sh lädt und probiert overlay, veth und bridge: „NAME works“ oder „NAME fails“

    Hint: a feature works when using it works: /proc/filesystems lists the file systems the kernel knows; ip-link(8) creates links of type veth and bridge — in unshare --net, so your host is untouched.
    Hint 2: try overlay grep -qw overlay /proc/filesystems; try veth unshare --net ip link add v0 type veth peer name v1; bridge likewise.
    Hinweis: eine Funktion ist da, wenn ihr Gebrauch gelingt: /proc/filesystems listet die Dateisysteme, die der Kernel kennt; ip-link(8) legt Links vom Typ veth und bridge an — in unshare --net, damit dein Host unberührt bleibt.
    Hinweis 2: try overlay grep -qw overlay /proc/filesystems; try veth unshare --net ip link add v0 type veth peer name v1; bridge genauso.
    """
    result = run_script("works.sh")
    said = parse_pairs(result.stdout)
    wrong = []
    for name in ("overlay", "veth", "bridge"):
        truth = "works" if feature_works(name) else "fails"
        if said.get(name) != truth:
            wrong.append(msg(f"{name}: you said {said.get(name, 'nothing')}, it {truth}",
                             f"{name}: du sagst {said.get(name, 'nichts')}, tatsächlich: {truth}"))
    assert not wrong, "\n".join(wrong)


def no_modules() -> str:
    return msg("this kernel cannot load modules (no /proc/modules): do this task in the QEMU VM, whose Debian "
               "kernel can: `make vm-shell` in the checkout gives you a root shell there — README.md, \"Two "
               "paths\"; `minicontainer doctor` says which path applies",
               "dieser Kernel kann keine Module laden (kein /proc/modules): diese Aufgabe in der QEMU-VM lösen, "
               "deren Debian-Kernel es kann: `make vm-shell` im Checkout gibt dir dort eine root-Shell — "
               "README.de.md, „Zwei Wege“; `minicontainer doctor` sagt, welcher gilt")


def test_modprobe(run_script):
    """modprobe.sh loads macvlan, uses it, and unloads it again (modprobe, modprobe -r)
    de: modprobe.sh lädt macvlan, benutzt es und entlädt es wieder (modprobe, modprobe -r)

    Hint: modprobe(8) loads a module with what it depends on, and has an option to remove it again; lsmod(8) shows the result. ip-link(8) creates a macvlan link on top of another link.
    Hint 2: load: modprobe macvlan; lsmod | grep '^macvlan '; in unshare --net: ip link add v0 type veth peer name v1; ip link add m0 link v0 type macvlan; ip link del m0; ip link del v0. unload: modprobe -r macvlan.
    Hinweis: modprobe(8) lädt ein Modul samt dem, wovon es abhängt, und hat eine Option, um es wieder zu entfernen; lsmod(8) zeigt das Ergebnis. ip-link(8) legt einen macvlan-Link auf einem anderen Link an.
    Hinweis 2: load: modprobe macvlan; lsmod | grep '^macvlan '; in unshare --net: ip link add v0 type veth peer name v1; ip link add m0 link v0 type macvlan; ip link del m0; ip link del v0. unload: modprobe -r macvlan.
    """
    from minicontainer.api import loaded_modules, module_state
    if loaded_modules() is None:
        pytest.skip(no_modules())
    state = module_state("macvlan")
    if state.state not in ("loaded", "loadable"):
        pytest.skip(msg(f"macvlan is {state.state} on this kernel ({state.how}): modprobe has nothing to load",
                        f"macvlan ist auf diesem Kernel {state.state} ({state.how}): modprobe hat nichts zu laden"))
    was_loaded = "macvlan" in loaded_modules()
    if was_loaded and subprocess.run(["modprobe", "-r", "macvlan"], capture_output=True).returncode != 0:
        pytest.skip(msg("macvlan is loaded and in use on this machine (lsmod's Used by): the checker cannot "
                        "tell your modprobe from what was there",
                        "macvlan ist auf dieser Maschine geladen und in Gebrauch (Spalte Used by von lsmod): der "
                        "Checker kann dein modprobe nicht von dem unterscheiden, was schon da war"))
    try:
        loaded = run_script("modprobe.sh", "load", timeout=120)
        assert "macvlan" in loaded_modules(), msg("after `bash modprobe.sh load`, lsmod does not list macvlan ",
                                                  "nach `bash modprobe.sh load` listet lsmod macvlan nicht ") \
            + f"({loaded.describe()})"
        assert any(line.split()[:1] == ["macvlan"] for line in loaded.stdout.splitlines()), \
            msg("no lsmod line for macvlan in the output ", "keine lsmod-Zeile für macvlan in der Ausgabe ") \
            + f"({loaded.describe()})"
        assert "macvlan works" in loaded.stdout, \
            msg("no line 'macvlan works' ", "keine Zeile 'macvlan works' ") + f"({loaded.describe()})"
        unloaded = run_script("modprobe.sh", "unload", timeout=120)
        assert "macvlan" not in loaded_modules(), \
            msg("after `bash modprobe.sh unload`, lsmod still lists macvlan ",
                "nach `bash modprobe.sh unload` listet lsmod macvlan noch ") + f"({unloaded.describe()})"
        assert "macvlan unloaded" in unloaded.stdout, \
            msg("no line 'macvlan unloaded' ", "keine Zeile 'macvlan unloaded' ") + f"({unloaded.describe()})"
    finally:                                   # the machine as it was: loaded only if it was before
        now = "macvlan" in (loaded_modules() or ())
        if now != was_loaded:
            subprocess.run(["modprobe", *([] if was_loaded else ["-r"]), "macvlan"], capture_output=True)


def test_layout(run_script):
    """layout.sh prints this machine's cgroup layout, as doctor does
    de: layout.sh gibt das cgroup-Layout dieser Maschine aus, wie doctor

    Hint: which file system type is mounted at /sys/fs/cgroup, and is there a cgroup2 at /sys/fs/cgroup/unified? stat(1) -f prints a file system's type.
    Hint 2: stat -fc %T /sys/fs/cgroup is cgroup2fs → unified; else cgroup2fs at /sys/fs/cgroup/unified → hybrid; else legacy.
    Hinweis: welcher Dateisystemtyp ist unter /sys/fs/cgroup eingehängt, und gibt es ein cgroup2 unter /sys/fs/cgroup/unified? stat(1) -f gibt den Typ eines Dateisystems aus.
    Hinweis 2: stat -fc %T /sys/fs/cgroup ist cgroup2fs → unified; sonst cgroup2fs unter /sys/fs/cgroup/unified → hybrid; sonst legacy.
    """
    from minicontainer.api import detect_layout
    truth = detect_layout().kind
    result = run_script("layout.sh")
    words = result.stdout.split()
    printed = repr(result.stdout.strip())
    assert words[-1:] == [truth], msg(f"this machine's layout is {truth}; layout.sh printed {printed}",
                                      f"das Layout dieser Maschine ist {truth}; layout.sh gab {printed} aus")


def test_questions(answers):
    """The questions in README.md, answered in answers.toml
    de: Die Fragen aus README.de.md, beantwortet in answers.toml

    Hint: lsmod(8), modinfo(8) and capabilities(7) (CAP_SYS_MODULE) answer them.
    Hinweis: lsmod(8), modinfo(8) und capabilities(7) (CAP_SYS_MODULE) beantworten sie.
    """
    answers.expect({"q1": "a", "q2": "a", "q3": "b", "q4": "b"})
