"""Run a pytest selection inside a QEMU VM whose kernel has only cgroup v2 (the "cgroup-v2 VM stage").

What it is: the host here mounts cgroups in the v1 "hybrid" layout, but most users run pure cgroup v2.
This module boots a Debian kernel with ``cgroup_no_v1=all`` (no v1 controller can be mounted, so all
of them belong to cgroup2) and a busybox initramfs (tests/vm/guest_init.sh) that mounts the host's /
read-only over virtio-9p with a tmpfs overlay on top, then runs pytest from the same checkout path with
the same interpreter. The guest's output and exit status come back over a virtio-serial port.
No host mounts, no disk image: the VM only reads the host's files.
See: qemu-system-x86_64(1) (-kernel, -initrd, -append, -fsdev, -device virtserialport), man 7 cgroups.
Shell equivalent (what qemu_command() builds):
    qemu-system-x86_64 -accel tcg,thread=single -smp 1 -m 1536 -kernel vmlinux -initrd initramfs.cpio \\
      -append "console=ttyS0 cgroup_no_v1=all panic=-1 mc_job=/tmp/job.sh" -serial file:console.log \\
      -fsdev local,id=host,path=/,security_model=passthrough,readonly=on,multidevs=remap \\
      -device virtio-9p-pci,fsdev=host,mount_tag=hostroot -device virtio-serial-pci \\
      -chardev file,id=out,path=out.log -device virtserialport,chardev=out,name=mc.out

Usage as a script (streams the guest's output, exits with the guest's pytest status):
    python tests/vm/vmrunner.py [--cpus N] [PYTEST_ARGS...]     (default: GUEST_SELECTION)
    python tests/vm/vmrunner.py --sh 'lsmod; modprobe macvlan'  (a bash command instead, as root in
                                                                  the checkout, the venv on PATH: lab 08)
    python tests/vm/vmrunner.py --shell     (an interactive bash on the guest's serial console, this
                                             terminal; `exit` powers the VM off, Ctrl-A x kills it)
Environment: MC_VM_CACHE (boot files, default /var/cache/minicontainer-vm), MC_VM_TIMEOUT (seconds,
default 1500), MC_VM_ACCEL (tcg or kvm; default: kvm only where it can work), MC_VM_MEMORY (MiB),
MC_VM_KEEP=1 (keep the run directory, $MC_VM_CACHE/runs/run-*, with job.sh, out.log and
console.log, also after a pass; after a failure it is always kept, for a day).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CHECKOUT = Path(__file__).resolve().parents[2]
PREPARE = CHECKOUT / "tests" / "vm" / "prepare.sh"
QEMU = "qemu-system-x86_64"

# What runs in the guest: the one place to extend the VM stage. Paths are relative to the checkout;
# ones that do not exist (yet) are left out. GUEST_MARKERS, when set, is passed as pytest's -m.
GUEST_SELECTION = [
    "tests/vm/test_guest_smoke.py",
    "tests/test_cgroups.py",      # the cgroups package, v2 backend
    "tests/test_limits.py",       # the same limit tests as on the host, through the CLI
    "tests/test_isolation.py",    # the run sequence itself on a pure-v2 kernel
    "tests/test_container_security.py",  # read-only cgroup2 inside, masks, capabilities on v2
    "tests/test_rootless.py",     # user namespaces with a cgroup delegated to the user (v2 only)
    "tests/test_doctor.py",       # doctor reports a pure-v2 layout correctly
    # minicontainer-oci's device rules, enforced on v2 by an eBPF program (cgroups/device_filter.py)
    "tests/test_oci_runtime.py::test_a_denied_device_cannot_be_opened",
    "tests/test_device_filter.py",
    # run --device: the same rules from `run`, a made-up node: allowed → ENXIO, refused → EPERM
    "tests/test_docker_run_flags.py::test_device_rules_decide_for_any_node",
    # The build track's level 6 on pure v2, where most students' laptops are (minirun's own
    # cgroup_paths/create_cgroup: one directory, subtree_control, memory.max): ~35 s under TCG
    "tests/test_build_track.py::test_level_passes_on_the_solution[test_level6_cgroups]",
    # Lab 08 on a kernel that loads modules (modprobe, modprobe -r macvlan): the host's cannot.
    "tests/test_labs.py::test_every_check_fails_on_the_starter[08]",
    "tests/test_labs.py::test_every_check_passes_with_the_solution[08]",
]
GUEST_MARKERS = ""
# Tests that need two CPUs in the guest (cpuset pinning) carry this marker; they run in a second,
# short 2-vCPU boot. The main boot has 1 vCPU: single-threaded TCG with 1 vCPU never hung under OOM
# stress, multi-threaded TCG with 2 vCPUs did.
TWO_CPU_MARKER = "vm_2cpus"

# Seconds from start to the guest's first line before giving up: TCG boots in 3-5 s here, KVM in ~1 s.
BOOT_TIMEOUT = {"tcg": 180, "kvm": 60}
EXIT_PREFIX = "MC-VM-EXIT "


def cache_dir() -> Path:
    return Path(os.environ.get("MC_VM_CACHE", "/var/cache/minicontainer-vm"))


@dataclass
class GuestRun:
    """What one boot produced."""
    status: int | None            # the guest job's exit status (pytest's), None if it never said
    output: str                   # everything the guest sent over virtio-serial
    console: str                  # the kernel console (ttyS0), for boot problems
    seconds: float
    boot_seconds: float | None    # start until the guest's first line on virtio-serial
    accel: str
    timed_out: bool = False
    run_dir: Path | None = None
    command: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)    # e.g. why KVM was given up for TCG

    @property
    def began(self) -> bool:
        return self.boot_seconds is not None

    def header(self, key: str) -> str:
        """A 'MC-VM-<KEY> ...' line the guest's init writes before the job, without its prefix."""
        match = re.search(rf"^MC-VM-{key} (.*)$", self.output, re.M)
        return match.group(1) if match else ""

    def describe_failure(self, tail_lines: int = 60) -> str:
        if self.timed_out:
            what = f"the VM did not finish within {self.seconds:.0f} s and was killed"
        elif not self.began:
            what = "the VM never reached the guest's init (see the kernel console below)"
        elif self.status is None:
            what = "the guest stopped without reporting an exit status"
        else:
            what = f"the guest's pytest exited with status {self.status}"
        console_tail = "\n".join(self.console.splitlines()[-tail_lines:])
        kept = f"\nrun directory (job.sh, out.log, console.log): {self.run_dir}" if self.run_dir else ""
        notes = "".join(f"\nnote: {note}" for note in self.notes)
        return (f"{what} (accel={self.accel}, {self.seconds:.0f} s){kept}{notes}\n"
                f"--- guest output (virtio-serial) ---\n{self.output}\n"
                f"--- kernel console, last {tail_lines} lines ---\n{console_tail}")


_prepare_failure = ""     # prepare.sh failed once in this process: do not wait for it again


def prepare_boot_files() -> Path:
    """Run tests/vm/prepare.sh (a few ms when nothing changed) and return the boot-file directory.
    It needs the network only the first time (to download the kernel): scripts/setup.sh runs it before
    pytest, whose session lives in a network namespace of its own (tests/conftest.py)."""
    global _prepare_failure
    if not _prepare_failure:
        result = subprocess.run(["bash", str(PREPARE)], capture_output=True, text=True,
                                env={**os.environ, "PYTHON": sys.executable})
        if result.returncode != 0:
            _prepare_failure = (f"{PREPARE} failed (exit {result.returncode}); run it before pytest "
                                f"(scripts/setup.sh does), with network access:\n{result.stdout}{result.stderr}")
    if _prepare_failure:
        raise RuntimeError(_prepare_failure)
    return cache_dir() / "current"


def kvm_usable() -> bool:
    """KVM only where it can boot a stock kernel: a writable /dev/kvm AND hardware virtualization
    (vmx/svm) visible. Some sandboxes have a paravirtual /dev/kvm that cannot, hence the cpuinfo check."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"^flags\s*:.*\b(vmx|svm)\b", cpuinfo, re.M) is not None


def choose_accel() -> str:
    wanted = os.environ.get("MC_VM_ACCEL", "")
    if wanted in ("tcg", "kvm"):
        return wanted
    return "kvm" if kvm_usable() else "tcg"


def qemu_command(boot: Path, run_dir: Path, *, accel: str, cpus: int, memory_mb: int,
                 interactive: bool = False) -> list[str]:
    if accel == "kvm":
        cpu = ["-accel", "kvm", "-cpu", "host"]
    else:
        # Single-threaded TCG: one host thread runs every vCPU in turn (slower, but never hung here).
        cpu = ["-accel", "tcg,thread=single"]
    kernel_args = " ".join([
        "console=ttyS0",         # kernel messages to the serial port → console.log
        "cgroup_no_v1=all",      # no v1 hierarchy can take a controller: all are cgroup2's
        "panic=-1",              # reboot at once on panic; -no-reboot turns that into qemu exiting
        "quiet",
        f"mc_job={run_dir / 'job.sh'}",
        f"mc_modules={boot / 'modules'}",   # modprobe's /lib/modules/VERSION (guest_init.sh)
    ])
    return [
        QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
        "-machine", "pc", *cpu, "-smp", str(cpus), "-m", str(memory_mb),
        "-kernel", str(boot / "vmlinux"), "-initrd", str(boot / "initramfs.cpio"), "-append", kernel_args,
        # The serial port (ttyS0): a log file, or this terminal for --shell. mux=on gives QEMU's Ctrl-A
        # keys (Ctrl-A x quits), signal=off hands Ctrl-C to the guest's shell instead of killing QEMU.
        *(["-chardev", "stdio,id=term,mux=on,signal=off", "-serial", "chardev:term"] if interactive
          else ["-serial", f"file:{run_dir / 'console.log'}"]),
        # The host's / read-only; multidevs=remap keeps inode numbers unique across host mounts.
        "-fsdev", "local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-device", "virtio-serial-pci",
        "-chardev", f"file,id=out,path={run_dir / 'out.log'}",
        "-device", "virtserialport,chardev=out,name=mc.out",
        "-device", "virtio-rng-pci",
    ]


# The guest's serial console, for --shell: bash in a session of its own with ttyS0 as its controlling
# terminal (setsid -c), so job control works; -w keeps job.sh waiting for it. The guest's init starts
# the job in the background, which ignores SIGINT and SIGQUIT (and bash keeps what it inherits
# ignored): env --default-signal gives Ctrl-C back.
INTERACTIVE_BASH = "/usr/bin/env --default-signal=INT,QUIT /usr/bin/setsid -w -c /bin/bash -i <>/dev/ttyS0 >&0 2>&0"


def write_job(run_dir: Path, checkout: Path, python: str, pytest_args: list[str], shell: str | None = None,
              interactive: bool = False) -> None:
    """The script the guest runs: pytest from the same checkout, with the same interpreter — or the
    bash command `shell`, or an interactive bash on the serial console, with that interpreter's
    directory (the venv: minicontainer) first in PATH. The host's /bin/bash by its path: the job's
    own sh is busybox, which would run its own lsmod, modprobe, ls … instead of the host's."""
    env = {"PYTHONUNBUFFERED": "1"}             # output reaches the host as it happens
    if "CI" in os.environ:
        env["CI"] = os.environ["CI"]
    if interactive:
        env["TERM"] = os.environ.get("TERM", "vt100")
    lines = ["set -e", f"cd {shlex.quote(str(checkout))}"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    if shell is not None or interactive:
        lines.append(f'export PATH={shlex.quote(str(Path(python).parent))}:"$PATH"')
    if interactive:                   # the guest's tty learns this terminal's size: line editing fits
        columns, rows = shutil.get_terminal_size()
        lines += [f"stty rows {rows} cols {columns} <>/dev/ttyS0 2>/dev/null || true", f"exec {INTERACTIVE_BASH}"]
    else:
        command = (["/bin/bash", "-c", shell] if shell is not None
                   else [python, "-m", "pytest", "-p", "no:cacheprovider", "-ra", *pytest_args])
        lines.append("exec " + " ".join(shlex.quote(arg) for arg in command))
    (run_dir / "job.sh").write_text("\n".join(lines) + "\n")


def read_new_lines(path: Path, position: int, on_line: Callable[[str], None] | None) -> int:
    """Hand complete new lines of a growing file to on_line; return the new read position."""
    try:
        with path.open("rb") as f:
            f.seek(position)
            chunk = f.read()
    except FileNotFoundError:
        return position
    complete = chunk[:chunk.rfind(b"\n") + 1]
    if on_line:
        for line in complete.decode(errors="replace").splitlines():
            on_line(line)
    return position + len(complete)


def new_run_dir() -> Path:
    """A directory for one boot's job.sh, out.log and console.log, under the cache (kept after a
    failure for a look; ones older than a day are removed here). The guest reads job.sh through 9p."""
    runs = cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for old in runs.iterdir():
        if time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=runs))


def reported_status(output: str) -> int | None:
    """The job's exit status from guest_init.sh's last line, 'MC-VM-EXIT <status>'; None if absent."""
    match = re.search(rf"^{EXIT_PREFIX}(\d+)", output, re.M)
    return int(match.group(1)) if match else None


def boot_once(boot: Path, pytest_args: list[str], *, accel: str, cpus: int, memory_mb: int,
              timeout: float, checkout: Path, python: str,
              on_line: Callable[[str], None] | None, shell: str | None = None) -> GuestRun:
    run_dir = new_run_dir()
    write_job(run_dir, checkout, python, pytest_args, shell)
    command = qemu_command(boot, run_dir, accel=accel, cpus=cpus, memory_mb=memory_mb)
    out_log = run_dir / "out.log"
    start = time.monotonic()
    boot_seconds = None
    timed_out = False
    position = 0
    # Its own session, so a kill reaches qemu alone and never the test runner.
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while qemu.poll() is None:
            elapsed = time.monotonic() - start
            if boot_seconds is None and out_log.exists() and out_log.stat().st_size:
                boot_seconds = elapsed
            if elapsed > timeout or (boot_seconds is None and elapsed > BOOT_TIMEOUT[accel]):
                timed_out = True
                break
            position = read_new_lines(out_log, position, on_line)
            time.sleep(0.2)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu_messages = qemu.communicate()[0].decode(errors="replace")
    read_new_lines(out_log, position, on_line)
    output = out_log.read_text(errors="replace") if out_log.exists() else ""
    if boot_seconds is None and output:
        boot_seconds = time.monotonic() - start
    console = (run_dir / "console.log").read_text(errors="replace") if (run_dir / "console.log").exists() else ""
    if qemu_messages.strip():
        console += f"\n--- qemu said (exit {qemu.returncode}) ---\n{qemu_messages}"
    return GuestRun(status=reported_status(output), output=output, console=console,
                    seconds=time.monotonic() - start, boot_seconds=boot_seconds, accel=accel,
                    timed_out=timed_out, run_dir=run_dir, command=command)


def run_guest_pytest(pytest_args: list[str], *, cpus: int = 1, memory_mb: int | None = None,
                     timeout: float | None = None, checkout: Path = CHECKOUT, python: str | None = None,
                     on_line: Callable[[str], None] | None = None, shell: str | None = None) -> GuestRun:
    """Boot the VM once, run `python -m pytest PYTEST_ARGS` (or the shell command `shell`) in the
    guest, return what happened. Where KVM was chosen but the guest never started, boot again with TCG."""
    boot = prepare_boot_files()
    memory_mb = memory_mb or int(os.environ.get("MC_VM_MEMORY", "1536"))
    timeout = timeout or float(os.environ.get("MC_VM_TIMEOUT", "1500"))
    python = python or sys.executable
    accel = choose_accel()
    run = boot_once(boot, pytest_args, accel=accel, cpus=cpus, memory_mb=memory_mb, timeout=timeout,
                    checkout=checkout, python=python, on_line=on_line, shell=shell)
    if accel == "kvm" and not run.began:
        kvm_failure = run.console.strip().splitlines()[-1:] or ["no output"]
        discard_run_dir(run)
        run = boot_once(boot, pytest_args, accel="tcg", cpus=cpus, memory_mb=memory_mb, timeout=timeout,
                        checkout=checkout, python=python, on_line=on_line, shell=shell)
        run.notes.append(f"KVM did not boot ({kvm_failure[0]}); this run used TCG")
    return run


def run_guest_shell(memory_mb: int | None = None) -> int:
    """Boot the VM with an interactive bash on its serial console, which is this terminal (lab 08:
    lsmod, modprobe, modprobe -r on a modular kernel). Returns the shell's exit status (125 if the
    guest never reported one). No timeout: the student ends it with `exit` (or Ctrl-A x)."""
    boot = prepare_boot_files()
    run_dir = new_run_dir()
    write_job(run_dir, CHECKOUT, sys.executable, [], interactive=True)
    memory_mb = memory_mb or int(os.environ.get("MC_VM_MEMORY", "1536"))
    subprocess.run(qemu_command(boot, run_dir, accel=choose_accel(), cpus=1, memory_mb=memory_mb,
                                interactive=True))
    output = (run_dir / "out.log").read_text(errors="replace") if (run_dir / "out.log").exists() else ""
    shutil.rmtree(run_dir, ignore_errors=True)
    status = reported_status(output)
    return status if status is not None else 125


def discard_run_dir(run: GuestRun) -> None:
    if run.run_dir and os.environ.get("MC_VM_KEEP") != "1":
        shutil.rmtree(run.run_dir, ignore_errors=True)
        run.run_dir = None


def selected_paths(checkout: Path = CHECKOUT) -> list[str]:
    return [path for path in GUEST_SELECTION if (checkout / path.split("::")[0]).exists()]


def selection_args(markers: str) -> list[str]:
    """pytest arguments for GUEST_SELECTION restricted to `markers` (combined with GUEST_MARKERS)."""
    paths = selected_paths()
    if not paths:      # pytest without paths would run the whole suite in the guest
        raise RuntimeError(f"none of GUEST_SELECTION exists in {CHECKOUT}: {GUEST_SELECTION}")
    expression = " and ".join(f"({m})" for m in (GUEST_MARKERS, markers) if m)
    return [*paths, *(["-m", expression] if expression else [])]


def count_selected(pytest_args: list[str], checkout: Path = CHECKOUT) -> int:
    """How many tests pytest would run, asked on the host (about a second): a boot costs far more."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                             *pytest_args], cwd=checkout, capture_output=True, text=True)
    return sum(1 for line in result.stdout.splitlines() if "::" in line)


def main(argv: list[str]) -> int:
    cpus, shell = 1, None
    if argv[:1] == ["--cpus"]:
        cpus, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--sh"] and len(argv) == 2:
        shell, argv = argv[1], []
    if shutil.which(QEMU) is None:
        print(f"vm: {QEMU} is not installed: sudo make setup-test (apt-get install qemu-system-x86)", file=sys.stderr)
        return 125
    if argv == ["--shell"]:
        print(f"vm: booting a shell in the guest ({choose_accel()}; `exit` powers it off, Ctrl-A x kills it)",
              file=sys.stderr)
        try:
            return run_guest_shell()
        except RuntimeError as error:         # prepare.sh failed: its message, not a traceback
            print(f"vm: {error}", file=sys.stderr)
            return 125
    args = argv or ([] if shell else selection_args(f"not {TWO_CPU_MARKER}"))
    print(f"vm: {QEMU} accel={choose_accel()} cpus={cpus}: {f'bash -c {shell!r}' if shell else 'pytest ' + ' '.join(args)}",
          file=sys.stderr)
    run = run_guest_pytest(args, cpus=cpus, on_line=print, shell=shell)
    boot = f"{run.boot_seconds:.1f}" if run.boot_seconds is not None else "-"
    print(f"vm: first guest line after {boot} s, finished after {run.seconds:.1f} s ({run.accel})",
          file=sys.stderr)
    for note in run.notes:
        print(f"vm: note: {note}", file=sys.stderr)
    if run.status != 0 and not (shell and run.status is not None):   # a shell's own status: no report
        print(run.describe_failure(), file=sys.stderr)
    else:
        discard_run_dir(run)
    return run.status if run.status is not None else 125


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
