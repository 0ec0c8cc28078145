"""`minicontainer doctor`: can this machine run containers, and if not, what is the fix?

Containers are not one kernel feature but several. This module looks at each of them the way
a student would by hand, and prints one line per finding, ✓ or ✗, with the command that fixes
a ✗:

    kernel             uname -r
    namespaces         ls -l /proc/self/ns                                  namespaces(7)
    cgroups            stat -fc %T /sys/fs/cgroup; cat …/cgroup.controllers  cgroups(7)
    kernel modules     lsmod; modinfo overlay; zcat /proc/config.gz | grep CONFIG_VETH
                                                                            lsmod(8), modinfo(8), modprobe(8)
    user namespaces    sysctl user.max_user_namespaces kernel.unprivileged_userns_clone
                       kernel.apparmor_restrict_unprivileged_userns         user_namespaces(7)
    environment        WSL? inside a container? inside a VM?                systemd-detect-virt(1)

Nothing here changes the machine: files are read, and short-lived child processes try
unshare(2) — a user namespace as an unprivileged user, *and* a namespace inside it
(userns.probe: a namespace that can be made but not used, as under Ubuntu's AppArmor
restriction, is caught; that is the only reliable test).
`doctor` exits 1 when a line that `run` needs is ✗, else 0. Run by root, that is everything;
run by an ordinary user, `run` works rootless (docs/rootless.md) when the probe succeeds.
Optional lines (rootless extras, lab tools) never change the exit status.
"""
from __future__ import annotations

import gzip
import os
import platform
import re
import shutil
from pathlib import Path

from .records import asdict, field, record

MIN_KERNEL = (4, 18)          # overlayfs with index, cgroup2 pids/memory/cpu, pivot_root(".", ".")

# The kernel modules a container runtime uses, the config symbol that builds each one, and why.
MODULES = {
    "overlay": ("OVERLAY_FS", "overlayfs: the container's root, image below + its own writes above"),
    "veth": ("VETH", "virtual ethernet pairs: one end in the container, one on the host"),
    "bridge": ("BRIDGE", "a software switch that connects the containers' veth ends"),
    "nf_nat": ("NF_NAT", "network address translation: containers out (MASQUERADE), -p in (DNAT)"),
}

# What each namespace hides from a process inside it (namespaces(7)).
NAMESPACES = {
    "mnt": "the mount table",
    "uts": "the hostname",
    "ipc": "System V IPC and POSIX message queues",
    "net": "network interfaces, routes, ports, firewall",
    "pid": "process IDs (the first process is PID 1)",
    "cgroup": "the cgroup tree above its own group",
    "user": "user and group IDs (root inside, nobody outside)",
    "time": "the boot and monotonic clocks",
}
NEEDED_NAMESPACES = ("mnt", "uts", "ipc", "net", "pid", "cgroup")   # what `run` creates
NEEDED_CONTROLLERS = ("memory", "pids", "cpu", "cpuset")           # what -m, --pids-limit, --cpus… need


@record
class Finding:
    section: str
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True          # False: a ✗ here does not make `doctor` fail

    @property
    def mark(self) -> str:
        return "✓" if self.ok else "✗"


@record
class Report:
    findings: list[Finding] = field(default_factory=list)
    facts: dict = field(default_factory=dict, repr=False)    # measured once, used by several checks

    def add(self, *args, **kwargs) -> Finding:
        finding = Finding(*args, **kwargs)
        self.findings.append(finding)
        return finding

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings if f.required)

    def find(self, section: str, name: str) -> Finding:
        return next(f for f in self.findings if f.section == section and f.name == name)

    def as_dicts(self) -> list[dict]:
        return [asdict(f) for f in self.findings]


# ── the checks ────────────────────────────────────────────────────────────────────────────

def diagnose() -> Report:
    """Every check, in the order `doctor` prints them."""
    report = Report()
    check_kernel(report)
    check_privileges(report)
    check_namespaces(report)
    check_cgroups(report)
    check_modules(report)
    check_seccomp(report)
    check_user_namespaces(report)
    check_delegation(report)
    check_environment(report)
    check_tools(report)
    return report


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """'6.18.44-fc-v509' → (6, 18)."""
    match = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def check_kernel(report: Report) -> None:
    release = platform.release()
    version = kernel_version(release)
    ok = version >= MIN_KERNEL
    report.add("kernel", "version", ok, f"Linux {release} ({platform.machine()})",
               "" if ok else f"minicontainer needs Linux ≥ {MIN_KERNEL[0]}.{MIN_KERNEL[1]}: "
                             "upgrade the kernel (apt-get install linux-image-amd64) and reboot")


def check_privileges(report: Report) -> None:
    """Root can do everything. An ordinary user runs containers rootless — in a user namespace
    of its own, where it is root (userns.py) — if the kernel lets it make and use one."""
    uid = os.geteuid()
    if uid == 0:
        report.add("kernel", "privileges", True, "running as root: every feature (bridge networks, -p, "
                   "cgroup limits)")
        return
    ok, detail, fix = userns_probe(report)
    if ok:
        report.add("kernel", "privileges", True, f"running as uid {uid}: rootless mode — containers run in a "
                   "user namespace (root inside, you outside); what needs root on the host is out: bridge "
                   "networks and -p (use --net none/host), limits without a delegated cgroup v2 subtree, "
                   "device nodes (docs/rootless.md)")
    else:
        report.add("kernel", "privileges", False, f"running as uid {uid}, and rootless mode cannot work: {detail}",
                   f"{fix}; or run `sudo minicontainer …`")


def check_namespaces(report: Report) -> None:
    for name, hides in NAMESPACES.items():
        present = os.path.exists(f"/proc/self/ns/{name}")
        needed = name in NEEDED_NAMESPACES
        symbol = {"mnt": "CONFIG_NAMESPACES", "cgroup": "CONFIG_CGROUPS"}.get(name, f"CONFIG_{name.upper()}_NS")
        report.add("namespaces", name, present, f"/proc/self/ns/{name}: hides {hides}",
                   "" if present else f"this kernel was built without it: a kernel with {symbol}=y",
                   required=needed)


def check_cgroups(report: Report) -> None:
    from .cgroups.layout import detect_layout
    from .errors import CgroupError
    try:
        layout = detect_layout()
    except CgroupError as e:
        report.add("cgroups", "layout", False, str(e),
                   "mount -t cgroup2 cgroup2 /sys/fs/cgroup (or boot with systemd, which mounts it)")
        return
    report.add("cgroups", "layout", True, describe_layout(layout))
    usable = usable_controllers(layout)
    for controller in NEEDED_CONTROLLERS:
        ok = controller in usable
        report.add("cgroups", controller, ok, usable.get(controller, "not available"),
                   "" if ok else controller_fix(layout, controller))


def describe_layout(layout) -> str:
    if layout.kind == "unified":
        return f"unified (cgroup v2): one tree at {layout.root}; minicontainer uses v2"
    if layout.kind == "hybrid":
        return (f"hybrid: v1 controllers in {layout.root}/<controller>, a cgroup2 at {layout.unified} "
                "without them; minicontainer uses v1")
    return f"legacy (cgroup v1): one tree per controller in {layout.root}/<controller>; minicontainer uses v1"


def usable_controllers(layout) -> dict[str, str]:
    """controller → where it lives, for the controllers a new group can use."""
    if layout.version == 2:
        try:
            available = (layout.unified / "cgroup.controllers").read_text().split()
        except OSError:
            available = []
        return {c: f"{layout.unified}/cgroup.controllers lists {c}" for c in available}
    return {c: f"v1 hierarchy {path}" for c, path in layout.v1.items()}


def controller_fix(layout, controller: str) -> str:
    if layout.version == 2:
        return (f"the kernel offers no {controller} controller in cgroup2: if a v1 hierarchy holds it, "
                f"boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1={controller})")
    return (f"mkdir -p {layout.root}/{controller} && mount -t cgroup -o {controller} cgroup "
            f"{layout.root}/{controller}   (or boot with pure cgroup v2)")


# ── kernel modules ────────────────────────────────────────────────────────────────────────

@record
class ModuleState:
    name: str
    state: str          # loaded | builtin | loadable | missing | unknown
    how: str            # how we know, as a student would check it


def loaded_modules() -> set[str] | None:
    """Names in /proc/modules (what lsmod prints); None if the kernel has no module support."""
    try:
        return {line.split()[0] for line in Path("/proc/modules").read_text().splitlines() if line}
    except OSError:
        return None


def modules_dir() -> Path:
    return Path("/lib/modules") / platform.release()


def builtin_modules() -> set[str] | None:
    """Modules compiled into the kernel, from /lib/modules/$(uname -r)/modules.builtin."""
    try:
        text = (modules_dir() / "modules.builtin").read_text()
    except OSError:
        return None
    return {Path(line).name.split(".ko")[0].replace("-", "_") for line in text.split()}


def module_files() -> set[str] | None:
    """Loadable modules installed for this kernel, from modules.dep (what modinfo and modprobe read)."""
    try:
        text = (modules_dir() / "modules.dep").read_text()
    except OSError:
        return None
    return {Path(line.split(":")[0]).name.split(".ko")[0].replace("-", "_") for line in text.splitlines() if line}


def kernel_config() -> dict[str, str] | None:
    """The kernel's build configuration: /proc/config.gz, else /boot/config-$(uname -r)."""
    text = None
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            text = Path(f"/boot/config-{platform.release()}").read_text()
        except OSError:
            return None
    return dict(re.findall(r"^CONFIG_(\w+)=(\S+)", text, re.M))


_FACTS: dict = {}     # what the kernel says about modules, read once per process


def module_state(name: str) -> ModuleState:
    """Is kernel feature `name` usable: loaded, built in, loadable on demand, or missing?

    Shell:  grep "^NAME " /proc/modules              loaded (lsmod)
            grep /NAME.ko /lib/modules/$(uname -r)/modules.builtin    built in
            zcat /proc/config.gz | grep CONFIG_X      =y built in, =m a module
            modinfo NAME                              loadable: modprobe NAME loads it
    """
    if not _FACTS:
        _FACTS.update(loaded=loaded_modules(), builtin=builtin_modules(), files=module_files(),
                      config=kernel_config())
    loaded, builtin, files, config = _FACTS["loaded"], _FACTS["builtin"], _FACTS["files"], _FACTS["config"]
    symbol = MODULES.get(name, (name.upper(), ""))[0]
    if loaded is not None and name in loaded:
        return ModuleState(name, "loaded", "listed by lsmod (/proc/modules)")
    if builtin is not None and name in builtin:
        return ModuleState(name, "builtin", f"listed in {modules_dir()}/modules.builtin")
    if config is not None and config.get(symbol) == "y":
        where = "/proc/config.gz" if os.path.exists("/proc/config.gz") else f"/boot/config-{platform.release()}"
        return ModuleState(name, "builtin", f"CONFIG_{symbol}=y in {where}")
    if files is not None and name in files:
        return ModuleState(name, "loadable", f"modinfo {name} finds it; not loaded yet")
    if config is not None and config.get(symbol) == "m":
        return ModuleState(name, "loadable", f"CONFIG_{symbol}=m, but no module file in {modules_dir()}")
    if loaded is None and config is None:
        return ModuleState(name, "unknown", "no /proc/modules and no kernel config to read")
    if files is None and config is None:
        return ModuleState(name, "unknown", f"not loaded, and no {modules_dir()} to look in")
    return ModuleState(name, "missing", "not loaded, not built in, no module file")


def check_modules(report: Report) -> None:
    loaded = loaded_modules()
    if loaded is None:
        report.add("modules", "support", True, "this kernel has no loadable modules (no /proc/modules, "
                   "CONFIG_MODULES unset): every feature is built in or absent")
    for name, (symbol, why) in MODULES.items():
        m = module_state(name)
        ok = m.state in ("loaded", "builtin", "loadable")
        detail = f"{m.state}: {m.how} — {why}"
        if m.state == "loadable":
            detail += f" (the kernel loads it on first use; now: modprobe {name})"
        fix = ""
        if m.state == "missing":
            fix = (f"install the modules of your kernel (apt-get install linux-modules-extra-$(uname -r) on Ubuntu), "
                   f"or use a kernel built with CONFIG_{symbol}")
        elif m.state == "unknown":
            fix = f"modprobe {name}, then check again (lsmod | grep {name})"
        report.add("modules", name, ok, detail, fix, required=name == "overlay")
    report.add("modules", "lab 08", True,
               "this kernel loads modules: do all of lab 08 here, modprobe and modprobe -r included"
               if loaded is not None else
               "modprobe has nothing to do on this kernel: do lab 08's modprobe task in the QEMU VM, whose "
               "kernel loads modules: `make vm-shell` in the checkout boots it with a root shell "
               "(labs/08-modules/README.md, \"Two paths\")", required=False)
    if loaded is not None:
        tools = [t for t in ("lsmod", "modinfo", "modprobe") if shutil.which(t)]
        ok = len(tools) == 3
        report.add("modules", "kmod", ok, "lsmod, modinfo and modprobe are installed" if ok
                   else "lsmod, modinfo or modprobe is missing", "" if ok else "apt-get install kmod",
                   required=False)


def check_seccomp(report: Report) -> None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    ok = "Seccomp:" in status
    report.add("security", "seccomp", ok, "seccomp filters are available (Seccomp: in /proc/self/status)"
               if ok else "no Seccomp: line in /proc/self/status",
               "" if ok else "a kernel with CONFIG_SECCOMP_FILTER=y (or run with --security-opt seccomp=unconfined)")


# ── user namespaces (rootless) ────────────────────────────────────────────────────────────

def read_sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def userns_probe(report: Report) -> tuple[bool, str, str]:
    """userns.probe() — (ok, detail, fix) — once per report: two checks use it."""
    if "userns" not in report.facts:
        from . import userns
        report.facts["userns"] = userns.probe()
    return report.facts["userns"]


def probe_unprivileged_userns() -> tuple[bool, str]:
    """(ok, why): can an unprivileged user make a user namespace *and use it*? (the labs ask)"""
    from . import userns
    ok, detail, fix = userns.probe()
    return ok, detail if ok else f"{detail} (fix: {fix})"


def check_user_namespaces(report: Report) -> None:
    """The real test is userns.probe(): a child, as nobody (or as you), makes a user namespace,
    maps itself and makes a UTS namespace in it. A bare `unshare -U` is not enough: under
    Ubuntu's AppArmor restriction it succeeds, and the namespace's root may then do nothing."""
    max_ns = read_sysctl("/proc/sys/user/max_user_namespaces")
    debian_knob = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone")
    apparmor = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    if not os.path.exists("/proc/self/ns/user"):
        report.add("user namespaces", "unprivileged", False, "no user namespaces in this kernel",
                   "a kernel with CONFIG_USER_NS=y", required=False)
        return
    ok, why, fix = userns_probe(report)
    knobs = [f"user.max_user_namespaces={max_ns}"]
    if debian_knob is not None:
        knobs.append(f"kernel.unprivileged_userns_clone={debian_knob}")
    if apparmor is not None:
        knobs.append(f"kernel.apparmor_restrict_unprivileged_userns={apparmor}")
    report.add("user namespaces", "unprivileged", ok, f"{why} ({', '.join(knobs)}) — needed for rootless",
               fix, required=False)


def check_delegation(report: Report) -> None:
    """Rootless only: is a cgroup v2 subtree delegated to us (cgroups/delegation.py)? Without
    one, containers run without a cgroup: no limits, no stats, no pause."""
    if os.geteuid() == 0:
        return
    from .cgroups.delegation import find_delegated_cgroup
    where, why = find_delegated_cgroup()
    if where is not None:
        report.add("user namespaces", "delegated cgroup", True, f"{where} is delegated to you: rootless "
                   "containers get their cgroup (limits, stats, pause) in it", required=False)
        return
    detail, _, fix = why.partition("; ")
    report.add("user namespaces", "delegated cgroup", False, f"{detail}: rootless containers run without a "
               "cgroup (-m, --pids-limit, --cpus… refused; no stats, no pause)", fix, required=False)


# ── where are we running? ─────────────────────────────────────────────────────────────────

def detect_wsl() -> str:
    version = read_sysctl("/proc/version") or ""
    if "microsoft" in version.lower() or os.environ.get("WSL_DISTRO_NAME"):
        return "WSL2" if "WSL2" in version or os.path.exists("/run/WSL") else "WSL"
    return ""


def detect_container() -> str:
    """Signs that we are ourselves inside a container (and which kind)."""
    if os.path.exists("/.dockerenv"):
        return "docker (/.dockerenv exists)"
    if os.path.exists("/run/.containerenv"):
        return "podman (/run/.containerenv exists)"
    env = os.environ.get("container")
    if env:
        return f"{env} ($container is set)"
    cgroup = read_sysctl("/proc/1/cgroup") or ""
    for word in ("docker", "kubepods", "lxc", "containerd", "libpod"):
        if word in cgroup:
            return f"{word} (/proc/1/cgroup mentions it)"
    return ""


def detect_vm() -> str:
    """Signs of a hypervisor: DMI names, then the CPU's hypervisor flag."""
    for path in ("/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name"):
        value = read_sysctl(path) or ""
        for vendor in ("QEMU", "KVM", "VMware", "VirtualBox", "Microsoft Corporation", "Xen", "Amazon EC2",
                       "Google", "Parallels", "Bochs", "innotek"):
            if vendor.lower() in value.lower():
                return f"{value} ({path})"
    cpuinfo = read_sysctl("/proc/cpuinfo") or ""
    if re.search(r"^flags\s*:.*\bhypervisor\b", cpuinfo, re.M):
        return "a hypervisor (the CPU flag `hypervisor` in /proc/cpuinfo)"
    return ""


def kvm_usable() -> bool:
    """KVM needs a writable /dev/kvm *and* the CPU's virtualization flag (vmx: Intel, svm: AMD);
    some sandboxes offer a /dev/kvm that cannot boot a normal kernel (tests/vm/vmrunner.py)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cpuinfo = read_sysctl("/proc/cpuinfo") or ""
    return re.search(r"^flags\s*:.*\b(vmx|svm)\b", cpuinfo, re.M) is not None


def check_environment(report: Report) -> None:
    wsl, container, vm = detect_wsl(), detect_container(), detect_vm()
    report.add("environment", "wsl", True, f"running in {wsl}: works with WSL2's own kernel; "
               "cgroups may be v1 or v2 depending on the WSL version" if wsl else "not WSL")
    if container:
        report.add("environment", "container", True,
                   f"inside a container: {container} — nested containers need it to be privileged "
                   "(--privileged), or some checks above fail")
    else:
        report.add("environment", "container", True, "not inside a container")
    report.add("environment", "vm", True, f"inside a virtual machine: {vm}" if vm else "no hypervisor seen (bare metal)")
    kvm = kvm_usable()
    report.add("environment", "kvm", kvm, "/dev/kvm is usable: QEMU can run guests at native speed"
               if kvm else "no usable /dev/kvm with VT-x/AMD-V (vmx/svm in /proc/cpuinfo): QEMU emulates "
               "the CPU (TCG), slower but works (lab 09)",
               "" if kvm else "enable virtualization (VT-x/AMD-V) in the firmware, or nested virtualization",
               required=False)
    from .vm.accel import choose
    choice = choose()
    report.add("environment", "vm accelerator", True,
               f"`minicontainer vm` runs guests with {choice.accel.upper()}: {choice.reason}")


def check_tools(report: Report) -> None:
    """Programs the labs use; all optional for `run` itself."""
    for tool, package, used in (("busybox", "busybox-static", "the default image"),
                                ("gcc", "gcc", "labs 01 and build/ compile small C programs"),
                                ("ip", "iproute2", "networking labs"),
                                ("unshare", "util-linux", "lab 02"),
                                ("qemu-system-x86_64", "qemu-system-x86", "lab 09 and the cgroup-v2 VM")):
        path = shutil.which(tool)
        report.add("tools", tool, bool(path), f"{path} ({used})" if path else f"not installed ({used})",
                   "" if path else f"apt-get install {package}", required=False)


# ── output ────────────────────────────────────────────────────────────────────────────────

SECTION_TITLES = {
    "kernel": "kernel",
    "namespaces": "namespaces            (man 7 namespaces; ls -l /proc/self/ns)",
    "cgroups": "cgroups               (man 7 cgroups; stat -fc %T /sys/fs/cgroup)",
    "modules": "kernel modules        (lsmod, modinfo, modprobe)",
    "security": "security",
    "user namespaces": "user namespaces       (man 7 user_namespaces; rootless containers)",
    "environment": "where this runs",
    "tools": "tools for the labs",
}


def format_report(report: Report) -> str:
    lines, section = [], None
    width = max(len(f.name) for f in report.findings)
    for f in report.findings:
        if f.section != section:
            section = f.section
            lines.append(("" if not lines else "\n") + SECTION_TITLES.get(section, section))
        optional = "" if f.required or f.ok else " (optional)"
        lines.append(f"  {f.mark} {f.name.ljust(width)}  {f.detail}{optional}")
        if f.fix and not f.ok:
            lines.append(f"    {''.ljust(width)}  fix: {f.fix}")
    failed = [f for f in report.findings if f.required and not f.ok]
    lines.append("")
    lines.append("✓ this machine can run minicontainer" if not failed
                 else f"✗ {len(failed)} problem(s) stop minicontainer here: see the fix lines above")
    return "\n".join(lines)
