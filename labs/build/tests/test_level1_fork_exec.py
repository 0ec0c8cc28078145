"""Level 1 — fork/exec: run a command in a child process and report its exit status.

Implement in minirun.py: exec_command(argv), wait_for(pid).   Man: fork(2), execve(2), waitpid(2).
"""


def test_output_passes_through(minirun):
    p = minirun("--", "echo", "hello from a child")
    assert (p.returncode, p.stdout) == (0, "hello from a child\n"), p.stderr


def test_exit_status(minirun):
    assert minirun("--", "sh", "-c", "exit 3").returncode == 3


def test_killed_by_a_signal_is_128_plus_n(minirun):
    """A shell reports death by signal N as 128+N: SIGKILL (9) → 137."""
    assert minirun("--", "sh", "-c", "kill -9 $$").returncode == 137


def test_command_not_found_is_127(minirun):
    p = minirun("--", "no-such-command-here")
    assert p.returncode == 127 and "not found" in p.stderr


def test_not_executable_is_126(minirun):
    assert minirun("--", "/etc/passwd").returncode == 126


def test_it_is_a_child_process(minirun):
    """The command runs in a new process: its parent is minirun, not the shell that started it."""
    p = minirun("--", "sh", "-c", "echo $PPID")
    assert p.returncode == 0 and int(p.stdout) != 1
