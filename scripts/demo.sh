#!/usr/bin/env bash
# The first README command's payoff: one container, shown side by side with the host.
# Every line inside the container is checked by the tests in tests/test_isolation.py.
set -euo pipefail
cd "$(dirname "$0")/.."
MC=.venv/bin/minicontainer

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

bold "The host (this machine):"
echo "  PID of this shell:     $$"
echo "  hostname:              $(hostname)"
echo "  mounts:                $(wc -l < /proc/self/mountinfo)"
echo "  network interfaces:    $(ls /sys/class/net | tr '\n' ' ')"
echo "  processes:             $(ls -d /proc/[0-9]* | wc -l)"

bold "A container from the busybox image:  minicontainer run --rm --net none --hostname demo busybox sh -c '…'"
$MC run --rm --net none --hostname demo busybox sh -c '
echo "  PID of this shell:     $$            (a new PID namespace: the command is PID 1)"
echo "  hostname:              $(hostname)          (a new UTS namespace)"
echo "  mounts:                $(wc -l < /proc/self/mountinfo)             (a new mount namespace: overlay, proc, sys, dev)"
echo "  network interfaces:    $(ls /sys/class/net | tr "\n" " ")           (a new network namespace: only loopback)"
echo "  processes:             $(ls -d /proc/[0-9]* | wc -l)             (only its own)"
echo "  / is the image:        $(cat /etc/os-release 2>/dev/null | head -1)"
echo "  / is:                  $(grep " / / " /proc/self/mountinfo | sed "s/.* - //" | cut -d" " -f1) (the image below, this container'"'"'s writes above)"
'

bold "Try it yourself:"
echo "  sudo $MC run --rm -i busybox sh          # a shell inside (exit with Ctrl-D)"
echo "  sudo $MC run --rm --explain busybox true # every step: syscall, shell equivalent, man page"
