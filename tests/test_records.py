"""minicontainer/records.py behaves as the dataclasses features it replaces."""
from __future__ import annotations

import pytest

from minicontainer.records import FrozenInstanceError, asdict, field, fields, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)


@record(frozen=True)
class Port:
    number: int
    proto: str = "tcp"


def test_init_defaults_and_factories():
    a, b = Point(1), Point(x=1, y=2, tags=["t"])
    assert (a.x, a.y, a.tags, b.y, b.tags) == (1, 0, [], 2, ["t"])
    assert Point(1).tags is not a.tags                       # a new list each time
    assert Point.y == 0 and not hasattr(Point, "tags")       # class defaults as dataclasses keeps them
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Point(1, z=2)


def test_repr_eq_hash():
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    assert Point(1, note="a") == Point(1, note="b") != Point(2)
    with pytest.raises(TypeError):
        hash(Point(1))                                       # mutable: unhashable, as dataclasses
    assert {Port(80), Port(80)} == {Port(80)} and Port(80) != Port(80, "udp")


def test_frozen():
    p = Port(80)
    with pytest.raises(FrozenInstanceError):
        p.number = 81
    assert isinstance(FrozenInstanceError(), AttributeError)


def test_asdict_fields_replace():
    @record
    class Outer:
        inner: Point
        ports: tuple
    o = Outer(Point(1, tags=["a"]), (Port(1), Port(2, "udp")))
    d = asdict(o)
    assert d == {"inner": {"x": 1, "y": 0, "tags": ["a"], "note": ""},
                 "ports": ({"number": 1, "proto": "tcp"}, {"number": 2, "proto": "udp"})}
    d["inner"]["tags"].append("b")
    assert o.inner.tags == ["a"]                             # containers are copies
    assert [f.name for f in fields(Point)] == ["x", "y", "tags", "note"]
    assert replace(Port(80), proto="udp") == Port(80, "udp")


def test_post_init():
    @record
    class Checked:
        n: int

        def __post_init__(self):
            if self.n < 0:
                raise ValueError("negative")
    with pytest.raises(ValueError):
        Checked(-1)
