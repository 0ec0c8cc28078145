"""bundle/config.json → spec.Spec: every field the runtime spec defines, checked before anything
is created. An error names the field (`process.rlimits[1].type`) and what to use instead.

    the OCI runtime spec: config.md, config-linux.md; `runc spec` writes an example bundle
"""
from __future__ import annotations

import json
import os

from ..errors import ConfigError
from ..kernel import capabilities
from ..process import RLIMITS
from ..spec import CAPABILITY_SETS, NAMESPACE_TYPES, Device, Mount, Namespace, Process, Spec

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def load_bundle(bundle: str) -> tuple[Spec, dict]:
    """Read and check BUNDLE/config.json; (the spec, the document as read)."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: give the bundle directory with --bundle "
                          "(`runc spec` writes a config.json to start from)") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object (ociVersion, root, process …)")
    return from_oci(doc, os.path.abspath(bundle)), doc


def want(value, kind, where: str, what: str):
    """value, if it is of the JSON type `kind` (None stays None); else a ConfigError."""
    if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"config.json: {where} must be {what}, not {json.dumps(value)[:40]}")


def from_oci(doc: dict, bundle: str) -> Spec:
    """The checked Spec of a config.json document (root.path relative to `bundle`)."""
    want(doc.get("ociVersion"), str, "ociVersion", "a version string such as \"1.0.2\"")
    root = want(doc.get("root"), dict, "root", "an object with path") or {}
    if not want(root.get("path"), str, "root.path", "a directory"):
        raise ConfigError("config.json: root.path is missing: name the container's root "
                          "directory (relative to the bundle), e.g. \"rootfs\"")
    root_path = os.path.normpath(os.path.join(bundle, root["path"]))
    if not os.path.isdir(root_path):
        raise ConfigError(f"config.json: root.path {root['path']!r} is not a directory ({root_path})")
    linux = want(doc.get("linux"), dict, "linux", "an object") or {}
    namespaces = read_namespaces(linux.get("namespaces"))
    spec = Spec(root_path=root_path, process=read_process(doc.get("process")),
                root_readonly=bool(root.get("readonly")),
                hostname=want(doc.get("hostname"), str, "hostname", "a string") or None,
                domainname=want(doc.get("domainname"), str, "domainname", "a string") or None,
                mounts=read_mounts(doc.get("mounts")), namespaces=namespaces,
                uid_mappings=read_id_maps(linux.get("uidMappings"), "linux.uidMappings"),
                gid_mappings=read_id_maps(linux.get("gidMappings"), "linux.gidMappings"),
                devices=read_devices(linux.get("devices")),
                resources=want(linux.get("resources"), dict, "linux.resources", "an object") or {},
                cgroups_path=want(linux.get("cgroupsPath"), str, "linux.cgroupsPath", "a path") or "",
                sysctl=read_sysctl(linux.get("sysctl")),
                masked_paths=read_paths(linux.get("maskedPaths"), "linux.maskedPaths"),
                readonly_paths=read_paths(linux.get("readonlyPaths"), "linux.readonlyPaths"),
                rootfs_propagation=want(linux.get("rootfsPropagation"), str, "linux.rootfsPropagation",
                                        "a propagation name") or "rprivate",
                seccomp=want(linux.get("seccomp"), dict, "linux.seccomp", "an object"),
                hooks=read_hooks(doc.get("hooks")),
                annotations=want(doc.get("annotations"), dict, "annotations", "an object") or {})
    check_consistency(spec)
    return spec


def read_process(p) -> Process:
    p = want(p, dict, "process", "an object with args")
    if not p:
        raise ConfigError("config.json: process is missing: `create` needs the command to run "
                          "(process.args)")
    args = read_strings(p.get("args"), "process.args")
    if not args or not args[0]:
        raise ConfigError("config.json: process.args is empty: give the command to run, e.g. [\"sh\"]")
    env = read_strings(p.get("env"), "process.env")
    for item in env:
        if "=" not in item:
            raise ConfigError(f"config.json: process.env entry {item!r} is not KEY=VALUE")
    cwd = want(p.get("cwd"), str, "process.cwd", "an absolute path") or "/"
    if not cwd.startswith("/"):
        raise ConfigError(f"config.json: process.cwd {cwd!r} must be an absolute path")
    user = want(p.get("user"), dict, "process.user", "an object with uid and gid") or {}
    if user.get("username"):
        raise ConfigError("config.json: process.user.username is for Windows; give uid and gid")
    caps = want(p.get("capabilities"), dict, "process.capabilities", "an object of capability sets") or {}
    rlimits = []
    for i, r in enumerate(want(p.get("rlimits"), list, "process.rlimits", "a list") or []):
        where = f"process.rlimits[{i}]"
        r = want(r, dict, where, "an object with type, soft and hard")
        if r.get("type") not in RLIMITS:
            raise ConfigError(f"config.json: {where}.type {r.get('type')!r} is not a limit this kernel "
                              f"knows: use one of {', '.join(sorted(RLIMITS))}")
        soft, hard = (read_uint(r.get(k), f"{where}.{k}") for k in ("soft", "hard"))
        if soft > hard:
            raise ConfigError(f"config.json: {where}: soft {soft} is above hard {hard}")
        rlimits.append((r["type"], soft, hard))
    oom = want(p.get("oomScoreAdj"), int, "process.oomScoreAdj", "a number from -1000 to 1000")
    if oom is not None and not -1000 <= oom <= 1000:
        raise ConfigError(f"config.json: process.oomScoreAdj {oom} is outside -1000..1000")
    return Process(args=args, env=env, cwd=cwd, uid=read_uint(user.get("uid", 0), "process.user.uid"),
                   gid=read_uint(user.get("gid", 0), "process.user.gid"),
                   additional_gids=[read_uint(g, "process.user.additionalGids")
                                    for g in want(user.get("additionalGids"), list,
                                                  "process.user.additionalGids", "a list") or []],
                   umask=want(user.get("umask"), int, "process.user.umask", "a number"),
                   terminal=bool(p.get("terminal")), capabilities=read_capabilities(caps),
                   rlimits=rlimits, no_new_privileges=bool(p.get("noNewPrivileges")), oom_score_adj=oom)


def read_capabilities(caps: dict) -> dict:
    out = {}
    for name, names in caps.items():
        if name not in CAPABILITY_SETS:
            raise ConfigError(f"config.json: process.capabilities.{name}: use {', '.join(CAPABILITY_SETS)}")
        chosen = []
        for cap in read_strings(names, f"process.capabilities.{name}"):
            try:
                cap = capabilities.parse(cap)
            except ConfigError:
                raise ConfigError(f"config.json: process.capabilities.{name}: unknown capability "
                                  f"{cap!r} (see capabilities(7))") from None
            if capabilities.CAPABILITIES[cap] <= capabilities.last_cap():   # newer than this kernel:
                chosen.append(cap)                                           # ignored, as runc does
        out[name] = chosen
    return out


def read_namespaces(entries) -> list:
    spaces, seen = [], set()
    for i, ns in enumerate(want(entries, list, "linux.namespaces", "a list") or []):
        ns = want(ns, dict, f"linux.namespaces[{i}]", "an object with type")
        kind, path = ns.get("type"), want(ns.get("path"), str, f"linux.namespaces[{i}].path", "a path")
        if kind not in NAMESPACE_TYPES:
            raise ConfigError(f"config.json: linux.namespaces[{i}]: unknown namespace type {kind!r}: "
                              f"use {', '.join(NAMESPACE_TYPES)}")
        if kind in seen:
            raise ConfigError(f"config.json: linux.namespaces: {kind} is given twice")
        if path and not os.path.exists(path):
            raise ConfigError(f"config.json: linux.namespaces[{i}]: the {kind} namespace {path} does not exist")
        seen.add(kind)
        spaces.append(Namespace(kind, path or None))
    return spaces


def read_mounts(entries) -> list:
    mounts = []
    for i, m in enumerate(want(entries, list, "mounts", "a list") or []):
        where = f"mounts[{i}]"
        m = want(m, dict, where, "an object with destination")
        dest = want(m.get("destination"), str, f"{where}.destination", "an absolute path")
        if not dest or not dest.startswith("/"):
            raise ConfigError(f"config.json: {where}.destination {dest!r} must be an absolute path")
        mounts.append(Mount(os.path.normpath(dest), want(m.get("type"), str, f"{where}.type", "a type") or "bind",
                            want(m.get("source"), str, f"{where}.source", "a path") or "",
                            read_strings(m.get("options"), f"{where}.options")))
    return mounts


def read_devices(entries) -> list:
    devices = []
    for i, d in enumerate(want(entries, list, "linux.devices", "a list") or []):
        where = f"linux.devices[{i}]"
        d = want(d, dict, where, "an object with path, type, major, minor")
        path = want(d.get("path"), str, f"{where}.path", "a path under /dev")
        if not path or not path.startswith("/dev/"):
            raise ConfigError(f"config.json: {where}.path {path!r} must be a path under /dev/")
        if d.get("type") not in ("c", "b", "u", "p"):
            raise ConfigError(f"config.json: {where}.type {d.get('type')!r}: use c, b, u or p")
        devices.append(Device(path, d["type"], read_uint(d.get("major", 0), f"{where}.major"),
                              read_uint(d.get("minor", 0), f"{where}.minor"),
                              want(d.get("fileMode"), int, f"{where}.fileMode", "a mode"),
                              want(d.get("uid"), int, f"{where}.uid", "a number"),
                              want(d.get("gid"), int, f"{where}.gid", "a number")))
    return devices


def read_id_maps(entries, where: str) -> list:
    maps = []
    for i, m in enumerate(want(entries, list, where, "a list") or []):
        m = want(m, dict, f"{where}[{i}]", "an object with containerID, hostID, size")
        maps.append(tuple(read_uint(m.get(k), f"{where}[{i}].{k}") for k in ("containerID", "hostID", "size")))
    return maps


def read_sysctl(values) -> dict:
    values = want(values, dict, "linux.sysctl", "an object of name: value") or {}
    for key, value in values.items():
        if not isinstance(value, str) or "/" in key or ".." in key:
            raise ConfigError(f"config.json: linux.sysctl {key!r}: expected \"name.of.setting\": \"value\"")
    return dict(values)


def read_hooks(hooks) -> dict:
    hooks = want(hooks, dict, "hooks", "an object") or {}
    out = {}
    for kind, entries in hooks.items():
        if kind not in HOOK_KINDS:
            raise ConfigError(f"config.json: hooks.{kind}: use {', '.join(HOOK_KINDS)}")
        out[kind] = []
        for i, h in enumerate(want(entries, list, f"hooks.{kind}", "a list") or []):
            h = want(h, dict, f"hooks.{kind}[{i}]", "an object with path")
            if not isinstance(h.get("path"), str) or not h["path"].startswith("/"):
                raise ConfigError(f"config.json: hooks.{kind}[{i}].path must be an absolute path")
            timeout = want(h.get("timeout"), int, f"hooks.{kind}[{i}].timeout", "seconds")
            if timeout is not None and timeout <= 0:
                raise ConfigError(f"config.json: hooks.{kind}[{i}].timeout must be above 0")
            out[kind].append({"path": h["path"], "args": read_strings(h.get("args"), f"hooks.{kind}[{i}].args"),
                              "env": read_strings(h.get("env"), f"hooks.{kind}[{i}].env"), "timeout": timeout})
    return out


def read_strings(values, where: str) -> list:
    values = want(values, list, where, "a list of strings") or []
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"config.json: {where} must be a list of strings")
    return list(values)


def read_paths(values, where: str) -> list:
    paths = read_strings(values, where)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigError(f"config.json: {where}: {path!r} must be an absolute path in the container")
    return paths


def read_uint(value, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"config.json: {where} must be a number of 0 or more, not {value!r}")
    return value


def check_consistency(spec: Spec) -> None:
    """What each field needs of the others (runc refuses the same)."""
    if (spec.uid_mappings or spec.gid_mappings) and not spec.creates("user"):
        raise ConfigError("config.json: linux.uidMappings/gidMappings need a new user namespace "
                          "(add {\"type\": \"user\"} to linux.namespaces)")
    if spec.creates("user") and not (spec.uid_mappings and spec.gid_mappings):
        raise ConfigError("config.json: a new user namespace needs linux.uidMappings and gidMappings")
    if (spec.hostname or spec.domainname) and spec.namespace("uts") is None:
        raise ConfigError("config.json: hostname/domainname need a uts namespace "
                          "(add {\"type\": \"uts\"} to linux.namespaces)")
    for key in spec.sysctl:
        if not namespaced_sysctl(key, spec):
            raise ConfigError(f"config.json: linux.sysctl {key!r} is not in a namespace of the "
                              "container: it would change the host")


def namespaced_sysctl(key: str, spec: Spec) -> bool:
    """sysctls that belong to the IPC, UTS or network namespace (runc's list)."""
    if key in ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced") or key.startswith("fs.mqueue."):
        return spec.namespace("ipc") is not None
    if key in ("kernel.domainname", "kernel.hostname"):
        return spec.namespace("uts") is not None
    if key.startswith("net."):
        return spec.namespace("network") is not None
    return False
