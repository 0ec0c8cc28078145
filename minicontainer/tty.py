"""Pseudo-terminals: `run -t` and `exec -t` give the container a terminal of its own.

    man 7 pty, man 4 pts (/dev/ptmx), man 3 termios (raw mode), man 2 ioctl_tty
    (TIOCSCTTY, TIOCSWINSZ), man 7 unix (SCM_RIGHTS: passing a file descriptor)
    shell: script(1) does the same dance; `stty raw -echo` is the raw mode

A pty is a pair: whatever is written to the *master* arrives at the *slave* as if typed, and
what programs write to the slave comes out of the master. The container's programs get the
slave as stdin/stdout/stderr and as their controlling terminal; minicontainer holds the
master and relays it to your terminal. The slave's line discipline does the terminal work:
Ctrl-C becomes SIGINT for the container's foreground process, Ctrl-Z SIGTSTP, echo, line
editing. So your own terminal goes into *raw* mode — every key passes through untouched —
and is restored when the container ends, however it ends.

Where is the pty made? Inside the container, after pivot_root: /dev/ptmx there is the
container's private devpts (its /dev/pts mount), so the slave is /dev/pts/0 *in the container*
and the host's ptys stay invisible. The master is sent back to the parent over a unix socket
(sendmsg with SCM_RIGHTS) — as runc does with its --console-socket — and the slave is also
bind-mounted on /dev/console, where programs look for the system console.

    parent (CLI)                          container (PID 1 after pivot_root, or exec's process)
    socketpair ─────── fork … ──────────▶ open /dev/ptmx → master, /dev/pts/N → slave
                                          mount --bind /dev/pts/N /dev/console
         ◀────────── master (SCM_RIGHTS)  sendmsg
    raw mode on your terminal             setsid; ioctl(slave, TIOCSCTTY); dup2 → 0, 1, 2
    relay: keys → master, master → screen execve(the command)
    SIGWINCH → ioctl(master, TIOCSWINSZ)  (the kernel sends SIGWINCH to the container's program)
"""
from __future__ import annotations

# Everything the container side uses is imported here, at the top: it runs after pivot_root,
# when the host's Python library can no longer be found (socket.send_fds imports array late).
import array  # noqa: F401
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios

from .errors import SyscallError
from .kernel.mount import MS_BIND, mount

TIOCGPTN = 0x80045430           # _IOR('T', 0x30, unsigned int): the number N of /dev/pts/N
TIOCSPTLCK = 0x40045431         # _IOW('T', 0x31, int): unlock the slave (unlockpt(3))
DEFAULT_SIZE = (24, 80)


def terminal_size(fds=(0, 1, 2)) -> tuple[int, int] | None:
    """(rows, columns) of the first of `fds` that is a terminal, or None."""
    for fd in fds:
        try:
            rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
            if rows and cols:
                return rows, cols
        except OSError:
            continue
    return None


def set_size(fd: int, size: tuple[int, int]) -> None:
    """ioctl(TIOCSWINSZ): the kernel sends SIGWINCH to the terminal's foreground processes."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


def make_raw(fd: int) -> list:
    """cfmakeraw(3): no echo, no line editing, no signals from keys, no output processing —
    the container's pty does all of that. Returns the old settings for restore()."""
    old = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = old
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
               | termios.IGNCR | termios.ICRNL | termios.IXON)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc = list(cc)
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSAFLUSH, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])
    return old


class Console:
    """The pty of one -t container or exec. Made in the parent before fork; attach() runs in
    the container, receive_master() and relay() in the parent."""

    def __init__(self, interactive: bool, size: tuple[int, int] | None = None):
        self.interactive = interactive
        self.size = size or terminal_size() or DEFAULT_SIZE
        self.parent_end, self.child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.master = -1

    # ── the container's side ─────────────────────────────────────────────────────────────
    def attach(self, uid: int = 0, gid: int = 0, console: bool = True, explain=None) -> None:
        """Open a pty in the container's devpts, send the master home, make the slave our
        controlling terminal and our stdin/stdout/stderr."""
        if explain is not None:
            explain.step("open a pseudo-terminal inside the container", "(script(1) does this)",
                         "open(\"/dev/ptmx\"), ioctl(TIOCSPTLCK, TIOCGPTN), sendmsg(SCM_RIGHTS), "
                         "setsid(), ioctl(TIOCSCTTY)", "pty(7), pts(4), unix(7)",
                         "-t: the container gets /dev/pts/0 of its own devpts; minicontainer "
                         "keeps the master side and relays it to your terminal")
        master = open_checked("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))                 # unlockpt(3)
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        slave_path = f"/dev/pts/{number}"
        slave = open_checked(slave_path, os.O_RDWR | os.O_NOCTTY)
        if uid or gid:
            os.fchown(slave, uid, gid)                  # the user may reopen it (/dev/tty)
        set_size(slave, self.size)
        if console:
            bind_console(slave_path)
        socket.send_fds(self.child_end, [b"m"], [master])
        os.close(master)
        self.child_end.close(), self.parent_end.close()
        os.setsid()                                     # a new session, without a terminal …
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)        # … whose terminal is now the slave
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)

    # ── the parent's side ────────────────────────────────────────────────────────────────
    def receive_master(self) -> int:
        """The master sent by attach(); call after the child has exec'd or failed."""
        self.child_end.close()
        try:
            _, fds, _, _ = socket.recv_fds(self.parent_end, 1, 1)
        finally:
            self.parent_end.close()
        if not fds:
            from .errors import ContainerError
            raise ContainerError("the container exited before its terminal was set up")
        self.master = fds[0]
        os.set_inheritable(self.master, False)
        return self.master

    def relay(self, pid: int, stdin: int = 0, stdout: int = 1) -> None:
        """Copy keys → master and master → screen until the container side hangs up or
        process `pid` (our child) exits. Your terminal is raw meanwhile, restored after."""
        if self.master < 0:
            self.receive_master()
        raw = self.interactive and os.isatty(stdin)
        saved = make_raw(stdin) if raw else None
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False), os.set_blocking(wake_w, False)
        resized = []
        old_wakeup = signal.set_wakeup_fd(wake_w)
        old_winch = signal.signal(signal.SIGWINCH, lambda *_: resized.append(1))
        old_chld = signal.signal(signal.SIGCHLD, lambda *_: None)
        try:
            self.pass_size()
            self.copy_until_hangup(pid, stdin if self.interactive else -1, stdout, wake_r, resized)
        finally:
            if saved is not None:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            signal.set_wakeup_fd(old_wakeup)
            signal.signal(signal.SIGWINCH, old_winch)
            signal.signal(signal.SIGCHLD, old_chld)
            os.close(wake_r), os.close(wake_w)
            os.close(self.master)
            self.master = -1

    def pass_size(self) -> None:
        size = terminal_size()
        if size:
            set_size(self.master, size)

    def copy_until_hangup(self, pid: int, stdin: int, stdout: int, wake: int, resized: list) -> None:
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        poller.register(wake, select.POLLIN)
        if stdin >= 0:
            poller.register(stdin, select.POLLIN)
        while not has_exited(pid):
            for fd, events in poller.poll():
                if fd == wake:
                    drain(wake)
                    if resized:
                        resized.clear()
                        self.pass_size()
                elif fd == self.master:
                    if not copy(self.master, stdout):
                        return                          # EIO: no process holds the slave any more
                elif not copy(stdin, self.master):
                    poller.unregister(stdin)            # your EOF: the container reads ^D
                    write_all(self.master, b"\x04")
        os.set_blocking(self.master, False)             # the process ended: what is left
        while copy(self.master, stdout):
            pass


def bind_console(slave_path: str) -> None:
    """mount --bind /dev/pts/N /dev/console (the target must exist: an empty file)."""
    os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    mount(slave_path, "/dev/console", None, MS_BIND)


def open_checked(path: str, flags: int) -> int:
    try:
        return os.open(path, flags)
    except OSError as e:
        raise SyscallError("open", (path,), e.errno) from None


def has_exited(pid: int) -> bool:
    """waitid(WNOWAIT): has our child `pid` ended? It stays a zombie for the real wait."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def copy(src: int, dst: int) -> bool:
    """One read from src, all of it written to dst; False at end of file, EIO or EAGAIN."""
    try:
        data = os.read(src, 65536)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError as e:
        if e.errno == errno.EIO:
            return False
        raise
    if data:
        write_all(dst, data)
    return bool(data)


def write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError as e:
            if e.errno in (errno.EIO, errno.EPIPE):
                return                                  # the other side is gone
            raise


def drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
