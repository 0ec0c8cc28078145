"""Record classes: the part of dataclasses minicontainer uses, without its start-up cost.

    @record                                   as @dataclass
    class PortMapping:
        host_port: int
        proto: str = "tcp"
        extra: list = field(default_factory=list)

    @record(frozen=True)                      immutable and hashable, as @dataclass(frozen=True)
    asdict(obj), fields(obj_or_class), replace(obj, **changes)      as in dataclasses

Why not dataclasses itself: `minicontainer run` defines about fifteen record classes. Importing
dataclasses (it imports inspect, which imports ast, dis and tokenize) and letting it compile
every class's generated __init__, __repr__ and __eq__ with exec() cost ~15 ms per command here —
a fifth of a whole `minicontainer run --rm busybox true` (docs/performance.md). A record's
methods are ordinary closures over its field list instead. Same behaviour for what is used here:
fields in annotation order, defaults and default factories, positional or keyword arguments,
__post_init__, repr, ==, frozen (+ hash), and field(repr=False) / field(compare=False).
"""
from __future__ import annotations

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "repr", "compare")

    def __init__(self, default=_MISSING, default_factory=_MISSING, repr=True, compare=True):
        self.name, self.default, self.default_factory = "", default, default_factory
        self.repr, self.compare = repr, compare

    def value(self, cls_name: str):
        if self.default_factory is not _MISSING:
            return self.default_factory()
        if self.default is _MISSING:
            raise TypeError(f"{cls_name}() missing required argument: {self.name!r}")
        return self.default


def field(*, default=_MISSING, default_factory=_MISSING, repr: bool = True, compare: bool = True) -> Field:
    return Field(default, default_factory, repr, compare)


def record(cls=None, *, frozen: bool = False):
    """Class decorator: an __init__, __repr__ and __eq__ (and __hash__ when frozen) from the
    class's annotated attributes."""
    if cls is None:
        return lambda c: record(c, frozen=frozen)
    specs = list(getattr(cls, "__record_fields__", ()))              # a record base class's first
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        spec = cls.__dict__.get(name, _MISSING)
        spec = spec if isinstance(spec, Field) else Field(default=spec)
        spec.name = name
        specs = [s for s in specs if s.name != name] + [spec]
        if spec.default is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)                                   # a factory: no class default
        else:
            setattr(cls, name, spec.default)
    specs = tuple(specs)
    names = tuple(s.name for s in specs)
    compared = tuple(s.name for s in specs if s.compare)
    setter = object.__setattr__

    def __init__(self, *args, **kwargs):
        if len(args) > len(specs):
            raise TypeError(f"{cls.__name__}() takes {len(specs)} arguments, {len(args)} were given")
        unknown = kwargs.keys() - set(names[len(args):])
        if unknown:
            raise TypeError(f"{cls.__name__}() got unexpected or repeated arguments: {sorted(unknown)}")
        for spec, value in zip(specs, args):
            setter(self, spec.name, value)
        for spec in specs[len(args):]:
            setter(self, spec.name, kwargs[spec.name] if spec.name in kwargs else spec.value(cls.__name__))
        if hasattr(self, "__post_init__"):
            self.__post_init__()

    def __repr__(self):
        shown = ", ".join(f"{s.name}={getattr(self, s.name)!r}" for s in specs if s.repr)
        return f"{cls.__qualname__}({shown})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in compared)

    cls.__record_fields__ = specs
    cls.__init__, cls.__repr__, cls.__eq__ = __init__, __repr__, __eq__
    if frozen:
        def __setattr__(self, name, value):
            raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen {cls.__name__}")

        def __delattr__(self, name):
            raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen {cls.__name__}")

        cls.__setattr__, cls.__delattr__ = __setattr__, __delattr__
        cls.__hash__ = lambda self: hash(tuple(getattr(self, n) for n in compared))
    else:
        cls.__hash__ = None                                          # mutable and ==: unhashable
    return cls


def fields(obj_or_cls) -> tuple[Field, ...]:
    return obj_or_cls.__record_fields__


def replace(obj, **changes):
    """A copy of the record with some fields changed."""
    return obj.__class__(**{**{s.name: getattr(obj, s.name) for s in obj.__record_fields__}, **changes})


def asdict(obj):
    """A record as a dict of its fields, recursively (records, lists, tuples, dicts inside);
    the containers are new, the leaves (str, int, Path, …) shared."""
    if hasattr(obj.__class__, "__record_fields__"):
        return {s.name: asdict(getattr(obj, s.name)) for s in obj.__record_fields__}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {asdict(k): asdict(v) for k, v in obj.items()}
    return obj
