"""Recipes: a TOML file that declares what goes into an image's root filesystem.

A recipe lists entries; it never runs shell commands. Every section is optional
except [image]:

    base = "busybox.toml"            # start from another recipe's entries (layering)

    [image]                          # what to call the result: build/<name>-<tag>.tar
    name = "busybox"
    tag = "latest"
    description = "one line"
    command = ["/usr/bin/hello"]     # what `minicontainer run IMAGE` starts (default /bin/sh)
    env = ["LANG=C.UTF-8"]           # the image's environment (KEY=VALUE; `run -e` wins)
    workdir = "/srv"                 # the command's working directory

    [busybox]                        # a static busybox and one link per applet
    binary = "/bin/busybox"          # on the host; must be static (no PT_INTERP)
    path = "/bin/busybox"            # in the image (default: /bin/busybox)
    links = "all"                    # or a list of applet names: ["sh", "ls"]
    require = ["sh", "wc"]           # fail unless the binary has these applets
    exclude = ["linuxrc"]            # applets not to link

    [app]                            # a dynamically linked program and its libraries
    binary = "/usr/bin/hello"        # on the host; its loader and DT_NEEDED closure come along
    path = "/usr/bin/hello"          # in the image (default: the same path)
    search = ["/opt/lib"]            # extra host directories to look for libraries in
                                     # binary may be a script ("#!/bin/bash", relative paths
                                     # start at the recipe's directory): its interpreter and
                                     # the interpreter's closure come along instead

    [debootstrap]                    # a Debian userland (mmdebstrap, else debootstrap); only
    suite = "bookworm"               # [image] may go with it
    variant = "minbase"              # minbase | buildd | important | required | standard
    mirror = "auto"                  # "auto": the host's apt mirror (/etc/apt/sources.list*)
    include = ["ca-certificates"]    # extra packages

    [[dirs]]      path = "/tmp"  mode = "1777"            (uid, gid: default 0)
    [[files]]     path = "/bin/x"  src = "/usr/bin/x"  mode = "0755"   (src relative → recipe dir)
    [[text]]      path = "/etc/hosts"  content = "…"  mode = "0644"  expand = false
    [[symlinks]]  path = "/etc/os-release"  target = "../usr/lib/os-release"

Modes are octal *strings* ("0755"): a TOML number 755 would be decimal (0o1363).
With expand = true, ${image_name} ${image_tag} ${image_description} ${busybox_version}
in a [[text]] content are replaced ($$ is a literal $).


Man pages: none for the format; tomllib in the Python docs, hier(7) for the layout.
Shell equivalent: none — this file is data; build.py turns it into a tar.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

try:  # a ConfigError, so the minicontainer CLI prints it on one line and exits 125
    from minicontainer.errors import ConfigError
    _BASES: tuple = (ConfigError, ValueError)
except ImportError:  # build.py run by a python without minicontainer installed
    _BASES = (ValueError,)


class RecipeError(*_BASES):
    """A recipe that cannot be built: `str(err)` is one line naming the file, field and fix."""


NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")        # like Docker repository names
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")   # like Docker tags
MODE_RE = re.compile(r"^[0-7]{3,4}$")
TOP_LEVEL = {"base", "image", "busybox", "app", "dirs", "files", "text", "symlinks", "debootstrap"}
VARIANTS = ("minbase", "buildd", "important", "required", "standard")


@dataclass(frozen=True)
class Image:
    name: str
    tag: str = "latest"
    description: str = ""
    command: tuple[str, ...] = ()    # the image's default command (empty: /bin/sh)
    env: tuple[str, ...] = ()        # KEY=VALUE
    workdir: str | None = None

    def runtime_config(self) -> dict:
        """What minicontainer stores with the image and `run` applies (image.json "config")."""
        config = {"cmd": list(self.command), "env": list(self.env), "workdir": self.workdir}
        return {k: v for k, v in config.items() if v}


@dataclass(frozen=True)
class Busybox:
    binary: str                      # host path
    path: str = "/bin/busybox"       # image path
    links: str | tuple[str, ...] = "all"
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class App:
    binary: str                      # host path
    path: str                        # image path
    search: tuple[str, ...] = ()


@dataclass(frozen=True)
class Debootstrap:
    suite: str
    variant: str = "minbase"
    mirror: str = "auto"
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class File:
    path: str
    src: str                         # host path, absolute (resolved against the recipe dir)
    mode: int | None = None          # None: 0755 if the host file is executable, else 0644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Text:
    path: str
    content: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    expand: bool = False


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Recipe:
    source: Path
    image: Image
    base: Path | None = None
    busybox: Busybox | None = None
    app: App | None = None
    dirs: tuple[Dir, ...] = field(default=())
    files: tuple[File, ...] = field(default=())
    text: tuple[Text, ...] = field(default=())
    symlinks: tuple[Symlink, ...] = field(default=())
    debootstrap: Debootstrap | None = None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate one recipe file; raise RecipeError on the first problem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except OSError as e:
        raise RecipeError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None
    return parse_recipe(doc, path)


def parse_recipe(doc: dict, source: Path) -> Recipe:
    """Turn a decoded TOML document into a Recipe, checking every key and value."""
    t = _Table(doc, str(source), "")
    if "debootstrap" in doc:
        others = sorted(set(doc) - {"debootstrap", "image"})
        if others:
            t.fail(others[0], "cannot be combined with [debootstrap]: a Debian recipe is only "
                              "[image] and [debootstrap] (build other images on top with `base`)")
    unknown = sorted(set(doc) - TOP_LEVEL)
    if unknown:
        known = ", ".join(sorted(TOP_LEVEL))
        t.fail(unknown[0], f"unknown section or key, a typo? (known: {known})")
    if "image" not in doc:
        t.fail("image", 'is required: an [image] table with name = "…"')
    base = t.string("base", None)
    if base is not None and not (source.parent / base).is_file():
        t.fail("base", f"{source.parent / base}: no such recipe file (relative paths start "
                       "at the recipe's directory)")
    recipe = Recipe(
        source=source,
        base=(source.parent / base) if base else None,
        image=_parse_image(t.table("image", required=True)),
        busybox=_opt(t.table("busybox"), _parse_busybox),
        app=_opt(t.table("app"), lambda a: _parse_app(a, source.parent)),
        dirs=tuple(_parse_dir(d) for d in t.tables("dirs")),
        files=tuple(_parse_file(d, source.parent) for d in t.tables("files")),
        text=tuple(_parse_text(d) for d in t.tables("text")),
        symlinks=tuple(_parse_symlink(d) for d in t.tables("symlinks")),
        debootstrap=_opt(t.table("debootstrap"), _parse_debootstrap),
    )
    t.done()
    return recipe


def _opt(table, parse):
    return parse(table) if table is not None else None


def _parse_image(t: _Table) -> Image:
    name = t.string("name", required=True)
    tag = t.string("tag", "latest")
    if not NAME_RE.match(name):
        t.fail("name", f"{name!r} is not a valid image name (lowercase letters, digits, . _ -)")
    if not TAG_RE.match(tag):
        t.fail("tag", f"{tag!r} is not a valid tag (letters, digits, . _ -; at most 128)")
    env = t.string_list("env")
    bad = [e for e in env if "=" not in e or e.startswith("=")]
    if bad:
        t.fail("env", f"{bad[0]!r} must be KEY=VALUE")
    image = Image(name, tag, t.string("description", ""), t.string_list("command"), env,
                  t.image_path("workdir", None))
    t.done()
    return image


def _parse_busybox(t: _Table) -> Busybox:
    links = t.get("links", "all")
    if links != "all" and not _is_str_list(links):
        t.fail("links", 'must be "all" or a list of applet names like ["sh", "ls"]')
    bb = Busybox(binary=t.string("binary", required=True),
                 path=t.image_path("path", "/bin/busybox"),
                 links=links if links == "all" else tuple(links),
                 require=t.string_list("require"), exclude=t.string_list("exclude"))
    t.done()
    return bb


def _parse_app(t: _Table, recipe_dir: Path) -> App:
    given = t.string("binary", required=True)
    absolute = given.startswith("/")               # else e.g. a script beside the recipe
    binary = given if absolute else str(recipe_dir / given)
    app = App(binary=binary, path=t.image_path("path", _normal_path(given) if absolute else None),
              search=t.string_list("search"))
    if app.path is None:
        t.fail("path", f"is required: where {binary} goes in the image (like /usr/local/bin/app)")
    t.done()
    return app


def _parse_debootstrap(t: _Table) -> Debootstrap:
    suite = t.string("suite", required=True)
    if not re.fullmatch(r"[a-z][a-z0-9-]*", suite):
        t.fail("suite", f"{suite!r} is not a Debian suite name (like bookworm)")
    variant = t.string("variant", "minbase")
    if variant not in VARIANTS:
        t.fail("variant", f"{variant!r}: use one of {', '.join(VARIANTS)}")
    mirror = t.string("mirror", "auto")
    if mirror != "auto" and not re.fullmatch(r"(https?|file)://\S+", mirror):
        t.fail("mirror", f"{mirror!r} must be \"auto\" or an http(s):// or file:// URL")
    include = t.string_list("include")
    bad = [p for p in include if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p)]
    if bad:
        t.fail("include", f"{bad[0]!r} is not a Debian package name")
    d = Debootstrap(suite, variant, mirror, include)
    t.done()
    return d


def _parse_dir(t: _Table) -> Dir:
    d = Dir(t.image_path("path", required=True), t.mode("mode", 0o755), t.id("uid"), t.id("gid"))
    t.done()
    return d


def _parse_file(t: _Table, recipe_dir: Path) -> File:
    src = t.string("src", required=True)
    f = File(t.image_path("path", required=True), str(recipe_dir / src),
             t.mode("mode", None), t.id("uid"), t.id("gid"))
    t.done()
    return f


def _parse_text(t: _Table) -> Text:
    x = Text(t.image_path("path", required=True), t.string("content", required=True),
             t.mode("mode", 0o644), t.id("uid"), t.id("gid"), t.flag("expand", False))
    t.done()
    return x


def _parse_symlink(t: _Table) -> Symlink:
    s = Symlink(t.image_path("path", required=True), t.string("target", required=True))
    if not s.target:
        t.fail("target", "must not be empty")
    t.done()
    return s


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def _normal_path(p: str) -> str | None:
    """'/usr/bin/wc' stays; 'usr/bin', '/a/../b', '/a//b', '/a/' and '/' are refused (None)."""
    parts = p.split("/")
    if not p.startswith("/") or p == "/" or any(x in ("", ".", "..") for x in parts[1:]):
        return None
    return p


class _Table:
    """One TOML table being read: every key must be used once, or it is reported as unknown."""

    def __init__(self, doc: dict, source: str, where: str):
        self.doc, self.source, self.where, self.used = doc, source, where, set()

    def fail(self, key: str, why: str):
        at = f"{self.where}.{key}" if self.where else key
        raise RecipeError(f"{self.source}: {at}: {why}")

    def get(self, key, default=None, required=False):
        self.used.add(key)
        if key not in self.doc:
            if required:
                self.fail(key, "is required")
            return default
        return self.doc[key]

    def string(self, key, default=None, required=False):
        v = self.get(key, default, required)
        if v is not None and not isinstance(v, str):
            self.fail(key, f"must be a string, not {type(v).__name__} {v!r}")
        return v

    def flag(self, key, default):
        v = self.get(key, default)
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, not {v!r}")
        return v

    def string_list(self, key):
        v = self.get(key, [])
        if not _is_str_list(v):
            self.fail(key, f"must be a list of strings, not {v!r}")
        return tuple(v)

    def id(self, key):
        v = self.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0o7777777:
            self.fail(key, f"must be a number from 0 to 2097151, not {v!r}")
        return v

    def mode(self, key, default):
        v = self.get(key, None)
        if v is None:
            return default
        if not isinstance(v, str) or not MODE_RE.match(v):
            self.fail(key, f'must be an octal string like "0755" or "1777", not {v!r} '
                           "(a TOML number 755 would be read as decimal)")
        return int(v, 8)

    def image_path(self, key, default=None, required=False):
        v = self.string(key, default, required)
        if v is not None and _normal_path(v) is None:
            self.fail(key, f"{v!r} must be an absolute, normalised path inside the image "
                           "(like /usr/bin/wc: no '..', '//' or trailing '/')")
        return v

    def table(self, key, required=False):
        v = self.get(key, None, required)
        if v is None:
            return None
        if not isinstance(v, dict):
            self.fail(key, f"must be a table [{key}], not {type(v).__name__}")
        return _Table(v, self.source, key)

    def tables(self, key):
        v = self.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            self.fail(key, f"must be written as [[{key}]] tables")
        return [_Table(x, self.source, f"{key}[{i}]") for i, x in enumerate(v)]

    def done(self):
        extra = sorted(set(self.doc) - self.used)
        if extra:
            known = ", ".join(sorted(self.used))
            self.fail(extra[0], f"unknown key, a typo? (known here: {known})")
