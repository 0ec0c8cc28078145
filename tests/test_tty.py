"""-t (issue 4): the container's own pseudo-terminal, driven here through a real pty — as a
user's terminal would drive it: a prompt, window resizes, Ctrl-C, Ctrl-Z, exit statuses, and
the user's terminal settings restored afterwards."""
from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from test_lifecycle import record, until

pytestmark = pytest.mark.root

PROMPT = b"/ # "


class Terminal:
    """A pty whose slave is the CLI's controlling terminal; we type into the master."""

    def __init__(self, argv, rows=24, cols=80):
        self.root = argv[argv.index("--root") + 1]
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.settings = termios.tcgetattr(self.slave)       # what the user's terminal had
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     start_new_session=True, preexec_fn=self._take_terminal)
        self.seen = b""

    @staticmethod
    def _take_terminal():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def resize(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data: bytes):
        os.write(self.master, data)

    def expect(self, text: bytes, timeout: float = 20) -> bytes:
        """Read until `text` appears; return everything up to and including it."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"no {text!r} on the terminal; got {self.seen[-400:]!r}")
            self.seen += os.read(self.master, 4096)
        end = self.seen.index(text) + len(text)
        out, self.seen = self.seen[:end], self.seen[end:]
        return out

    def command(self, line: bytes) -> bytes:
        """Type a line, return its output. The markers are typed as "__B""EGIN__" and printed
        as __BEGIN__, so neither the echo of the line nor a prompt the shell redraws after a
        resize is mistaken for output."""
        self.send(b'echo "__B""EGIN__"; ' + line + b'; echo "__E""ND__"\r')
        out = self.expect(b"__END__\r\n")
        return out[out.rindex(b"__BEGIN__\r\n") + len(b"__BEGIN__\r\n"): -len(b"__END__\r\n")]

    def wait(self, timeout=20) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self):
        """After a failed test: SIGHUP (passed on to the shell, which exits), SIGKILL if needed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                from minicontainer.gc import collect
                collect(self.root)                          # what the killed CLI left
        os.close(self.master), os.close(self.slave)


def cli(mc_root, *args):
    return [sys.executable, "-m", "minicontainer", "--root", str(mc_root), *args]


def exercise_shell(term: Terminal, exit_code: int) -> None:
    """The acceptance sequence: prompt, stty size after a resize, Ctrl-C, exit status."""
    term.expect(PROMPT)
    assert term.command(b"stty size").strip() == b"30 90"
    term.resize(40, 120)                                  # → SIGWINCH to the CLI → TIOCSWINSZ
    until(lambda: term.command(b"stty size").strip() == b"40 120", what="the new size inside")
    assert term.command(b"tty").strip() == b"/dev/pts/0"  # the container's own devpts
    term.send(b"sleep 100\r")
    term.expect(b"sleep 100\r\n")
    time.sleep(0.3)                                       # let sleep start (or ^C hits the shell)
    term.send(b"\x03")                                    # Ctrl-C → SIGINT to sleep, via the pty
    term.expect(PROMPT, timeout=10)                       # far less than 100 s
    term.send(b"exit %d\r" % exit_code)
    assert term.wait() == exit_code
    assert termios.tcgetattr(term.slave) == term.settings  # your terminal is as it was


def test_run_it(mc_root):
    term = Terminal(cli(mc_root, "run", "-it", "--rm", "--net", "none", "busybox", "sh"), 30, 90)
    try:
        exercise_shell(term, 7)
    finally:
        term.close()


def test_exec_it(mc, mc_root, detached):
    detached("busybox", "sleep", "60", name="tty-exec")
    term = Terminal(cli(mc_root, "exec", "-it", "tty-exec", "sh"), 30, 90)
    try:
        exercise_shell(term, 3)
    finally:
        term.close()
    assert record(mc_root, "tty-exec").status == "running"     # the container goes on


def test_raw_while_running_restored_when_killed(mc_root):
    """Raw mode while the container runs; the settings come back even if PID 1 is SIGKILLed."""
    name = f"tty-kill-{os.getpid()}"
    term = Terminal(cli(mc_root, "run", "-it", "--rm", "--name", name, "--net", "none", "busybox", "sh"))
    try:
        term.expect(PROMPT)
        raw = termios.tcgetattr(term.slave)
        assert not raw[3] & termios.ECHO and not raw[3] & termios.ICANON and not raw[3] & termios.ISIG
        os.kill(record(mc_root, name).pid, signal.SIGKILL)
        assert term.wait() == 137
        assert termios.tcgetattr(term.slave) == term.settings
    finally:
        term.close()


def test_ctrl_z_reaches_the_container(mc_root):
    term = Terminal(cli(mc_root, "run", "-it", "--rm", "--net", "none", "busybox", "sh"))
    try:
        term.expect(PROMPT)
        term.send(b"sleep 100\r")
        term.expect(b"sleep 100\r\n")
        time.sleep(0.3)
        term.send(b"\x1a")                                # Ctrl-Z → SIGTSTP to the job
        assert b"Stopped" in term.expect(PROMPT, timeout=10)
        assert b"Stopped" in term.command(b"jobs")
        term.command(b"kill -9 %1")
        until(lambda: b"Stopped" not in term.command(b"jobs"), what="the job gone")  # (or: exit
        term.send(b"exit 0\r")                                                       # refuses)
        assert term.wait() == 0
    finally:
        term.close()


def test_run_it_with_init(mc_root):
    """--init puts the command in the terminal's foreground group: Ctrl-C still reaches it."""
    term = Terminal(cli(mc_root, "run", "-it", "--rm", "--init", "--net", "none", "busybox", "sh"), 30, 90)
    try:
        exercise_shell(term, 5)
    finally:
        term.close()


def test_console_and_tty_without_a_terminal(mc):
    out = mc("run", "--rm", "-t", "--net", "none", "busybox", "sh", "-c",
             "tty; ls -l /dev/console; [ -t 0 ] && echo stdin-is-a-tty", check=True).stdout
    lines = out.splitlines()                             # (the pty wrote \r\n)
    assert lines[0] == "/dev/pts/0" and "136,   0" in lines[1] and lines[2] == "stdin-is-a-tty"
    p = mc("run", "--rm", "-it", "--net", "none", "busybox", "true", input="")
    assert p.returncode == 125 and "not a TTY" in p.stderr


def test_run_detached_with_tty(mc, mc_root, detached):
    """`run -dt sh`: the shell waits on its terminal, so the container keeps running; its
    output (the prompt) is in the log."""
    detached("-t", "busybox", "sh", name="tty-det")
    until(lambda: "/ # " in mc("logs", "tty-det").stdout, what="the prompt in the log")
    assert record(mc_root, "tty-det").status == "running"
    assert mc("exec", "tty-det", "sh", "-c", "tty; true", check=True).stdout == "not a tty\n"
    assert mc("exec", "tty-det", "sh", "-c", "tty < /proc/1/fd/0", check=True).stdout == "/dev/pts/0\n"
