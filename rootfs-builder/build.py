#!/usr/bin/env python3
"""Build a root filesystem tarball from a recipe, byte for byte reproducibly.

A container image's userland is just a tree of files: /bin/sh, /etc/passwd, an empty
/proc for the kernel to mount over. This builder never creates that tree on disk: it
turns the recipe into an in-memory *plan* (path → directory, file or symlink, with mode
and owner) and writes the plan straight into a tar archive. So it needs no root (nothing
is chowned) and the archive depends only on its inputs:

  * entries sorted by path, every mtime the same (SOURCE_DATE_EPOCH, else 2024-01-01),
  * numeric owners only (uid/gid, empty user and group names), modes from the recipe,
  * one fixed format (POSIX pax) with no atime/ctime records; gzip (.tar.gz) with mtime 0.

Same recipe + same host files → same sha256, on any machine (see `diffoscope` for
why that matters: reproducible-builds.org).

Use:    python rootfs-builder/build.py rootfs-builder/recipes/busybox.toml [-o OUT.tar] [--list]
        prints  sha256:<hex>  build/busybox-latest.tar
From Python (the dash in rootfs-builder/ means: load it by file path):

    spec = importlib.util.spec_from_file_location("rootfs_builder", "rootfs-builder/build.py")
    builder = importlib.util.module_from_spec(spec); spec.loader.exec_module(builder)
    result = builder.build("rootfs-builder/recipes/busybox.toml")   # → BuildResult
    result.path, result.sha256, result.digest, result.name, result.tag, result.size

Errors are builder.RecipeError (a minicontainer ConfigError and a ValueError): one line.

Man pages: tar(5) (the format), tar(1); hier(7) for the layout.
Shell equivalent (not reproducible, needs root for the owners):
    mkdir -p root/bin && cp /bin/busybox root/bin/ && …; tar --sort=name --mtime=@0 \
        --owner=0 --group=0 --numeric-owner -C root -cf busybox.tar .
"""
# No `from __future__ import annotations` here: callers load this file by path without
# registering it in sys.modules, and dataclasses cannot resolve string annotations then.
import hashlib
import importlib.util
import os
import stat
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_MTIME = 1704067200          # 2024-01-01T00:00:00Z, when SOURCE_DATE_EPOCH is not set


def _sibling(name: str):
    """Import rootfs-builder/<name>.py by path (the directory name is not a Python identifier)."""
    key = f"rootfs_builder_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module          # before exec: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[key]


recipes = _sibling("recipe")
elf = _sibling("elf")
RecipeError = recipes.RecipeError
load_recipe = recipes.load_recipe


@dataclass(frozen=True)
class Entry:
    """One line of the plan: what will be at `path` inside the image."""

    path: str                       # absolute inside the image: "/usr/bin/wc"
    kind: str                       # "dir", "file" or "symlink"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    src: str | None = None          # file: host file to copy
    data: bytes | None = None       # file: literal content (from [[text]])
    target: str | None = None       # symlink: where it points


@dataclass(frozen=True)
class BuildResult:
    path: Path                      # the tar that was written
    sha256: str                     # hex digest of that file
    name: str
    tag: str
    size: int                       # bytes
    entries: int                    # tar members
    config: dict | None = None      # the image's defaults: {"cmd", "env", "workdir"} ([image])

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"


# ---- recipe → plan -------------------------------------------------------------------------

def make_plan(recipe, _chain: tuple = ()) -> tuple[dict[str, Entry], dict[str, str]]:
    """The plan {path: Entry} of a recipe on top of its base, and the ${variables} it defines."""
    if recipe.source.resolve() in _chain:
        raise RecipeError(f"{recipe.source}: base recipes form a loop: "
                          + " → ".join(str(p) for p in _chain + (recipe.source.resolve(),)))
    plan, variables = {}, {}
    if recipe.base is not None:
        plan, variables = make_plan(load_recipe(recipe.base), _chain + (recipe.source.resolve(),))
    variables.update(image_name=recipe.image.name, image_tag=recipe.image.tag,
                     image_description=recipe.image.description)
    own: dict[str, Entry] = {}
    applet_links: list[Entry] = []
    if recipe.busybox is not None:
        version, applet_links = plan_busybox(recipe.busybox, own, recipe.source)
        variables["busybox_version"] = version
    for d in recipe.dirs:
        put_entry(own, Entry(d.path, "dir", d.mode, d.uid, d.gid), recipe.source)
    for f in recipe.files:
        put_entry(own, Entry(f.path, "file", file_mode(f.src, f.mode, recipe.source),
                             f.uid, f.gid, src=f.src), recipe.source)
    for t in recipe.text:
        data = expand_text(t, variables, recipe.source).encode()
        put_entry(own, Entry(t.path, "file", t.mode, t.uid, t.gid, data=data), recipe.source)
    for s in recipe.symlinks:
        put_entry(own, Entry(s.path, "symlink", 0o777, target=s.target), recipe.source)
    if recipe.app is not None:
        plan_app(recipe.app, own, recipe.source, base=plan)
    for link in applet_links:          # an explicit entry at an applet's path wins over the link
        own.setdefault(link.path, link)
    plan.update(own)                   # this recipe's entries replace its base's
    add_parent_dirs(plan, recipe.source)
    return plan, variables


def put_entry(own: dict[str, Entry], entry: Entry, source) -> None:
    if entry.path in own:
        raise RecipeError(f"{source}: {entry.path} is declared twice — keep one entry per path")
    own[entry.path] = entry


def file_mode(src: str, mode: int | None, source) -> int:
    """The recipe's mode, else 0755 for an executable host file and 0644 for the rest."""
    try:
        st = os.stat(src)
    except OSError as e:
        raise RecipeError(f"{source}: cannot use host file {src}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise RecipeError(f"{source}: host file {src} is not a regular file")
    if mode is not None:
        return mode
    return 0o755 if st.st_mode & 0o111 else 0o644


def expand_text(t, variables: dict[str, str], source) -> str:
    if not t.expand:
        return t.content
    try:
        return string.Template(t.content).substitute(variables)
    except KeyError as e:
        raise RecipeError(f"{source}: [[text]] {t.path}: unknown variable ${{{e.args[0]}}} "
                          f"(known: {', '.join(sorted(variables))})") from None
    except ValueError as e:
        raise RecipeError(f"{source}: [[text]] {t.path}: {e} (write $$ for a literal $)") from None


def add_parent_dirs(plan: dict[str, Entry], source) -> None:
    """Every entry's parent must be a directory: add missing ones as root:root 0755."""
    for path in sorted(plan):
        parent = os.path.dirname(path)
        while parent != "/":
            above = plan.get(parent)
            if above is None:
                plan[parent] = Entry(parent, "dir", 0o755)
            elif above.kind != "dir":
                raise RecipeError(f"{source}: cannot put {path} in the image: {parent} is a "
                                  f"{above.kind}, not a directory")
            parent = os.path.dirname(parent)


# ---- [busybox] -----------------------------------------------------------------------------

def plan_busybox(bb, own: dict[str, Entry], source) -> tuple[str, list[Entry]]:
    """Put the static busybox binary in the plan; return its version and one link per applet."""
    check_static(bb.binary, source)
    applets = list_applets(bb.binary, source)
    missing = [name for name in bb.require if name not in applets]
    if missing:
        raise RecipeError(f"{source}: {bb.binary} has no applet {', '.join(missing)} "
                          "(required by [busybox] require) — use a fuller busybox build")
    names = sorted(applets) if bb.links == "all" else list(bb.links)
    unknown = [name for name in names if name not in applets]
    if unknown:
        raise RecipeError(f"{source}: [busybox] links: {bb.binary} has no applet "
                          f"{', '.join(unknown)} (see `{bb.binary} --list`)")
    put_entry(own, Entry(bb.path, "file", 0o755, src=bb.binary), source)
    # A symlink per applet: busybox looks at argv[0] ("wc") to know which program to be.
    links = [Entry(applets[name], "symlink", 0o777, target=bb.path)
             for name in names if name not in bb.exclude and name != "busybox"
             and applets[name] != bb.path]
    return busybox_version(bb.binary, source), links


def check_static(binary: str, source) -> None:
    """A busybox-only userland has no loader and no libc: the binary must be static."""
    hint = "install the static build: apt-get install busybox-static"
    if not os.path.isfile(binary):
        raise RecipeError(f"{source}: [busybox] binary {binary} does not exist — {hint}")
    try:
        info = elf.read_elf(binary)
    except elf.ElfError as e:
        raise RecipeError(f"{source}: [busybox] binary: {e}") from None
    if not info.is_static:
        needs = info.interpreter or ", ".join(info.needed)
        raise RecipeError(f"{source}: [busybox] binary {binary} is dynamically linked "
                          f"(needs {needs}) and would not start in the image — {hint}")


def run_busybox(binary: str, args: list[str], source) -> str:
    cmd = [binary, *args]
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                             env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    except OSError as e:
        raise RecipeError(f"{source}: cannot run {' '.join(cmd)}: {e.strerror}") from None
    if out.returncode != 0:
        raise RecipeError(f"{source}: `{' '.join(cmd)}` exited with {out.returncode}: "
                          f"{out.stderr.decode(errors='replace').strip()[:200]}")
    return out.stdout.decode(errors="replace")


def list_applets(binary: str, source) -> dict[str, str]:
    """{applet: its path in the image}, from `busybox --list-full` ("usr/bin/wc")."""
    lines = run_busybox(binary, ["--list-full"], source).split()
    return {os.path.basename(line): "/" + line.strip("/") for line in lines if line.strip("/")}


def busybox_version(binary: str, source) -> str:
    """'1.35.0' from the first line of `busybox --help`: BusyBox v1.35.0 (Debian …)."""
    first = run_busybox(binary, ["--help"], source).split("\n", 1)[0]
    words = first.split()
    if len(words) < 2 or words[0] != "BusyBox" or not words[1].startswith("v"):
        raise RecipeError(f"{source}: cannot read the busybox version from {first!r}")
    return words[1][1:]


# ---- [app] ---------------------------------------------------------------------------------

def plan_app(app, own: dict[str, Entry], source, base: dict | None = None) -> None:
    """The program, its loader and its library closure (read from ELF headers, not ldd).
    A script ("#!/bin/bash") brings its interpreter instead, and the interpreter's closure
    — unless the base image has it already (busybox's /bin/sh)."""
    interpreter = script_interpreter(app.binary, source)
    if interpreter is None:
        plan_program(app.binary, app.path, app.search, own, source)
        return
    put_entry(own, Entry(app.path, "file", file_mode(app.binary, 0o755, source),
                         src=app.binary), source)
    program = interpreter[0]
    if os.path.basename(program) == "env" and len(interpreter) > 1:
        # "#!/usr/bin/env bash": env (a busybox applet) finds bash on PATH, so ship bash there
        found = shutil_which(interpreter[1])
        if found is None:
            raise RecipeError(f"{source}: [app] {app.binary} runs {interpreter[1]!r} (#!{' '.join(interpreter)}), "
                              "which is not installed on this host")
        if program not in (base or {}) and program not in own:
            raise RecipeError(f"{source}: [app] {app.binary} needs {program}, which the base image "
                              "lacks: use base = \"busybox.toml\" or #!/path/to/interpreter")
        program = found
    if program in (base or {}) or program in own:
        return                         # the base image provides it (e.g. busybox's /bin/sh)
    if not os.path.isfile(program):
        raise RecipeError(f"{source}: [app] {app.binary} starts with #!{' '.join(interpreter)}, "
                          f"but {program} does not exist on this host")
    plan_program(program, program, app.search, own, source)


def script_interpreter(path: str, source) -> list[str] | None:
    """["/bin/bash"] for a file starting with "#!/bin/bash"; None for anything else (ELF)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError as e:
        raise RecipeError(f"{source}: [app] cannot read {path}: {e.strerror}") from None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words or not words[0].startswith("/"):
        raise RecipeError(f"{source}: [app] {path}: the #! line must name an absolute interpreter")
    return words


def shutil_which(name: str) -> str | None:
    import shutil
    return shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")


def plan_program(binary: str, path: str, search, own: dict[str, Entry], source) -> None:
    """One ELF program at PATH in the image, with its loader and libraries."""
    put_entry(own, Entry(path, "file", file_mode(binary, 0o755, source), src=binary), source)
    try:
        closure = elf.library_closure(binary, search)
    except elf.ElfError as e:
        raise RecipeError(f"{source}: [app] {e}") from None
    first_copy: dict[str, str] = {}    # host realpath → image path that holds the bytes
    for image_path, host in closure:
        real = os.path.realpath(host)
        if real in first_copy:         # the same file under two names: link, don't copy twice
            put_entry(own, Entry(image_path, "symlink", 0o777, target=first_copy[real]), source)
        else:
            first_copy[real] = image_path
            put_entry(own, Entry(image_path, "file", file_mode(real, None, source), src=real),
                      source)


# ---- plan → tar ----------------------------------------------------------------------------

def source_date_epoch() -> int:
    """The one timestamp of every entry: $SOURCE_DATE_EPOCH (reproducible-builds.org) or 2024."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return DEFAULT_MTIME
    if not value.isdigit():
        raise RecipeError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds "
                          "since 1970 — unset it or fix it")
    return int(value)


def tar_member(entry: Entry, mtime: int):
    """The tar header of one entry: numeric owner, no user names, fixed time."""
    import tarfile
    info = tarfile.TarInfo(entry.path.lstrip("/"))
    info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, mtime
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.target
    else:
        info.type = tarfile.REGTYPE
    return info


def read_content(entry: Entry) -> bytes:
    if entry.data is not None:
        return entry.data
    try:
        with open(entry.src, "rb") as f:
            return f.read()
    except OSError as e:
        raise RecipeError(f"cannot read {entry.src} for {entry.path}: {e.strerror}") from None


def write_tar(plan: dict[str, Entry], out: Path, mtime: int, gzipped: bool = False) -> None:
    """Write the plan to `out` as a pax tar, sorted by path, optionally gzip-compressed."""
    import gzip
    import io
    import tarfile
    with open(out, "wb") as raw:
        # gzip: no file name and mtime 0 in its header, or the digest would change every build.
        stream = (gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                  if gzipped else raw)
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(plan):
                entry = plan[path]
                info = tar_member(entry, mtime)
                if entry.kind == "file":
                    data = read_content(entry)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.addfile(info)
        if stream is not raw:
            stream.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_output(recipe) -> Path:
    return REPO / "build" / f"{recipe.image.name}-{recipe.image.tag}.tar"


def build(recipe_path: str | os.PathLike, out_path: str | os.PathLike | None = None) -> BuildResult:
    """Build the recipe into a tar (default build/<name>-<tag>.tar at the repo root).

    Writes to a temporary file next to the output and renames it into place, so a
    failed build leaves nothing behind and never a half-written tar.
    """
    recipe = load_recipe(recipe_path)
    out = Path(out_path) if out_path is not None else default_output(recipe)
    if not (out.name.endswith(".tar") or out.name.endswith(".tar.gz")):
        raise RecipeError(f"output {out} must end in .tar or .tar.gz")
    mtime = source_date_epoch()
    if recipe.debootstrap is not None:
        debian = _sibling("debian")
        return debian.build_debian(recipe, out, mtime, BuildResult, sha256_file)
    plan, _ = make_plan(recipe)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecipeError(f"cannot create output directory {out.parent}: {e.strerror}") from None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        write_tar(plan, tmp, mtime, gzipped=out.name.endswith(".gz"))
        os.replace(tmp, out)
    except OSError as e:
        raise RecipeError(f"cannot write {out}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return BuildResult(out, sha256_file(out), recipe.image.name, recipe.image.tag,
                       out.stat().st_size, len(plan), image_config(recipe))


def image_config(recipe) -> dict:
    """The image's defaults: the base recipe's, then this recipe's [image] command/env/workdir."""
    config = image_config(load_recipe(recipe.base)) if recipe.base is not None else {}
    config.update(recipe.image.runtime_config())
    return config


# ---- command line --------------------------------------------------------------------------

def format_entry(entry: Entry) -> str:
    """One `ls -l`-like line of the plan: drwxrwxrwt 0/0  /tmp."""
    kind = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK}[entry.kind]
    line = f"{stat.filemode(kind | entry.mode)} {entry.uid}/{entry.gid}  {entry.path}"
    if entry.kind == "symlink":
        return f"{line} -> {entry.target}"
    if entry.kind == "file":
        return f"{line}  ({entry.src or 'text'})"
    return line


def show_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n")[0])
    parser.add_argument("recipe", help="a recipe file, like rootfs-builder/recipes/busybox.toml")
    parser.add_argument("-o", "--output", help="the tar to write (.tar or .tar.gz); "
                        "default build/<name>-<tag>.tar")
    parser.add_argument("--list", action="store_true",
                        help="print the plan (what the image would contain) and write nothing")
    args = parser.parse_args(argv)
    try:
        if args.list:
            plan, _ = make_plan(load_recipe(args.recipe))
            print("\n".join(format_entry(plan[p]) for p in sorted(plan)))
            return 0
        started = time.perf_counter()
        result = build(args.recipe, args.output)
    except RecipeError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 125
    print(f"{result.digest}  {show_path(result.path)}")
    print(f"built {result.name}:{result.tag}: {result.entries} entries, "
          f"{result.size / 1e6:.1f} MB in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
