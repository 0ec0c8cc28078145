"""A Debian userland from a [debootstrap] recipe: mmdebstrap, else debootstrap.

A minimal Debian ("minbase": dpkg, apt, bash, coreutils… about 170 MB unpacked) is what most
container images start from. Debian's own tools build it from the archive: they download
each package of the chosen set and unpack and configure them into a directory, as the
installer would. We only drive them:

    mmdebstrap --variant=minbase --mode=auto --format=tar bookworm out.tar MIRROR
        writes the tar directly; honours SOURCE_DATE_EPOCH (reproducible); no root needed
        in its "unshare" mode
    debootstrap --variant=minbase bookworm DIR MIRROR && tar --numeric-owner -C DIR -cf out.tar .
        the classic; needs root

MIRROR "auto" is the one apt on this host already uses (/etc/apt/sources.list and
sources.list.d/), so the build works wherever `apt-get install` does.

Slow (a minute or so) and network-bound, so the result is cached in build/cache/, keyed by
the sha256 of the recipe file, the mirror and the tool: the next build of the same recipe
is a hard link.

Man pages: mmdebstrap(1), debootstrap(8), sources.list(5).
"""
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# $MINICONTAINER_BUILD_CACHE (`make test` uses /var/cache/minicontainer/build), else build/cache.
CACHE = Path(os.environ.get("MINICONTAINER_BUILD_CACHE") or HERE.parent / "build" / "cache")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = Path("/etc/apt")


def _recipe_error():
    import sys
    return sys.modules["rootfs_builder_recipe"].RecipeError


def build_debian(recipe, out: Path, mtime: int, result_type, sha256_file):
    """Build (or take from the cache) the Debian tar, then link or copy it to OUT."""
    RecipeError = _recipe_error()
    d = recipe.debootstrap
    mirror = host_mirror(d.suite) if d.mirror == "auto" else d.mirror
    tool = find_tool(recipe.source)
    key = hashlib.sha256(Path(recipe.source).read_bytes() + f"\n{mirror}\n{tool}\n{mtime}".encode()).hexdigest()
    cached = CACHE / f"{recipe.image.name}-{recipe.image.tag}-{key[:16]}.tar"
    if not cached.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        try:
            run_tool(tool, d, mirror, tmp, mtime, recipe.source)
            os.replace(tmp, cached)
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.exists():
                tmp.unlink()
    if out.name.endswith(".gz"):
        raise RecipeError(f"{recipe.source}: a [debootstrap] image is written as .tar only")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        try:
            os.link(cached, partial)                     # same filesystem: no copy at all
        except OSError:
            shutil.copyfile(cached, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    with tarfile.open(out) as tar:
        entries = sum(1 for _ in tar)
    config = recipe.image.runtime_config() or {"cmd": ["/bin/bash"]}
    return result_type(out, sha256_file(out), recipe.image.name, recipe.image.tag,
                       out.stat().st_size, entries, config)


def find_tool(source) -> str:
    for tool in ("mmdebstrap", "debootstrap"):
        if shutil.which(tool, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"):
            return tool
    raise _recipe_error()(f"{source}: [debootstrap] needs mmdebstrap or debootstrap: "
                          "apt-get install mmdebstrap")


def run_tool(tool: str, d, mirror: str, out: Path, mtime: int, source) -> None:
    RecipeError = _recipe_error()
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "SOURCE_DATE_EPOCH": str(mtime), "LC_ALL": "C.UTF-8", "HOME": "/root"}
    include = [f"--include={','.join(d.include)}"] if d.include else []
    if tool == "mmdebstrap":
        steps = [["mmdebstrap", f"--variant={d.variant}", "--mode=auto", "--format=tar", *include,
                  d.suite, str(out), mirror]]
    else:
        if os.geteuid() != 0:
            raise RecipeError(f"{source}: debootstrap needs root (or install mmdebstrap)")
        root = out.with_suffix(".root")
        steps = [["debootstrap", f"--variant={d.variant}", *include, d.suite, str(root), mirror],
                 ["tar", "--numeric-owner", "--sort=name", f"--mtime=@{mtime}", "-C", str(root),
                  "-cf", str(out), "."]]
    try:
        for cmd in steps:
            proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=1800)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
                raise RecipeError(f"{source}: {cmd[0]} failed (exit {proc.returncode}): {last} — "
                                  f"is the Debian mirror {mirror} reachable?")
    except subprocess.TimeoutExpired:
        raise RecipeError(f"{source}: {tool} took more than 30 minutes; is the mirror {mirror} "
                          "reachable?") from None
    finally:
        if tool == "debootstrap":
            shutil.rmtree(out.with_suffix(".root"), ignore_errors=True)


def host_mirror(suite: str) -> str:
    """The Debian archive URL apt uses here: the first source listing SUITE (else any
    .../debian URL, else deb.debian.org)."""
    entries = list(read_sources(APT_SOURCES))
    for uri, suites in entries:
        if suite in suites:
            return uri
    for uri, _ in entries:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    return DEFAULT_MIRROR


def read_sources(apt: Path):
    """(uri, suites) of every `deb` source: one-line sources.list and deb822 .sources files."""
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in files:
        try:
            lines = f.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                yield words[1], [words[2]]
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        try:
            text = f.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith((" ", "#")):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    yield uri, fields.get("suites", "").split()
