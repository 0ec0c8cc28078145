"""Running a Containerfile: each instruction becomes an image in the build cache.

    podman-build(1); Docker's "Dockerfile reference" and "Build cache"
    shell, roughly, for one `RUN make`:
        ID=$(minicontainer create --net none --entrypoint "" PARENT sh -c make)
        minicontainer start -a $ID && minicontainer commit $ID build-cache:KEY; minicontainer rm $ID

    FROM IMAGE [AS name]     the stage starts from an image of the store, an earlier stage
                             or scratch (one empty layer)
    RUN …                    a container of the current image runs it (api.Container: the same
                             run sequence as `minicontainer run`); its upper dir → a new layer
    COPY/ADD SRC… DEST       a created container; the files are copied into its root by
                             storage/cp.py — sources resolved inside the context (or the
                             --from stage), DEST inside the image — then committed → a layer
    WORKDIR                  the directory is created (a layer) and becomes the default
    ENV ARG USER CMD ENTRYPOINT EXPOSE LABEL VOLUME SHELL HEALTHCHECK STOPSIGNAL
                             the image's configuration changes (an image, no new layer)

The cache: a step's result is the image build-cache:KEY; KEY is the sha256 of the parent
image's digest, the instruction as substituted (and the build arguments in effect), and
for COPY/ADD the names, modes and bytes of every file copied. A step whose image exists is
not run again (`--no-cache`: always run). Progress is printed the way podman prints it.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
from pathlib import Path

from ..errors import ConfigError, MinicontainerError
from .containerfile import (Instruction, command, exec_form, flags, key_values, parse,
                            substitute)

CACHE = "build-cache"                     # the cache's images: build-cache:<sha256 of the step>
DEFAULT_SHELL = ["/bin/sh", "-c"]
CONFIG_ONLY = ("ENV", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "VOLUME", "SHELL",
               "HEALTHCHECK", "STOPSIGNAL")


class BuildError(MinicontainerError):
    """A step failed (a RUN's command exited non-zero): exit 1, as docker and podman build."""
    exit_code = 1


class Stage:
    def __init__(self, index: int, name: str | None, image, args: dict):
        self.index, self.name, self.image, self.args = index, name, image, args
        self.cmd_set = False                  # ENTRYPOINT clears an inherited CMD, not our own

    @property
    def config(self) -> dict:
        return dict(self.image.config)


class Builder:
    def __init__(self, *, context: str, file: str | None = None, ref: str | None = None,
                 build_args=(), no_cache: bool = False, network: str = "bridge", root=None,
                 out=print):
        from ..state import StateStore, state_root
        from ..storage.images import image_store
        self.context = Path(context).resolve()
        if not self.context.is_dir():
            raise ConfigError(f"build context {context}: not a directory")
        self.file = Path(file) if file else find_containerfile(self.context)
        self.ref, self.no_cache, self.root, self.out = ref, no_cache, root, out
        if network not in ("none", "bridge", "host"):
            raise ConfigError(f"invalid --network {network!r}: use none, bridge or host")
        self.network = network
        self.build_args = parse_build_args(build_args)
        self.images = image_store(root)
        self.store = StateStore(state_root(root))
        self.stages: list[Stage] = []
        self.ignore = read_ignore_file(self.context)

    # ── the whole build ─────────────────────────────────────────────────────────────────

    def build(self):
        try:
            text = self.file.read_text()
        except OSError as e:
            raise ConfigError(f"Containerfile {self.file}: {e.strerror}") from None
        instructions = parse(text, str(self.file))
        global_args = {}
        while instructions and instructions[0].keyword == "ARG":      # ARGs before FROM: for FROM
            name, _, default = instructions.pop(0).text.partition("=")
            global_args[name.strip()] = self.build_args.get(name.strip(), default)
        if self.ref:
            from ..storage.images import parse_ref
            parse_ref(self.ref)                                          # a bad -t: before anything
        self.check(instructions, global_args)                           # bad input: before anything
        stage = None
        for number, ins in enumerate(instructions, 1):
            values = global_args if ins.keyword == "FROM" else {**stage.args, **env_dict(stage.config)}
            text = substitute(ins.text, values) if ins.keyword in ("FROM", "COPY", "ADD", "ENV", "ARG",
                                                                    "LABEL", "EXPOSE", "USER", "WORKDIR",
                                                                    "VOLUME", "STOPSIGNAL") else ins.text
            self.out(f"STEP {number}/{len(instructions)}: {ins.keyword} {text}".rstrip())
            if ins.keyword == "FROM":
                stage = self.step_from(ins, text, global_args)
                self.stages.append(stage)
                continue
            stage.image = self.step(ins, text, stage, global_args)
        final = stage.image
        if self.ref:
            from ..storage.images import parse_ref
            name, tag = parse_ref(self.ref)
            self.out(f"COMMIT {name}:{tag}")
            final = self.save(f"{name}:{tag}", final.layers, final.config, size=final.size,
                              source=f"build of {self.file}")
            self.out(f"--> {final.id}")
            self.out(f"Successfully tagged {final.ref}")
        self.out(final.digest[7:])
        return final

    def check(self, instructions: list[Instruction], global_args: dict) -> None:
        """Everything that can be known before the first step runs: nothing is left behind
        by a missing base image or a COPY source outside the context."""
        names = set()
        for ins in instructions:
            if ins.keyword == "FROM":
                opts, text = flags(ins, substitute(ins.text, global_args), ("platform",))
                if "platform" in opts:
                    check_platform(ins, opts["platform"])
                base, _, alias = split_from(ins, text)
                if base != "scratch" and base not in names:
                    self.images.get(base)                                # ImageError: no such image
                if alias:
                    names.add(alias)
            elif ins.keyword in ("COPY", "ADD"):
                opts, rest = flags(ins, ins.text, ("from", "chown"))
                sources, _ = copy_arguments(ins, rest)
                if "from" in opts:
                    if opts["from"] not in names and not opts["from"].isdigit():
                        self.images.get(opts["from"])
                    continue
                for src in sources:
                    if re.match(r"^[a-z]+://", src) or src.startswith("git@"):
                        raise ins.error(f"{src}: only local files can be added (there is no "
                                        "network to fetch from)")
                    if "$" not in src:
                        self.context_paths(ins, src)

    # ── steps ───────────────────────────────────────────────────────────────────────────

    def step_from(self, ins: Instruction, text: str, global_args: dict) -> Stage:
        opts, text = flags(ins, text, ("platform",))
        if "platform" in opts:
            check_platform(ins, opts["platform"])
        base, _, alias = split_from(ins, text)
        earlier = next((s for s in self.stages if s.name == base), None)
        if earlier is not None:
            image = earlier.image
        elif base == "scratch":
            image = self.scratch()
        else:
            image = self.images.convert_to_layers(base)     # shared: its layers become ours
        return Stage(len(self.stages), alias or None, image, {})

    def step(self, ins: Instruction, text: str, stage: Stage, global_args: dict):
        if ins.keyword == "ARG":
            name, eq, default = text.partition("=")
            name = name.strip()
            value = self.build_args.get(name, default if eq else global_args.get(name))
            if value is not None:
                stage.args[name] = value
            return stage.image
        key = self.key(stage, f"{ins.keyword} {text}", stage.args)
        if ins.keyword in CONFIG_ONLY:
            return self.cached_or(key, lambda: self.save(cache_ref(key), stage.image.layers,
                                                         self.configure(ins, text, stage),
                                                         size=stage.image.size, source=str(ins)))
        if ins.keyword == "RUN":
            return self.cached_or(key, lambda: self.run_step(ins, stage, key))
        if ins.keyword == "WORKDIR":
            path = os.path.join(stage.config.get("workdir") or "/", text)
            config = {**stage.config, "workdir": os.path.normpath(path)}
            return self.cached_or(key, lambda: self.in_container(stage, key, config, str(ins),
                                                                 lambda root_fd: make_dir(root_fd, path)))
        return self.copy_step(ins, text, stage)

    def cached_or(self, key: str, make):
        if not self.no_cache and self.images.exists(cache_ref(key)):
            image = self.images.get(cache_ref(key))
            self.out(f"--> Using cache {image.digest[7:]}")
            self.out(f"--> {image.id}")
            return image
        image = make()
        self.out(f"--> {image.id}")
        return image

    def key(self, stage: Stage, instruction: str, extra) -> str:
        data = json.dumps([stage.image.digest, instruction, extra], sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()

    def configure(self, ins: Instruction, text: str, stage: Stage) -> dict:
        """The image configuration after one config-only instruction."""
        config = stage.config
        shell = config.get("shell") or DEFAULT_SHELL
        word = ins.keyword
        if word == "ENV":
            env = env_dict(config)
            env.update(key_values(ins, text))
            config["env"] = [f"{k}={v}" for k, v in env.items()]
        elif word == "LABEL":
            config["labels"] = {**(config.get("labels") or {}), **dict(key_values(ins, text))}
        elif word == "USER":
            config["user"] = text
        elif word == "CMD":
            config["cmd"] = command(text, shell)
            stage.cmd_set = True
        elif word == "ENTRYPOINT":
            config["entrypoint"] = command(text, shell)
            if not stage.cmd_set:
                config.pop("cmd", None)                    # Docker: an inherited CMD is dropped
        elif word == "EXPOSE":
            ports = [p if "/" in p else f"{p}/tcp" for p in text.split()]
            for port in ports:
                number, _, proto = port.partition("/")
                if not number.isdigit() or proto not in ("tcp", "udp", "sctp"):
                    raise ins.error(f"invalid port {port!r}: use PORT[/tcp|udp]")
            config["exposed"] = sorted(set(config.get("exposed") or []) | set(ports))
        elif word == "VOLUME":
            paths = exec_form(text) or text.split()
            config["volumes"] = sorted(set(config.get("volumes") or []) | set(paths))
        elif word == "SHELL":
            form = exec_form(text)
            if not form:
                raise ins.error('SHELL needs the exec form, e.g. SHELL ["/bin/sh", "-c"]')
            config["shell"] = form
        elif word == "STOPSIGNAL":
            from ..signals import parse_signal
            try:
                parse_signal(text)
            except ConfigError as e:
                raise ins.error(str(e)) from None
            config["stopsignal"] = text
        elif word == "HEALTHCHECK":
            config["healthcheck"] = healthcheck(ins, text, shell)
        return config

    def run_step(self, ins: Instruction, stage: Stage, key: str):
        """RUN: the command in a container of the current image; its changes → a layer."""
        from ..container import Container
        config = stage.config
        env_keys = env_dict(config)
        argv = command(ins.text, config.get("shell") or DEFAULT_SHELL)
        env = [f"{k}={v}" for k, v in stage.args.items() if k not in env_keys]
        container = Container(stage.image.ref, argv, root=self.root, entrypoint=[], env=env,
                              net=self.network)
        try:
            code = container.run()
            if code != 0:
                raise BuildError(f'building at STEP "{ins}": exit status {code}')
            return self.commit(container.record, key, config, str(ins))
        finally:
            if container.record is not None:
                from ..stop import remove_container
                remove_container(container.record.id, force=True, root=self.root)

    def copy_step(self, ins: Instruction, text: str, stage: Stage):
        """COPY/ADD [--from=STAGE] [--chown=USER[:GROUP]] SRC… DEST."""
        opts, rest = flags(ins, text, ("from", "chown"))
        sources, dest = copy_arguments(ins, rest)
        workdir = stage.config.get("workdir") or "/"
        into_dir = dest.endswith("/") or len(sources) > 1
        dest = os.path.normpath(os.path.join(workdir, dest)) + ("/" if into_dir else "")
        source_image = self.source_image(ins, opts["from"]) if "from" in opts else None
        if source_image is None:
            paths = [p for src in sources for p in self.context_paths(ins, src)]
            into_dir = into_dir or len(paths) > 1 or any(any(c in s for c in "*?[") for s in sources)
            content = [self.hash_context(p) for p in paths]
        else:
            paths, content = [s.lstrip("/") or "." for s in sources], [source_image.digest]
        dest = dest.rstrip("/") + "/" if into_dir else dest
        key = self.key(stage, f"{ins.keyword} {opts} {paths} {dest}", [content, stage.args])
        chown = opts.get("chown")

        def work(root_fd: int) -> None:
            from ..storage.cp import Side, copy
            owner = resolve_owner(root_fd, chown) if chown else (0, 0)
            make_dir(root_fd, dest if into_dir else os.path.dirname(dest) or "/",
                     owner if chown else None)
            src_fd = self.open_source(source_image, mount_point)
            try:
                src = Side(src_fd, "the build context" if source_image is None else opts["from"],
                           ignore=self.ignore if source_image is None else None)
                for path in paths:
                    is_dir = stat.S_ISDIR(os.fstat(src_dir := src.open(path, os.O_PATH)).st_mode)
                    os.close(src_dir)
                    if ins.keyword == "ADD" and source_image is None and is_archive(src, path):
                        extract(src, path, root_fd, dest, self.store.root)
                        continue
                    copy(src, path.rstrip("/") + "/." if is_dir else path, Side(root_fd, "the image"),
                         dest, owner=owner, follow=True)
            finally:
                os.close(src_fd)
        mount_point = None
        try:
            if source_image is not None:                 # where the child mounts --from's image
                import tempfile
                mount_point = tempfile.mkdtemp(prefix=".build-from-", dir=self.store.root)
            return self.cached_or(key, lambda: self.in_container(stage, key, stage.config, str(ins), work))
        finally:
            if mount_point is not None:
                os.rmdir(mount_point)                    # (the mount died with the child)

    # ── helpers: images, containers, the context ────────────────────────────────────────

    def in_container(self, stage: Stage, key: str, config: dict, what: str, work):
        """A created container of the current image; work(its root fd) in a private mount
        namespace (storage/cp.py); its changes committed as the step's layer."""
        from ..container import Container
        from ..create import create
        from ..stop import remove_container
        from ..storage.cp import with_container_root
        container = Container(stage.image.ref, ["/bin/true"], root=self.root, entrypoint=[], net="none")
        container.record = create(container.config, container.store)
        try:
            with_container_root(self.store, self.images, container.record, work)
            return self.commit(container.record, key, config, what)
        finally:
            remove_container(container.record.id, force=True, root=self.root)

    def commit(self, rec, key: str, config: dict, what: str):
        from ..storage.commit import commit
        return commit(self.images, self.store, self.store.load(rec.id) or rec, cache_ref(key),
                      config=config, source=what)

    def save(self, ref: str, layers, config: dict, *, size: int = 0, source: str = ""):
        from ..storage.images import save_config_image
        return save_config_image(self.images, ref, layers, config, size=size, source=source)

    def scratch(self):
        """FROM scratch: an image of one empty layer (made once)."""
        ref = cache_ref("scratch")
        if self.images.exists(ref):
            return self.images.get(ref)
        from ..storage.images import save_config_image
        return save_config_image(self.images, ref, [], {}, source="scratch", empty_layer=True)

    def source_image(self, ins: Instruction, name: str):
        stage = next((s for s in self.stages if s.name == name), None)
        if stage is None and name.isdigit() and int(name) < len(self.stages):
            stage = self.stages[int(name)]
        return stage.image if stage is not None else self.images.convert_to_layers(name)

    def open_source(self, image, mount_point: str | None) -> int:
        """The context (a plain directory) or, for --from, the image's layers mounted read-only
        (we are in the copying child's private mount namespace)."""
        if image is None:
            return os.open(self.context, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        from ..storage.cp import mount_image_read_only
        return mount_image_read_only(image, mount_point)

    def context_paths(self, ins: Instruction, src: str) -> list[str]:
        """SRC (a path or a wildcard) → paths relative to the context, which it must not leave."""
        rel = os.path.normpath(src.lstrip("/")) if src.strip("/") else "."
        if rel == ".." or rel.startswith("../"):
            raise ins.error(f"{src}: outside the build context {self.context} (COPY and ADD "
                            "read only files below it)")
        if any(c in rel for c in "*?["):
            found = sorted(p for p in glob.glob(rel, root_dir=self.context)
                           if not (self.ignore and self.ignore(p)))
            if not found:
                raise ins.error(f"{src}: no file in the build context matches")
            return found
        if not os.path.lexists(self.context / rel) or (self.ignore and rel != "." and self.ignore(rel)):
            raise ins.error(f"{src}: no such file in the build context {self.context}"
                            + (" (it is excluded by .containerignore/.dockerignore)"
                               if os.path.lexists(self.context / rel) else ""))
        return [rel]

    def hash_context(self, rel: str) -> str:
        """Names, modes, owners and bytes below context/REL (resolved inside the context)."""
        from ..storage.cp import Side, tree_digest
        root_fd = os.open(self.context, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return tree_digest(Side(root_fd, "the build context", ignore=self.ignore), rel)
        finally:
            os.close(root_fd)


# ── small pieces ──────────────────────────────────────────────────────────────────────────

def cache_ref(key: str) -> str:
    return f"{CACHE}:{key}"


def find_containerfile(context: Path) -> Path:
    for name in ("Containerfile", "Dockerfile"):
        if (context / name).is_file():
            return context / name
    raise ConfigError(f"no Containerfile or Dockerfile in {context}: give one with -f")


def parse_build_args(items) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise ConfigError(f"invalid --build-arg {item!r}: use KEY=VALUE")
        out[key] = value if eq else os.environ.get(key, "")
    return out


def env_dict(config: dict) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in config.get("env") or [])


def split_from(ins: Instruction, text: str) -> tuple[str, str, str]:
    words = text.split()
    if len(words) == 3 and words[1].lower() == "as":
        return words[0], "as", words[2]
    if len(words) != 1:
        raise ins.error("use FROM IMAGE [AS NAME]")
    return words[0], "", ""


def check_platform(ins: Instruction, platform: str) -> None:
    from ..storage.oci import machine_arch
    if platform.split("/")[:2] != ["linux", machine_arch()]:
        raise ins.error(f"--platform={platform}: this machine runs linux/{machine_arch()} containers "
                        "only (there is no emulator)")


def copy_arguments(ins: Instruction, rest: str) -> tuple[list[str], str]:
    words = exec_form(rest)
    if words is None:
        try:
            words = shlex.split(rest)
        except ValueError as e:
            raise ins.error(str(e)) from None
    if len(words) < 2:
        raise ins.error("use SRC… DEST")
    return words[:-1], words[-1]


def healthcheck(ins: Instruction, text: str, shell: list[str]) -> dict:
    if text.strip().upper() == "NONE":
        return {"test": ["NONE"]}
    opts, rest = flags(ins, text, ("interval", "timeout", "start-period", "retries"))
    word, _, cmd = rest.partition(" ")
    if word.upper() != "CMD" or not cmd.strip():
        raise ins.error("use HEALTHCHECK [--interval=…] CMD command, or HEALTHCHECK NONE")
    form = exec_form(cmd.strip())
    check = {"test": ["CMD", *form] if form else ["CMD-SHELL", cmd.strip()]}
    check.update({k.replace("-", "_"): v for k, v in opts.items()})
    return check


def is_archive(src, path: str) -> bool:
    """ADD unpacks a local tar archive (plain, gzip, xz, bzip2), as Docker does."""
    from ..storage.unpack import detect_format
    try:
        fd = src.open(path, os.O_RDONLY)
    except MinicontainerError:
        return False
    with os.fdopen(fd, "rb", buffering=0) as raw:
        if not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
            return False
        try:
            detect_format(raw, Path(path))
            return True
        except MinicontainerError:
            return False


def extract(src, path: str, root_fd: int, dest: str, scratch_root) -> None:
    """ADD ARCHIVE DEST: unpacked safely (storage/unpack.py) into an empty scratch directory,
    then copied into DEST inside the image with the archive's owners (storage/cp.py)."""
    import tempfile
    from ..storage.cp import Side, copy
    from ..storage.unpack import unpack
    make_dir(root_fd, dest)
    scratch = tempfile.mkdtemp(prefix=".build-add-", dir=scratch_root)
    fd = src.open(path, os.O_RDONLY)
    try:
        unpack(f"/proc/self/fd/{fd}", scratch)
        copy(Side(None, ""), f"{scratch}/.", Side(root_fd, "the image"), dest.rstrip("/") + "/",
             owner=None)
    finally:
        os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)


def make_dir(root_fd: int, path: str, owner: tuple[int, int] | None = None) -> None:
    """mkdir -p PATH inside the root (openat2 RESOLVE_IN_ROOT for every component); the
    directories it creates get OWNER (COPY --chown: Docker's "new directories" too)."""
    from ..kernel.openat2 import make_dirs_in_root
    os.close(make_dirs_in_root(root_fd, path, owner=owner))


def resolve_owner(root_fd: int, spec: str) -> tuple[int, int]:
    """--chown=USER[:GROUP]: numbers, or names from the image's /etc/passwd and /etc/group."""
    user, _, group = spec.partition(":")

    def lookup(file: str, name: str) -> list[str] | None:
        if name.isdigit():
            return None
        from ..kernel.openat2 import openat2
        try:
            fd = openat2(root_fd, file.lstrip("/"), os.O_RDONLY)
        except MinicontainerError:
            return None
        with os.fdopen(fd) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
        return None
    entry = lookup("/etc/passwd", user)
    if entry is None and not user.isdigit():
        raise ConfigError(f"--chown={spec}: no user {user!r} in the image's /etc/passwd")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry else uid
    if group:
        g = lookup("/etc/group", group)
        if g is None and not group.isdigit():
            raise ConfigError(f"--chown={spec}: no group {group!r} in the image's /etc/group")
        gid = int(g[2]) if g else int(group)
    return uid, gid


def read_ignore_file(context: Path):
    """.containerignore (else .dockerignore): patterns of paths COPY and ADD leave out;
    `!pattern` takes a path back; `**` spans directories. None without a file."""
    for name in (".containerignore", ".dockerignore"):
        path = context / name
        if path.is_file():
            break
    else:
        return None
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negate, re.compile(glob_regex(pattern))))

    def ignored(rel: str) -> bool:
        rel = os.path.normpath(rel)
        parts = rel.split("/")
        result = False
        for negate, regex in rules:
            if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                result = not negate
        return result
    return ignored


def glob_regex(pattern: str) -> str:
    """Go's filepath.Match plus Docker's `**`: * and ? never cross a /."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1] = "(.*/)?"
                i += 1
            continue
        out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
        i += 1
    return "".join(out)


def build_image(*, context: str, file: str | None = None, ref: str | None = None, build_args=(),
                no_cache: bool = False, network: str = "bridge", root=None, out=print):
    """`minicontainer build`: the final image (tagged REF if given)."""
    return Builder(context=context, file=file, ref=ref, build_args=build_args, no_cache=no_cache,
                   network=network, root=root, out=out).build()
