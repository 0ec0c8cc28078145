"""Concurrency torture: stop, kill, rm, exec, pause, unpause and inspect of one container,
all at once in a random order, for 100 rounds (as a crowd of users and scripts would).

The verdict: every call ends (no stuck lock: each round has a deadline), none ends in a
traceback (a refusal is a one-line MinicontainerError), and after each round the record
agrees with the kernel — running ⇔ its PID 1 lives, paused ⇔ its cgroup is frozen, exited ⇒
nothing of it runs and its cgroup is gone. Seven forked workers call the library (a CLI
process each would cost ~100 ms of start-up per call; the locks are the same flock(2)s).
"""
from __future__ import annotations

import multiprocessing
import os
import random
import time
import traceback

import pytest

from minicontainer import api
from minicontainer.errors import MinicontainerError
from minicontainer.state import StateStore, is_alive

pytestmark = pytest.mark.root

ROUNDS = int(os.environ.get("MC_TORTURE_ROUNDS", "100"))
OPS = ("stop", "kill", "rm", "exec", "pause", "unpause", "inspect")


def call(args):
    """In a worker: one verb; ("ok"|"refused"|"BUG", text)."""
    op, ref, root = args
    try:
        if op == "stop":
            api.stop_container(ref, timeout=0.5, root=root)
        elif op == "kill":
            api.kill_container(ref, root=root)
        elif op == "rm":
            api.remove_container(ref, force=True, root=root)
        elif op == "exec":
            api.exec_in_container(ref, ["true"], root=root)
        elif op == "pause":
            api.pause_container(ref, root=root)
        elif op == "unpause":
            api.unpause_container(ref, root=root)
        else:
            api.inspect_container(ref, root=root)
        return "ok", op
    except MinicontainerError as e:
        text = str(e)
        return ("refused", f"{op}: {text}") if "\n" not in text.strip() else ("BUG", f"{op}: {text}")
    except BaseException:
        return "BUG", f"{op}:\n{traceback.format_exc()}"


def settle(store, cid, timeout=15.0):
    """Wait until no one is mid-way: gone, running, paused, or exited with its owner done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = store.load(cid)
        if rec is None or rec.status in ("running", "paused"):
            return rec
        if rec.status == "exited" and not is_alive(rec.supervisor_pid, rec.supervisor_start):
            return rec
        time.sleep(0.05)
    raise AssertionError(f"container {cid[:12]} did not settle: {store.load(cid)}")


def frozen(cgroup) -> bool:
    """The kernel's word: v1 freezer.state, v2 cgroup.events."""
    paths = getattr(cgroup, "paths", None)
    if paths is not None and "freezer" in paths:
        return (paths["freezer"] / "freezer.state").read_text().strip() == "FROZEN"
    return "frozen 1" in (cgroup.path / "cgroup.events").read_text()


def check_against_kernel(rec) -> None:
    from minicontainer.cgroups import open_cgroup
    alive = is_alive(rec.pid, rec.pid_start)
    cgroup = open_cgroup(rec.cgroup, rec.cgroup_root) if rec.cgroup else None
    if rec.status == "running":
        assert alive, rec
        assert cgroup is None or not frozen(cgroup), rec
    elif rec.status == "paused":
        assert alive and cgroup is not None and frozen(cgroup), rec
    else:
        assert not alive, rec
        assert cgroup is None or not cgroup.exists(), rec


def test_concurrent_verbs_on_one_container(mc_root):
    rng = random.Random(int(os.environ.get("MC_TORTURE_SEED", "16")))
    store = StateStore(mc_root)
    name = f"torture-{os.getpid()}"
    refusals = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(len(OPS)) as pool:
        try:
            for round_ in range(ROUNDS):
                rec = store.load(store.find(name).id) if any(r.name == name for r in store.list()) else None
                if rec is None or rec.status != "running":
                    if rec is not None:
                        api.remove_container(name, force=True, root=mc_root)
                    cid = api.Container("busybox", ["sleep", "1000"], root=mc_root, name=name,
                                        net="none", detach=True, init=True).start()
                else:
                    cid = rec.id
                ops = list(OPS)
                rng.shuffle(ops)
                results = pool.map_async(call, [(op, name, mc_root) for op in ops]).get(timeout=60)
                bugs = [text for kind, text in results if kind == "BUG"]
                assert not bugs, f"round {round_}: {bugs}"
                refusals += sum(kind == "refused" for kind, _ in results)
                rec = settle(store, cid)
                if rec is not None:
                    check_against_kernel(rec)
                with open(mc_root / "containers" / ".lock") as lock:     # nobody holds it now
                    import fcntl
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            if any(r.name == name for r in store.list()):
                api.remove_container(name, force=True, root=mc_root)
    assert refusals > 0                      # the verbs did get in each other's way
