"""The library API: what the CLI, the labs, the demos, the tests and the benchmarks all use.

    from minicontainer import Container
    status = Container("busybox", ["sh", "-c", "echo hi"], remove=True).run()

    Container(image, command, **options)   options are ContainerConfig's fields (config.py)
        .run() -> int                      start, wait, clean up; the container's exit status
        .start() -> str                    `run -d`: under a supervisor (supervisor.py); the ID
                                           container.py's Container, plus pod=NAME (`run --pod`)
    list_containers, find_container, status_text, container_cgroup        status.py
    stop_container, kill_container, wait_container, remove_container      stop.py
    pause_container, unpause_container                                    freezer.py
    inspect_container, top_container                                      inspection.py
    read_logs, follow_logs                                                logs.py
    exec_in_container(ref, command, …)     exec.py
    collect_garbage(root=None, dry_run=False)                             gc.py
    boot(root=None)                        `system boot`: after a reboot (recovery.py)
    create_pod, list_pods, inspect_pod, start_pod, stop_pod, remove_pod   orchestration/pods.py
    apply_manifests, get_objects, describe_object, scale_deployment, rollout, delete_objects,
    top_pods, controller_status …   kubectl's verbs (orchestration/kubectl.py, controller.py)
    create_cluster, list_nodes, fail_node, drain_node …  a cluster on one machine (cluster/)
    create_vm, start_vm, migrate_vm, snapshot_vm, …  QEMU virtual machines (vm/, docs/vms.md)
    image_store, volume_store, network_store(root=None)   the stores of images, volumes, networks
    create_pool, list_pools, remove_pool, migrate_volume   storage pools (storage/pools.py, migrate.py)
    serve_dashboard(root=None, port=8080, bind="127.0.0.1", allow_actions=False)   dashboard/
    LAZY below: teaching (labs, demos, doctor) and the facts labs check against, loaded on use

The rule that keeps the CLI thin: cli/ imports nothing of minicontainer but this module and
errors.py (tests/test_cli_fastlane.py checks it, and that labs/ and demos/ only use names in
__all__). A new verb adds its library function here, to __all__, and calls it from cli/.
"""
from __future__ import annotations

import time
from pathlib import Path

from . import container
from .errors import ContainerError
from .records import asdict
from .state import ContainerRecord, open_store, state_root
from . import recovery

recovery.register()             # every store this process opens is checked once after a reboot

# Loaded on first use (PEP 562 __getattr__ below): `run` must not pay for what only `ps`,
# `stop`, `lab` or `doctor` need. name → the module (under minicontainer.) that defines it.
LAZY = {
    "list_containers": "status", "status_text": "status", "human_duration": "status",
    "container_cgroup": "status",
    "stop_container": "stop", "kill_container": "stop", "wait_container": "stop",
    "remove_container": "stop",
    "pause_container": "freezer", "unpause_container": "freezer",
    "inspect_container": "inspection", "top_container": "inspection",
    "read_logs": "logs", "follow_logs": "logs",
    "list_labs": "labs", "find_lab": "labs", "start_lab": "labs", "workdir_for": "labs",
    "check_lab": "labs", "msg": "labs",
    "list_demos": "demos", "run_demo": "demos",
    "diagnose": "doctor", "format_report": "doctor", "module_state": "doctor",
    "loaded_modules": "doctor", "probe_unprivileged_userns": "doctor",
    "detect_layout": "cgroups.layout", "list_cgroups": "cgroups", "open_cgroup": "cgroups",
    "build_recipe": "builder", "load_builder": "builder",
    "format_changes": "storage.diff",
    "read_settings": "orchestration.controller", "settings_path": "orchestration.controller",
    "ObjectStore": "orchestration.store",
    "create_cluster": "cluster.nodes", "remove_cluster": "cluster.nodes", "add_node": "cluster.nodes",
    "remove_node": "cluster.nodes", "list_nodes": "cluster.nodes", "describe_node": "cluster.nodes",
    "cordon_node": "cluster.nodes", "drain_node": "cluster.nodes", "fail_node": "cluster.nodes",
    "recover_node": "cluster.nodes", "migrate_pod": "cluster.migrate", "rebalance": "cluster.migrate",
    "pod_node": "cluster.members",
}

__all__ = ["Container", "ContainerRecord", "state_root", "find_container", "asdict", "exec_in_container",
           "collect_garbage", "boot", "container_stats", "image_store", "image_users", "build_image",
           "import_image", "export_image", "volume_store", "remove_volume", "create_pool", "list_pools", "remove_pool",
           "migrate_volume", "container_diff",
           "commit_container", "container_snapshots", "export_container", "disk_usage",
           "network_store", "inspect_networks", "preload_runtime",
           "create_pod", "list_pods", "inspect_pod", "start_pod", "stop_pod", "remove_pod",
           "create_vm", "start_vm", "stop_vm", "kill_vm", "remove_vm", "update_vm", "list_vms",
           "inspect_vm", "attach_vm_console", "vm_console_log", "snapshot_vm", "list_vm_snapshots",
           "restore_vm_snapshot", "remove_vm_snapshot", "vm_disk_chain", "migrate_vm",
           "storage_migrate_vm", "vm_accelerator",
           "apply_manifests", "delete_objects", "get_objects", "watch_objects", "describe_object",
           "scale_deployment", "rollout", "pod_container_ref", "top_pods", "controller_status",
           "start_controller", "stop_controller",
           "ps_containers", "container_rows", "render_list", "render_template", "start_container",
           "restart_container", "rename_container", "container_ports", "attach_container",
           "copy_files", "container_logs", "follow_container_logs", "follow_events", "format_event",
           "prune_containers", "image_history", "system_info", "save_images", "load_images",
           "build_containerfile", "list_images", "tag_image", "serve_dashboard", *LAZY]

CLI_SHAPED = ("env_file", "label", "entrypoint", "stop_timeout")   # as typed: create.expand_options
CONFIG_FIELDS = ("entrypoint", "stop_timeout")


def __getattr__(name: str):
    if name in LAZY:
        from importlib import import_module
        return getattr(import_module(f"{__package__}.{LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Container(container.Container):
    """container.Container, plus pod=NAME (`run --pod`): the container joins the pod's network
    namespace, cgroup and hostname (orchestration/pods.py)."""

    def __init__(self, image: str, command=(), *, root=None, **options):
        if any(options.get(k) not in (None, []) for k in CLI_SHAPED):
            from .create import expand_options               # --env-file, -l, --entrypoint …
            options = expand_options(options)
        options = {k: v for k, v in options.items() if k not in CLI_SHAPED or k in CONFIG_FIELDS}
        if options.get("pod"):                    # --pod NAME: the pod's netns, cgroup, hostname
            from .orchestration.pods import join_pod
            options = join_pod(options, root)
        super().__init__(image, command, root=root, **options)

    def create(self) -> str:
        """`create`: the record only (checked as run checks it); `start_container` runs it."""
        from .create import create
        self.record = create(self.config, self.store)
        return self.record.id


# ── pods (orchestration/pods.py) ───────────────────────────────────────────────────────────


def create_pod(name=None, *, root=None, publish=(), labels=None) -> dict:
    """`pod create`: a cgroup and an infra container holding the pod's namespaces."""
    from .orchestration.pods import create_pod as create
    return create(name, root=root, publish=publish, labels=labels)


def list_pods(root=None) -> list[dict]:
    from .orchestration.pods import list_pods as pods
    return pods(root)


def inspect_pod(ref: str, root=None) -> dict:
    from .orchestration.pods import inspect_pod as inspect
    return inspect(ref, root)


def start_pod(ref: str, root=None) -> dict:
    from .orchestration.pods import start_pod as start
    return start(ref, root)


def stop_pod(ref: str, timeout: float = 10, root=None) -> dict:
    from .orchestration.pods import stop_pod as stop
    return stop(ref, timeout, root)


def remove_pod(ref: str, *, force: bool = False, root=None) -> dict:
    from .orchestration.pods import remove_pod as remove
    return remove(ref, force=force, root=root)


# ── Kubernetes objects and the controller (orchestration/) ───────────────────────────────


def apply_manifests(sources, root=None, stdin=None) -> list[str]:
    """`apply -f FILE|DIR|-`: every document checked, then stored; starts the controller."""
    from .orchestration.kubectl import apply
    return apply(list(sources), root, stdin)


def delete_objects(root=None, *, sources=(), kind=None, names=(), wait=True, stdin=None) -> list[str]:
    from .orchestration.kubectl import delete
    return delete(root, sources, kind, names, wait, stdin)


def get_objects(kind: str, name: str | None = None, root=None, output: str = "") -> str:
    """`get KIND [NAME] [-o wide|json|yaml]` as kubectl prints it."""
    from .orchestration.kubectl import get_text, kind_of
    return get_text(kind_of(kind), name, root, output)


def watch_objects(kind: str, name=None, root=None, emit=print, output: str = "", stop=lambda: False):
    from .orchestration.kubectl import kind_of, watch
    watch(kind_of(kind), name, root, emit, output, stop)


def describe_object(kind: str, name: str | None = None, root=None) -> str:
    from .orchestration.kubectl import describe, split_ref
    return describe(*split_ref(kind, name), root)


def scale_deployment(ref: str, replicas: int, root=None) -> str:
    from .orchestration.kubectl import scale
    return scale(ref, replicas, root)


def rollout(action: str, ref: str, root=None, emit=print, timeout: float = 300, to_revision: int = 0) -> str | None:
    """`rollout status|undo|restart|history deployment/NAME`."""
    from .orchestration import kubectl as k
    if action == "status":
        return k.rollout_status(ref, root, emit, timeout)
    if action == "undo":
        return k.rollout_undo(ref, root, to_revision)
    if action == "restart":
        return k.rollout_restart(ref, root)
    if action == "history":
        return k.rollout_history(ref, root)
    raise ContainerError(f"unknown rollout action {action!r}: use status, undo, restart or history")


def pod_container_ref(ref: str, container: str | None = None, root=None) -> str:
    """`logs pod/NAME -c C`, `exec pod/NAME`: the container record running it now."""
    from .orchestration.kubectl import pod_container
    return pod_container(ref, container, root)


def top_pods(root=None) -> str:
    from .orchestration.kubectl import top_pods as top
    return top(root)


def controller_status(root=None) -> dict:
    from .orchestration.controller import controller_status as status
    return status(root)


def start_controller(root=None, **settings) -> dict:
    """`controller start [--backoff S] [--hpa-window S]` (apply starts it too)."""
    from .orchestration.controller import ensure_controller
    return ensure_controller(root, **settings)


def stop_controller(root=None) -> bool:
    from .orchestration.controller import stop_controller as stop
    return stop(root)


def serve_dashboard(root=None, *, port: int = 8080, bind: str = "127.0.0.1", allow_actions: bool = False,
                    interval: float = 1.0, ready=print, stop=None) -> None:
    """`dashboard`: serve the live view until Ctrl-C (or the threading.Event `stop` is set);
    ready(url) once it listens. Any address but the loopback one gets a token (dashboard/)."""
    from .dashboard import serve
    serve(root, port=port, bind=bind, allow_actions=allow_actions, interval=interval, ready=ready, stop=stop)


def boot(root=None) -> list[str]:
    """`system boot`: records a reboot ended are tidied; --restart always/unless-stopped
    containers start again. Returns the names started (recovery.py)."""
    from .recovery import boot as boot_containers
    return boot_containers(root)


def find_container(ref: str, root=None) -> ContainerRecord:
    """A container's record by full ID, unique ID prefix or name (as recorded: see status.py
    for what the kernel says now)."""
    return open_store(root).find(ref)


def preload_runtime() -> None:
    """Import the run sequence now: a process that forks many containers (demos/) pays for
    it once, instead of once in every child."""
    from . import runtime  # noqa: F401


def exec_in_container(ref: str, command, **options) -> int:
    """`minicontainer exec`: run a command in a running container (exec.py)."""
    from .exec import exec_in_container as run_exec
    return run_exec(ref, list(command), **options)


def collect_garbage(root=None, *, dry_run: bool = False, prune: bool = False):
    """`minicontainer gc` / `system prune` (gc.py): what crashed runs left behind."""
    from .gc import collect
    return collect(root, dry_run=dry_run, prune=prune)


def image_store(root=None):
    """The ImageStore: unpacked images under <root>/images (storage/images.py)."""
    from .storage.images import image_store as store
    return store(root)


def container_stats(refs=(), *, root=None, interval: float = 0.5) -> list[dict]:
    """`minicontainer stats`: memory, CPU % and PIDs of running containers, read from their
    cgroups. CPU % is the cgroup's CPU time over `interval` seconds of wall time (100 % = one
    full CPU, as `docker stats` counts it). A container without a cgroup (rootless, where none
    is delegated) has nothing to read: named, it is an error; otherwise it is left out."""
    from .status import container_cgroup, is_running, list_containers, no_cgroup_reason
    store = open_store(root)
    records = [store.find(r) for r in refs] if refs else list_containers(root)
    running = [(r, container_cgroup(r)) for r in records if r.status == "running" and is_running(r)]
    for r, cg in running:
        if cg is None and refs:
            raise ContainerError(f"container {r.name} has no stats to show: {no_cgroup_reason(r)}")
    running = [(r, cg) for r, cg in running if cg is not None]
    before = {r.id: (cg.stats().get("cpu_usage_ns") or 0, time.monotonic()) for r, cg in running}
    time.sleep(interval if running else 0)
    rows = []
    for r, cg in running:
        s = cg.stats()
        cpu0, t0 = before[r.id]
        cpu = ((s.get("cpu_usage_ns") or 0) - cpu0) / 1e9 / max(time.monotonic() - t0, 1e-6)
        rows.append({"id": r.id, "name": r.name, "cpu_percent": round(100 * cpu, 2),
                     "memory_usage": s.get("memory_usage") or 0,
                     "memory_limit": s.get("memory_limit") or host_memory(),
                     "pids": s.get("pids_current") or 0, "pids_limit": s.get("pids_limit")})
    return rows


def host_memory() -> int:
    """MemTotal from /proc/meminfo: what an unlimited container may use (Docker shows this)."""
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


# ── storage: volumes, diff, commit, snapshots, export, image exchange (storage/) ────────────


def volume_store(root=None):
    """The VolumeStore: named volumes under <root>/volumes (storage/volumes.py)."""
    from .storage.volumes import volume_store as store
    return store(root)


def volume_users(name: str, root=None) -> list[str]:
    """The containers (running or not) whose -v names volume NAME."""
    from .storage.volumes import volume_names
    return [r.name for r in open_store(root).list() if name in volume_names(r.config)]


def remove_volume(name: str, root=None):
    """`volume rm`: refused while a container lists the volume."""
    return volume_store(root).remove(name, volume_users(name, root))


def create_pool(name: str, *, path: str | None = None, size: str | None = None, root=None):
    """`volume pool create NAME --path DIR | --size N`: a directory or a loop-mounted ext4 image
    where volumes can live (storage/pools.py). Returns the Pool."""
    from .storage.pools import PoolStore
    return PoolStore(state_root(root)).create(name, path=path, size=size)


def list_pools(root=None) -> list:
    """`volume pool ls`: the default pool first, then the others (Pool records)."""
    from .storage.pools import PoolStore
    return PoolStore(state_root(root)).list()


def remove_pool(name: str, root=None):
    """`volume pool rm NAME`: refused while volumes live in it."""
    from .storage.pools import PoolStore
    in_it = [v.name for v in volume_store(root).list() if v.pool == name]
    return PoolStore(state_root(root)).remove(name, in_it)


def migrate_volume(name: str, to_pool: str, root=None) -> dict:
    """`volume migrate NAME --to POOL`: copy while its containers run, pause them for the last
    changes and the switch of their mounts (storage/migrate.py). Returns the figures, among
    them pause_ms."""
    from .status import current_status
    from .storage.migrate import migrate_volume as migrate
    from .storage.volumes import volume_names
    users = [r for r in open_store(root).list() if name in volume_names(r.config)
             and current_status(r) in ("running", "paused")]
    return migrate(volume_store(root), name, to_pool, users)


def image_users(root=None):
    """in_use callback for the image store: the containers (running or not) of an image."""
    def users(image) -> list[str]:
        return [r.name for r in open_store(root).list() if r.image == image.ref]
    return users


def container_diff(ref: str, root=None) -> list[tuple[str, str]]:
    """`diff`: [("A"|"C"|"D", "/path")] read from the container's upper dir (storage/diff.py)."""
    from .storage.diff import changes
    from .storage.snapshots import upper_dir
    store = open_store(root)
    rec = store.find(ref)
    with upper_dir(store.container_dir(rec.id), rec) as upper:
        return changes(upper, image_store(root).get(rec.image).lower_dirs)


def commit_container(ref: str, image_ref: str, root=None):
    """`commit`: the container's changes become the top layer of image IMAGE_REF."""
    from .storage.commit import commit
    store = open_store(root)
    return commit(image_store(root), store, store.find(ref), image_ref, in_use=image_users(root))


def container_snapshots(ref: str, root=None):
    """`snapshot …`: the Snapshots of one container (.create/.list/.restore/.remove)."""
    from .storage.snapshots import Snapshots
    store = open_store(root)
    return Snapshots(store, store.find(ref))


def export_container(ref: str, out, root=None) -> int:
    """`export`: the container's whole filesystem as a tar (frozen while written)."""
    from .storage.export import export_container as export
    store = open_store(root)
    return export(store, image_store(root), store.find(ref), out)


def import_image(path, ref: str | None = None, root=None, progress=None):
    """`image import`: a rootfs tarball, docker/podman save archive or OCI archive/layout."""
    from .storage.oci import import_image as do_import
    return do_import(image_store(root), path, ref, in_use=image_users(root), progress=progress)


def export_image(ref: str, out, fmt: str = "oci", root=None) -> int:
    """`image export --format oci|docker`: an archive skopeo and podman read."""
    from .storage.oci import export_image as do_export
    return do_export(image_store(root), ref, out, fmt)


def disk_usage(root=None) -> list[dict]:
    """`system df`: images (each layer counted once), containers, volumes (storage/usage.py)."""
    from .storage.usage import disk_usage as usage
    return usage(state_root(root))


def build_image(recipe: str, root=None):
    """`image build`: rootfs-builder builds the recipe's tarball, the image store imports it.
    Returns (rootfs-builder's BuildResult, the Image)."""
    from .builder import build_recipe
    result = build_recipe(recipe)
    image = image_store(root).import_archive(result.path, f"{result.name}:{result.tag}",
                                             source=str(recipe), in_use=image_users(root),
                                             config=getattr(result, "config", None))
    return result, image


# ── what a Docker user types (issue 15): create.py, listing.py, storage/cp.py, build/, events.py,
#    housekeeping.py ───────────────────────────────────────────────────────────────────────


def ps_containers(root=None, *, all: bool = True, filters=(), last: int | None = None):
    """The records, status checked against the kernel, oldest first. all=False: only running,
    paused and restarting ones (`ps` without -a); filters: `ps --filter` (listing.py);
    last=N: the N most recently created."""
    from .status import list_containers
    records = list_containers(root)
    if any(f.startswith(("status=", "exited=")) for f in filters):
        all = True                                   # Docker: asking for a status shows it
    if not all:
        records = [r for r in records if r.status in ("running", "paused", "restarting")]
    if filters:
        from .listing import filter_containers
        records = filter_containers(records, filters, image_store(root))
    if last is not None:
        records = records[-last:] if last > 0 else records
    return records


def container_rows(records, *, no_trunc: bool = False, with_record: bool = False) -> list[dict]:
    """Each record with Docker's `ps --format` field names (.ID, .Names, .Status …);
    with_record: the record's own fields too (`ps --format json`)."""
    from .listing import container_row
    from .records import asdict
    rows = [container_row(r, no_trunc) for r in records]
    if with_record:
        rows = [{**asdict(r), "status_text": row["Status"], **row} for r, row in zip(records, rows)]
    return rows


def render_list(fmt: str, rows: list[dict], kind: str = "") -> str:
    """--format json | 'table {{.A}}\t{{.B}}' | '{{.A}}' over a list's rows (listing.py)."""
    from .listing import PS_HEADERS, render
    return render(fmt, rows, PS_HEADERS if kind == "ps" else None)


def render_template(fmt: str, data: dict) -> str:
    """One Go template over one object (`inspect --format`)."""
    from .listing import render_one
    return render_one(fmt.replace("\\t", "\t").replace("\\n", "\n"), data)


def start_container(ref: str, *, attach: bool = False, interactive: bool = False, root=None):
    """`start`: a created or stopped container runs again, with its files (create.py)."""
    from .create import start_container as start
    return start(ref, attach=attach, interactive=interactive, root=root)


def restart_container(ref: str, *, timeout: float | None = None, root=None) -> str:
    from .create import restart_container as restart
    return restart(ref, timeout=timeout, root=root)


def rename_container(ref: str, new_name: str, root=None):
    from .create import rename_container as rename
    return rename(ref, new_name, root)


def container_ports(ref: str, private: str | None = None, root=None) -> list[str]:
    from .create import container_ports as ports
    return ports(ref, private, root)


def attach_container(ref: str, emit, *, sig_proxy: bool = True, stdin: bool = True,
                     streams=("stdout", "stderr"), from_start: bool = False, root=None) -> int:
    """`attach` (and `run -a` / `run --sig-proxy=false`): output, stdin, signals (create.py)."""
    from .create import attach_container as attach
    return attach(ref, emit, sig_proxy=sig_proxy, stdin=stdin, streams=streams,
                  from_start=from_start, root=root)


def copy_files(src: str, dest: str, *, archive: bool = False, follow: bool = False, root=None) -> None:
    """`cp SRC DEST`: one of them CONTAINER:PATH (storage/cp.py)."""
    from .storage.cp import copy_with_container, parse_cp_args
    ref, ctr_path, host_path, to_container = parse_cp_args(src, dest)
    store = open_store(root)
    copy_with_container(store, image_store(root), store.find(ref), to_container=to_container,
                        ctr_path=ctr_path, host_path=host_path, archive=archive, follow=follow)


def container_logs(ref: str, *, tail: int | None = None, since: str | None = None,
                   until: str | None = None, root=None) -> list:
    """`logs [--since T] [--until T] [-n N]`: (ts, stream, line), the window first, then the tail."""
    from .housekeeping import in_window, parse_time
    from .logs import last, read_logs
    start, end = (parse_time(since) if since else None), (parse_time(until) if until else None)
    entries = read_logs(ref, root=root)
    if start is not None or end is not None:
        entries = [e for e in entries if in_window(e[0], start, end)]
    return last(entries, tail)


def follow_container_logs(ref: str, emit, *, tail: int | None = None, since: str | None = None,
                          until: str | None = None, root=None) -> None:
    """`logs -f` with --since/--until: only the entries inside the window are emitted."""
    from .housekeeping import in_window, parse_time
    from .logs import follow_logs
    start, end = (parse_time(since) if since else None), (parse_time(until) if until else None)
    if start is None and end is None:
        return follow_logs(ref, emit, tail=tail, root=root)
    follow_logs(ref, lambda ts, stream, text: in_window(ts, start, end) and emit(ts, stream, text),
                tail=tail, root=root)


def follow_events(emit, *, since: str | None = None, until: str | None = None, filters=(), root=None):
    """`events`: emit(event) for each container event in the window (events.py); without
    until it keeps following, as `docker events` does."""
    from .events import follow_events as follow
    from .housekeeping import parse_time
    follow(state_root(root), emit, since=parse_time(since) if since else None,
           until=parse_time(until) if until else None, filters=filters)


def format_event(event: dict) -> str:
    from .events import format_event as fmt
    return fmt(event)


def prune_containers(root=None) -> list[str]:
    """`container prune`: every container that is not running goes (housekeeping.py)."""
    from .housekeeping import prune_containers as prune
    return prune(root)


def image_history(ref: str, root=None) -> list[dict]:
    from .housekeeping import image_history as history
    return history(image_store(root).get(ref))


def system_info(root=None) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    from .housekeeping import system_info as info
    try:
        installed = version("minicontainer")
    except PackageNotFoundError:                  # run from a checkout that is not installed
        installed = "unknown"
    return info(root, installed)


def save_images(refs, out, root=None) -> int:
    """`image save -o FILE IMAGE`: a docker-archive (what `docker load` reads)."""
    if len(refs) != 1:
        from .errors import ConfigError
        raise ConfigError("image save writes one image per archive here: give exactly one")
    return export_image(refs[0], out, "docker", root)


def load_images(path, root=None):
    """`image load -i FILE`: a docker/podman save archive or an OCI archive (its own names)."""
    return import_image(path, None, root)


def build_containerfile(*, context: str, file: str | None = None, ref: str | None = None, build_args=(),
                no_cache: bool = False, network: str = "bridge", root=None, out=print):
    """`build`: a Containerfile → an image, one cached layer per instruction (build/)."""
    from .build.builder import build_image as build
    return build(context=context, file=file, ref=ref, build_args=build_args, no_cache=no_cache,
                 network=network, root=root, out=out)


def list_images(root=None, *, all: bool = False):
    """The images; the build cache's steps (build-cache:…) only with all=True."""
    from .build.builder import CACHE
    return [i for i in image_store(root).list() if all or i.name != CACHE]


def tag_image(source: str, target: str, root=None):
    """`image tag SOURCE TARGET`: another name for the same layers and configuration."""
    from .storage.images import save_config_image
    store = image_store(root)
    image = store.convert_to_layers(source)
    return save_config_image(store, target, image.layers, image.config, size=image.size,
                             source=f"tag of {image.ref}", in_use=image_users(root))


# ── networks (network/) ──────────────────────────────────────────────────────────────────────


def network_store(root=None):
    """The NetworkStore: network definitions and leases under <root>/networks (network/)."""
    from .network import NetworkStore
    return NetworkStore(state_root(root) / "networks")


def inspect_networks(names, root=None) -> list[dict]:
    """`network inspect`: each network's definition and containers, and — for containers that
    run — the live bridge and eth0 as the kernel reports them (network/live.py)."""
    from .status import is_running
    networks, store = network_store(root), open_store(root)
    out = []
    for name in names:
        pids = {}
        for cid in networks.get(name).leases():
            rec = store.load(cid)
            if rec is not None and is_running(rec):
                pids[cid] = rec.pid
        out.append(networks.inspect(name, pids))
    return out


# ── virtual machines (minicontainer/vm/, docs/vms.md) ─────────────────────────────────────────


def _vms(root):
    from .vm.machine import VmStore
    return VmStore(root)


def create_vm(name: str, *, memory_mb: int = 256, disk: str = "1G", image: str = "busybox", node: str = "",
              restart_on_failure: bool = False, root=None):
    """`vm create`: a qcow2 disk built from a rootfs-builder image; returns the VmRecord. `node`: a
    cluster node to run on; `restart_on_failure`: booted again on a survivor when it fails."""
    from .vm.machine import create
    return create(_vms(root), name, memory_mb=memory_mb, disk=disk, image=image, node=node,
                  restart_on_failure=restart_on_failure)


def start_vm(name: str, *, wait_boot: bool = False, timeout: float = 120.0, root=None):
    """`vm start`: launch QEMU (KVM or TCG, see vm/accel.py); with wait_boot, until the guest's
    init says its first line on the console."""
    from .vm.machine import BOOT_LINE, start, wait_console
    store = _vms(root)
    log = store.vm_dir(name) / "console.log"
    offset = log.stat().st_size if log.exists() else 0
    rec = start(store, name)
    if wait_boot:
        wait_console(store, name, BOOT_LINE, after=offset, timeout=timeout)
    return rec


def stop_vm(name: str, *, timeout: float = 10.0, root=None):
    """`vm stop`: Ctrl-Alt-Del on the guest's keyboard, then QMP quit after `timeout` seconds."""
    from .vm.machine import stop
    return stop(_vms(root), name, timeout=timeout)


def kill_vm(name: str, *, root=None):
    from .vm.machine import kill
    return kill(_vms(root), name)


def remove_vm(name: str, *, force: bool = False, root=None) -> None:
    from .vm.machine import remove
    remove(_vms(root), name, force=force)


def update_vm(name: str, *, memory_mb: int | None = None, node: str | None = None, root=None):
    """`vm update`: a stopped VM's memory size, or the node it starts on ("localhost": off the cluster)."""
    from .vm.machine import update
    return update(_vms(root), name, memory_mb=memory_mb, node=node)


def list_vms(root=None) -> list[dict]:
    """`vm ls`: name, state, PID, accelerator and the disk chain of every VM."""
    from .vm.disks import describe_chain
    from .vm.machine import list_vms as records
    return [{"name": r.name, "status": r.status, "pid": r.pid if r.running else None,
             "accel": r.accel if r.running else "", "memory_mb": r.memory_mb, "image": r.image,
             "node": r.node, "restart_on_failure": r.restart_on_failure,
             "chain": describe_chain(Path(r.disk))} for r in records(_vms(root))]


def inspect_vm(name: str, *, root=None) -> dict:
    from .vm.machine import inspect
    return inspect(_vms(root), name)


def attach_vm_console(name: str, *, root=None) -> None:
    """`vm console`: the guest's serial console on this terminal; Ctrl-] detaches."""
    from .vm.machine import attach_console
    attach_console(_vms(root), name)


def vm_console_log(name: str, *, root=None) -> Path:
    """The file holding everything the guest wrote on its console (across migrations)."""
    from .vm.machine import console_log
    return console_log(_vms(root), name)


def snapshot_vm(name: str, tag: str, *, kind: str = "internal", root=None) -> dict:
    """`vm snapshot create`: internal (RAM + CPU + disk) or external (a qcow2 overlay)."""
    from .vm.snapshots import create_snapshot
    return create_snapshot(_vms(root), name, tag, kind=kind)


def list_vm_snapshots(name: str, *, root=None) -> list[dict]:
    from .vm.snapshots import list_snapshots
    return list_snapshots(_vms(root), name)


def restore_vm_snapshot(name: str, tag: str, *, root=None) -> dict:
    from .vm.snapshots import restore_snapshot
    return restore_snapshot(_vms(root), name, tag)


def remove_vm_snapshot(name: str, tag: str, *, root=None) -> None:
    from .vm.snapshots import remove_snapshot
    remove_snapshot(_vms(root), name, tag)


def vm_disk_chain(name: str, *, root=None) -> list[dict]:
    """qemu-img info --backing-chain of the VM's disk, top overlay first."""
    from .vm.disks import backing_chain
    return backing_chain(Path(_vms(root).load(name).disk))


def migrate_vm(name: str, host: str, *, downtime_limit_ms: int = 300, root=None) -> dict:
    """`vm migrate`: live, to a QEMU started with -incoming; QEMU's figures (total time,
    downtime, transferred bytes, dirty-page rounds)."""
    from .vm.migration import migrate
    return migrate(_vms(root), name, host, downtime_limit_ms=downtime_limit_ms)


def storage_migrate_vm(name: str, target: str, *, root=None) -> dict:
    """`vm storage-migrate`: drive-mirror to a new qcow2, block-job-complete, qemu-img compare."""
    from .vm.migration import storage_migrate
    return storage_migrate(_vms(root), name, target)


def vm_accelerator() -> dict:
    """KVM or TCG for the next VM, and why (`doctor` prints it)."""
    from .vm.accel import choose
    choice = choose()
    return {"accel": choice.accel, "reason": choice.reason}
