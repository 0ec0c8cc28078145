"""Level 1 — fork/exec: run a command in a child process and report its exit status.

Implement in minirun.py: exec_command(argv), wait_for(pid).   Man: fork(2), execve(2), waitpid(2).
"""
import os


def test_output_passes_through(minirun):
    p = minirun("--", "echo", "hello from a child")
    assert (p.returncode, p.stdout) == (0, "hello from a child\n"), \
        f"expected exit 0 and the child's line on stdout; got {p.said}"


def test_exit_status(minirun):
    p = minirun("--", "sh", "-c", "exit 3")
    assert p.returncode == 3, f"the command exited with 3, minirun should too; got {p.said}"


def test_killed_by_a_signal_is_128_plus_n(minirun):
    """A shell reports death by signal N as 128+N: SIGKILL (9) → 137."""
    p = minirun("--", "sh", "-c", "kill -9 $$")
    assert p.returncode == 137, f"the command was killed by SIGKILL: expected 137; got {p.said}"


def test_command_not_found_is_127(minirun):
    p = minirun("--", "no-such-command-here")
    assert p.returncode == 127 and "not found" in p.stderr, \
        f"expected exit 127 and 'not found' on stderr; got {p.said}"


def test_not_executable_is_126(minirun):
    p = minirun("--", "/etc/passwd")
    assert p.returncode == 126, f"/etc/passwd exists but is not executable: expected 126; got {p.said}"


def test_it_is_a_child_process(minirun):
    """The command runs in a new process: its parent is minirun, not the shell that started it."""
    p = minirun("--", "sh", "-c", "echo $PPID")
    assert p.returncode == 0 and p.stdout.strip().isdigit(), f"expected a PID on stdout; got {p.said}"
    assert int(p.stdout) != os.getpid(), "the command's parent is pytest itself: did minirun fork?"
