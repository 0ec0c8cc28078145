"""state.py's name index: create and find by name without reading every record (no root needed)."""
from __future__ import annotations

import shutil

import pytest

from minicontainer.errors import ContainerError
from minicontainer.state import StateStore


def test_names_are_claimed_and_freed(tmp_path):
    store = StateStore(tmp_path)
    rec = store.create("busybox", ["true"], "web")
    assert (tmp_path / "containers" / ".names" / "web").read_text() == rec.id
    assert store.find("web").id == rec.id and store.find(rec.id).id == rec.id
    assert store.find(rec.id[:8]).id == rec.id                  # a prefix: the slow path
    with pytest.raises(ContainerError, match="already in use"):
        store.create("busybox", ["true"], "web")
    store.delete(rec)
    assert not (tmp_path / "containers" / ".names" / "web").exists()
    assert store.create("busybox", ["true"], "web").name == "web"


def test_a_stale_claim_is_no_claim(tmp_path):
    """A container directory removed behind our back (gc of a half-made one, a crash)."""
    store = StateStore(tmp_path)
    rec = store.create("busybox", ["true"], "db")
    shutil.rmtree(store.container_dir(rec.id))
    with pytest.raises(ContainerError, match="no such container"):
        store.find("db")
    assert store.create("busybox", ["true"], "db").id != rec.id


def test_a_root_from_before_the_index(tmp_path):
    """Records made without .names/: the first create builds it from them."""
    store = StateStore(tmp_path)
    old = store.create("busybox", ["true"], "old")
    shutil.rmtree(tmp_path / "containers" / ".names")
    assert store.find("old").id == old.id                       # found by reading the records
    with pytest.raises(ContainerError, match="already in use"):
        store.create("busybox", ["true"], "old")
    unnamed = store.create("busybox", ["true"], None)
    assert store.find(unnamed.name).id == unnamed.id


@pytest.mark.parametrize("ref", ["", ".", "..", "a/b", ".lock", "x\x00y", "../containers"])
def test_odd_references(tmp_path, ref):
    store = StateStore(tmp_path)
    store.create("busybox", ["true"], "a")
    with pytest.raises(ContainerError):
        store.find(ref)


def test_rename_moves_the_claim(tmp_path):
    from minicontainer.create import rename_container
    store = StateStore(tmp_path)
    rec = store.create("busybox", ["true"], "old")
    rename_container("old", "new", root=tmp_path)
    assert store.find("new").id == rec.id
    with pytest.raises(ContainerError, match="already in use"):
        store.create("busybox", ["true"], "new")
    assert store.create("busybox", ["true"], "old").id != rec.id
