"""Capabilities: names and masks, Docker's --cap-add/--cap-drop rules, and the five sets a
real process ends up with — before and, above all, after execve (where it matters)."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest

from minicontainer import security
from minicontainer.errors import ConfigError
from minicontainer.kernel import capabilities
from security_child import ChildError, exec_in_child, in_child, own_status, status_fields

DOCKER_DEFAULT = "00000000a80425fb"
root = pytest.mark.root


# ── names and masks ───────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("spelling", ["net_raw", "NET_RAW", "CAP_NET_RAW", "cap_net_raw", "Net_Raw", " NET_RAW "])
def test_capability_names_are_case_insensitive_with_optional_prefix(spelling):
    assert capabilities.parse(spelling) == "CAP_NET_RAW"


def test_unknown_capability_names_the_man_page():
    with pytest.raises(ConfigError, match=r"unknown capability FOO: see `man 7 capabilities`"):
        capabilities.parse("FOO")


def test_docker_default_set_is_a80425fb():
    assert f"{capabilities.to_mask(security.DEFAULT_CAPABILITIES):016x}" == DOCKER_DEFAULT
    assert sorted(capabilities.from_mask(0xA80425FB)) == sorted(security.DEFAULT_CAPABILITIES)


def test_read_sets_parses_proc_status():
    sets = capabilities.read_sets()
    assert set(sets) == set(capabilities.SETS)
    assert f"{sets['effective']:016x}" == own_status()["CapEff"]


# ── Docker's rules for --cap-add / --cap-drop ─────────────────────────────────────────────

def caps(**kw):
    return set(security.resolve_capabilities(**kw))


def test_default_set():
    assert caps() == set(security.DEFAULT_CAPABILITIES)


def test_drop_and_add_one():
    assert caps(cap_drop=["NET_RAW"]) == set(security.DEFAULT_CAPABILITIES) - {"CAP_NET_RAW"}
    assert caps(cap_add=["sys_admin"]) == set(security.DEFAULT_CAPABILITIES) | {"CAP_SYS_ADMIN"}


def test_add_wins_over_drop_of_the_same_capability():
    assert "CAP_NET_RAW" in caps(cap_add=["NET_RAW"], cap_drop=["NET_RAW"])


def test_drop_all_keeps_only_the_adds():
    assert caps(cap_drop=["ALL"]) == set()
    assert caps(cap_drop=["all"], cap_add=["CHOWN", "KILL"]) == {"CAP_CHOWN", "CAP_KILL"}


def test_add_all_minus_drops():
    everything = caps(cap_add=["ALL"])
    assert "CAP_SYS_ADMIN" in everything and set(security.DEFAULT_CAPABILITIES) <= everything
    assert caps(cap_add=["ALL"], cap_drop=["SYS_ADMIN"]) == everything - {"CAP_SYS_ADMIN"}


def test_comma_separated_values():
    assert caps(cap_drop=["ALL"], cap_add=["CHOWN,KILL"]) == {"CAP_CHOWN", "CAP_KILL"}


def test_privileged_is_every_capability_minicontainer_itself_holds():
    own = capabilities.read_sets()["bounding"]
    assert capabilities.to_mask(caps(privileged=True)) == own & ((1 << (capabilities.last_cap() + 1)) - 1)


def test_bad_names_fail_before_anything_happens():
    with pytest.raises(ConfigError, match="unknown capability NET_RWA"):
        security.resolve(cap_add=["NET_RWA"])
    with pytest.raises(ConfigError, match="unknown capability FOO"):
        security.resolve(cap_drop=["FOO"])


def test_a_capability_minicontainer_lacks_cannot_be_given(monkeypatch):
    # A fake: this machine's own bounding set is what it is, so pretend CAP_SYS_TIME is missing
    # (as inside a restricted outer container).
    full = capabilities.read_sets()["bounding"]
    monkeypatch.setattr(security, "_own_bounding_set", lambda: full & ~(1 << capabilities.CAPABILITIES["CAP_SYS_TIME"]))
    with pytest.raises(ConfigError, match="cannot give the container CAP_SYS_TIME.*--cap-drop SYS_TIME"):
        security.resolve(cap_add=["SYS_TIME"])


# ── real processes ────────────────────────────────────────────────────────────────────────

def status_after_exec(policy, **user) -> dict[str, str]:
    """The status of /bin/cat reading its own /proc entry, after the policy was applied."""
    code, out = exec_in_child(lambda: security.apply(policy, **user), ["/bin/cat", "/proc/self/status"])
    assert code == 0
    return status_fields(out)


@root
def test_default_policy_as_root_matches_docker():
    s = status_after_exec(security.resolve())
    assert (s["CapInh"], s["CapPrm"], s["CapEff"], s["CapBnd"], s["CapAmb"]) == (
        "0000000000000000", DOCKER_DEFAULT, DOCKER_DEFAULT, DOCKER_DEFAULT, "0000000000000000")
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"


@root
def test_sets_before_execve_are_the_same():
    def apply_and_read():
        security.apply(security.resolve())
        return own_status()
    s = in_child(apply_and_read)
    assert (s["CapPrm"], s["CapEff"], s["CapBnd"], s["CapInh"], s["CapAmb"]) == (
        DOCKER_DEFAULT, DOCKER_DEFAULT, DOCKER_DEFAULT, "0000000000000000", "0000000000000000")


@root
def test_non_root_user_keeps_caps_until_execve_then_has_none():
    # keepcaps: after setresuid the Python process still holds the set (runc's order)...
    def switch_and_read():
        security.switch_user_and_drop(security.resolve(), 65534, 65534, [65534])
        return own_status()
    before = in_child(switch_and_read)
    assert before["Uid"] == "65534 65534 65534 65534" and before["CapEff"] == DOCKER_DEFAULT
    # ...and execve as a non-root user grants nothing: Docker's `--user 65534` shows the same.
    s = status_after_exec(security.resolve(), uid=65534, gid=65534, groups=[65534])
    assert s["Uid"] == "65534 65534 65534 65534" and s["Gid"] == "65534 65534 65534 65534"
    assert s["Groups"] == "65534"
    assert (s["CapPrm"], s["CapEff"], s["CapBnd"]) == ("0000000000000000", "0000000000000000", DOCKER_DEFAULT)


@root
def test_cap_drop_all_leaves_nothing():
    s = status_after_exec(security.resolve(cap_drop=["ALL"]))
    assert s["CapEff"] == s["CapPrm"] == s["CapBnd"] == "0000000000000000"


@root
def test_cap_add_sys_admin():
    s = status_after_exec(security.resolve(cap_add=["SYS_ADMIN"]))
    assert s["CapEff"] == f"{0xA80425FB | 1 << 21:016x}"


@root
def test_privileged_keeps_everything_and_has_no_filter():
    s = status_after_exec(security.resolve(privileged=True))
    assert s["CapEff"] == own_status()["CapBnd"] and s["Seccomp"] == "0"


@root
def test_without_no_new_privs_seccomp_goes_in_before_the_drop():
    policy = security.resolve(security_opt=["no-new-privileges=false"])
    s = status_after_exec(policy)
    assert s["NoNewPrivs"] == "0" and s["Seccomp"] == "2" and s["CapEff"] == DOCKER_DEFAULT

    def wrong_order():                       # drop first: no CAP_SYS_ADMIN, no no_new_privs
        security.drop_capabilities(policy)
        security.apply_seccomp(policy)
    with pytest.raises(ChildError, match="PR_SET_SECCOMP.*EACCES.*no_new_privs or CAP_SYS_ADMIN"):
        in_child(wrong_order)


@root
def test_bounding_set_must_be_dropped_first():
    def wrong_order():
        capabilities.set_sets(effective=0xA80425FB & ~(1 << 8), permitted=0xA80425FB & ~(1 << 8), inheritable=0)
        capabilities.drop_bounding(0xA80425FB)
    with pytest.raises(ChildError, match="PR_CAPBSET_DROP.*EPERM.*CAP_SETPCAP"):
        in_child(wrong_order)


@root
def test_no_new_privs_stops_a_setuid_root_program():
    """A setuid-root copy of `id`, run as uid 65534: root without no_new_privs, not with it."""
    place = tempfile.mkdtemp(prefix="mc-nnp-", dir="/tmp")
    try:
        if os.statvfs(place).f_flag & os.ST_NOSUID:
            pytest.skip("/tmp is mounted nosuid here")
        os.chmod(place, 0o755)
        suid_id = os.path.join(place, "id")
        shutil.copy("/usr/bin/id", suid_id)
        os.chmod(suid_id, 0o755 | stat.S_ISUID)
        for opt, expected in (("no-new-privileges=false", "0"), ("no-new-privileges=true", "65534")):
            policy = security.resolve(security_opt=[opt, "seccomp=unconfined"])
            code, out = exec_in_child(lambda: security.apply(policy, uid=65534, gid=65534),
                                      [suid_id, "-u"])
            assert (code, out.strip()) == (0, expected), opt
    finally:
        shutil.rmtree(place)
