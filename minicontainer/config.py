"""What a container should be: every `run` option, checked before anything is created.

Validation happens here, in the CLI's process, before the state entry, overlay directories,
cgroup or fork exist — so a bad value costs nothing and leaves nothing behind.
"""
from __future__ import annotations

import os
import re

from .errors import ConfigError
from .records import field, record

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ISOLATIONS = ("pivot_root", "chroot")


@record
class ContainerConfig:
    image: str
    command: list[str] = field(default_factory=list)
    name: str | None = None
    hostname: str | None = None
    env: list[str] = field(default_factory=list)          # KEY=VALUE, or KEY to copy the host's
    workdir: str | None = None
    user: str | None = None                               # UID[:GID] or NAME[:GROUP]
    read_only: bool = False
    isolation: str = "pivot_root"
    interactive: bool = False                             # -i: keep stdin attached
    remove: bool = False                                  # --rm
    limits: dict = field(default_factory=dict)            # -m, --pids-limit, … (cgroups/)
    net: str = "bridge"                                   # none | host | bridge | NETWORK | container:NAME
    publish: list[str] = field(default_factory=list)      # -p [HOST_IP:][HOST_PORT:]CTR_PORT[/PROTO]
    publish_all: bool = False                             # -P: every exposed port on a random host port
    expose: list[str] = field(default_factory=list)       # --expose PORT[/PROTO] (the image's EXPOSE too)
    cap_add: list[str] = field(default_factory=list)      # security.py: capabilities(7)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    security_opt: list[str] = field(default_factory=list) # seccomp=…, no-new-privileges…
    tty: bool = False                                     # -t: a pseudo-terminal (tty.py)
    detach: bool = False                                  # -d: run under a supervisor (supervisor.py)
    init: bool = False                                    # --init: a tiny PID 1 that reaps (init.py)
    restart: str = "no"                                   # no | on-failure[:N] | always | unless-stopped
    volumes: list[str] = field(default_factory=list)      # -v HOST_DIR|NAME:CTR_DIR[:ro] (storage/volumes.py)
    tmpfs: list[str] = field(default_factory=list)        # --tmpfs CTR_DIR[:size=64m,mode=1777]
    mount: list[str] = field(default_factory=list)        # --mount type=bind|volume|tmpfs,source=…,target=…
    storage_opt: list[str] = field(default_factory=list)  # --storage-opt size=N (storage/disk.py)
    pod: str | None = None                                # --pod NAME: join a pod (orchestration/pods.py)
    cgroup_parent: str | None = None                      # the pod's group: ours is made below it
    labels: dict = field(default_factory=dict)            # -l KEY=VALUE (the image's LABELs under them)
    entrypoint: list[str] | None = None                   # --entrypoint: replaces the image's ([] clears it)
    stop_signal: str | None = None                        # --stop-signal: what `stop` sends first (TERM)
    stop_timeout: int | None = None                       # --stop-timeout: seconds before SIGKILL (10)
    cidfile: str | None = None                            # --cidfile: the ID is written there at creation
    add_host: list[str] = field(default_factory=list)     # --add-host NAME:IP → /etc/hosts
    dns: list[str] = field(default_factory=list)          # --dns IP → /etc/resolv.conf nameservers
    dns_search: list[str] = field(default_factory=list)   # --dns-search DOMAIN → its search line
    platform: str | None = None                           # --platform linux/ARCH: only this machine's
    pull: str = "missing"                                 # --pull never|missing (there is no registry)
    ulimit: list[str] = field(default_factory=list)       # --ulimit TYPE=SOFT[:HARD]   (runopts.py:
    sysctl: list[str] = field(default_factory=list)       # --sysctl KEY=VALUE          these become
    pid: str | None = None                                # --pid host|container:NAME   spec fields)
    ipc: str | None = None                                # --ipc host|private|shareable|container:NAME
    uts: str | None = None                                # --uts host
    oom_score_adj: str | None = None                      # --oom-score-adj -1000…1000
    group_add: list[str] = field(default_factory=list)    # --group-add GID
    shm_size: str | None = None                           # --shm-size 64m: /dev/shm's size
    device: list[str] = field(default_factory=list)       # --device HOST[:CTR][:rwm]: mknod + devices cgroup
    health_cmd: str | None = None                         # --health-cmd CMD (health.py: the monitor
    health_interval: str | None = None                    # runs it with exec every interval; these
    health_timeout: str | None = None                     # win over the image's HEALTHCHECK)
    health_start_period: str | None = None
    health_retries: str | None = None
    no_healthcheck: bool = False                          # --no-healthcheck: not even the image's
    healthcheck: dict | None = None                       # the image's HEALTHCHECK (apply_image_config)

    def validate(self) -> "ContainerConfig":
        if self.isolation not in ISOLATIONS:
            raise ConfigError(f"invalid --isolation {self.isolation!r}: use pivot_root (the default) or chroot")
        if self.hostname is not None and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})", self.hostname):
            raise ConfigError(f"invalid --hostname {self.hostname!r}: use up to 63 letters, digits, '.' and '-'")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise ConfigError(f"invalid --workdir {self.workdir!r}: it must be an absolute path inside the container")
        if self.user is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", self.user):
            raise ConfigError(f"invalid --user {self.user!r}: use UID[:GID] or NAME[:GROUP]")
        for item in self.env:
            if not item or item.startswith("=") or "\0" in item:
                raise ConfigError(f"invalid --env {item!r}: use KEY=VALUE (or KEY to copy it from your shell)")
        if self.command and not self.command[0]:
            raise ConfigError("the command is an empty string: give a program to run, e.g. `sh`")
        if parse_restart_policy(self.restart)[0] != "no":
            if self.remove:
                raise ConfigError("--restart and --rm conflict: a container that is removed when it "
                                  "exits cannot be restarted; drop one of them")
            if not self.detach:
                raise ConfigError("--restart needs -d: the restart policy is applied by the "
                                  "container's supervisor, which only detached containers have")
        if self.stop_signal is not None:
            from .signals import parse_signal
            parse_signal(self.stop_signal)
        if self.stop_timeout is not None and int(self.stop_timeout) < -1:
            raise ConfigError(f"invalid --stop-timeout {self.stop_timeout}: give seconds (-1: wait forever)")
        if self.cidfile is not None and os.path.exists(self.cidfile):
            raise ConfigError(f"the container ID file {self.cidfile} exists: another container may "
                              "use it; remove it or choose another --cidfile")
        if self.no_healthcheck or self.healthcheck or any(getattr(self, f) is not None for f in
                                                           ("health_cmd", "health_interval", "health_timeout",
                                                            "health_start_period", "health_retries")):
            from .health import settings
            settings(self)                                # ConfigError on a bad value
        if self.cgroup_parent is not None and not re.fullmatch(
                r"/?([A-Za-z0-9][A-Za-z0-9_.-]{0,127}/)*[A-Za-z0-9][A-Za-z0-9_.-]{0,127}/?", self.cgroup_parent):
            raise ConfigError(f"invalid --cgroup-parent {self.cgroup_parent!r}: use a group path such as "
                              "/mygroup (from the root) or mygroup (below minicontainer/), names of "
                              "letters, digits, '_', '.', '-'")
        if self.add_host or self.dns or self.dns_search or self.platform or self.pull != "missing":
            check_docker_options(self)
        from . import runopts
        if runopts.used(self):
            runopts.check(self)
        if self.volumes or self.tmpfs or self.mount:
            from .storage.volumes import parse_mounts
            parse_mounts(self.volumes, self.tmpfs, self.mount)   # ConfigError on the first bad one
        self.storage_size                                 # ConfigError on a bad --storage-opt
        return self

    @property
    def storage_size(self) -> int | None:
        """--storage-opt size=N in bytes: the writable layer's limit (None: unlimited)."""
        if not self.storage_opt:
            return None
        from .storage.disk import parse_size_option
        return parse_size_option("--storage-opt", self.storage_opt)

    def environment(self, hostname: str, home: str | None = "/root") -> dict[str, str]:
        """The container's environment: Docker's defaults, then each -e in order. home=None:
        HOME is left to the container's PID 1, which reads it from the image's /etc/passwd."""
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, **({"HOME": home} if home else {})}
        if os.environ.get("TERM") and self.interactive:
            env["TERM"] = os.environ["TERM"]
        if self.tty:                                       # a terminal needs a type (Docker: xterm)
            env["TERM"] = os.environ.get("TERM") or "xterm"
        for item in self.env:
            key, eq, value = item.partition("=")
            if eq:
                env[key] = value
            elif key in os.environ:                        # `-e KEY` copies the host's value
                env[key] = os.environ[key]
        return env


RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")


def parse_restart_policy(value: str) -> tuple[str, int]:
    """'on-failure:3' → ('on-failure', 3); the count is a maximum (0: no maximum)."""
    name, _, count = (value or "no").partition(":")
    if name not in RESTART_POLICIES or (count and (name != "on-failure" or not count.isdigit())):
        raise ConfigError(f"invalid --restart {value!r}: use no, on-failure[:MAX-RETRIES], always "
                          "or unless-stopped")
    return name, int(count or 0)


def check_docker_options(config: ContainerConfig) -> None:
    """--add-host, --dns, --dns-search, --platform, --pull: checked before anything exists."""
    import ipaddress
    import platform as host
    from .network.hosts import split_host
    for item in config.add_host:
        name, ip = split_host(item)
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ConfigError(f"invalid --add-host {item!r}: use NAME:IP with an IP address "
                              "(host-gateway is not supported)") from None
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*)", name):
            raise ConfigError(f"invalid --add-host {item!r}: {name!r} is not a host name")
    for server in config.dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ConfigError(f"invalid --dns {server!r}: give a name server's IP address") from None
    for domain in config.dns_search:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
            raise ConfigError(f"invalid --dns-search {domain!r}: give a domain name")
    if (config.add_host or config.dns or config.dns_search) and config.net.startswith("container:"):
        raise ConfigError("--add-host/--dns/--dns-search conflict with --net container:NAME: "
                          "the container shares that container's files")
    if config.platform is not None:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(host.machine(), host.machine())
        if config.platform.split("/")[:2] not in (["linux", arch], ["linux"]):
            raise ConfigError(f"--platform {config.platform}: this machine runs linux/{arch} "
                              "containers only (there is no emulator)")
    if config.pull not in ("never", "missing"):
        raise ConfigError(f"--pull {config.pull}: there is no registry to pull from; use never or "
                          "missing (images come from `image import`, `image load` or `build`)")
