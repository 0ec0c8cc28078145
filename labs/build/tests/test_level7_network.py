"""Level 7 — network: a veth cable from the "host" into the container.

Implement: connect_host_side(cfg, child_pid), configure_container_side(cfg).   Man: veth(4), ip-link(8).
The whole test runs inside `unshare --net`: the "host" side is a throwaway network namespace too.
"""

WRAP = ["unshare", "--net"]


def test_container_has_eth0_with_its_address(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--net", "10.99.0.2/24", "--", "/bin/ip", "-o", "-4", "addr", "show", "eth0",
                wrap=WRAP)
    assert p.returncode == 0 and "10.99.0.2/24" in p.stdout, f"expected eth0 with 10.99.0.2/24; got {p.said}"


def test_container_reaches_the_host_end(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--net", "10.99.0.2/24", "--", "/bin/ping", "-c", "1", "-W", "3", "10.99.0.1",
                wrap=WRAP)
    assert p.returncode == 0 and "1 packets received" in p.stdout, \
        f"the container's ping to the host end 10.99.0.1 got no answer; got {p.said}"


def test_loopback_is_up(minirun, rootfs):
    p = minirun("--rootfs", rootfs, "--net", "10.99.0.2/24", "--", "/bin/ping", "-c", "1", "-W", "3", "127.0.0.1",
                wrap=WRAP)
    assert p.returncode == 0, f"ping 127.0.0.1 inside the container got no answer: is lo up? got {p.said}"
