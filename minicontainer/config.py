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
    publish: list[str] = field(default_factory=list)      # -p [HOST_IP:]HOST_PORT:CTR_PORT[/PROTO]
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
    pod: str | None = None                                # --pod NAME: join a pod (orchestration/pods.py)
    cgroup_parent: str | None = None                      # the pod's group: ours is made below it

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
        if self.volumes or self.tmpfs:
            from .storage.volumes import parse_mounts
            parse_mounts(self.volumes, self.tmpfs)        # ConfigError on the first bad one
        return self

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
