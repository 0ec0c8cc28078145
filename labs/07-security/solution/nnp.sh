#!/bin/bash
# Usage: bash nnp.sh
# A setuid-root program in a container, started by the user student (uid 1000). Print:
#   default: euid N          with no_new_privs (minicontainer's default)
#   nnp off: euid N          with --security-opt no-new-privileges=false
set -euo pipefail
gcc -static -O2 -o euid euid.c

# In the container: copy the program, make it setuid root (mode 4755), run it as student.
SETUID='cp /lab/euid /tmp/euid && chmod 4755 /tmp/euid && su -s /bin/sh student -c /tmp/euid'

# no_new_privs (prctl PR_SET_NO_NEW_PRIVS, inherited by every child): execve ignores setuid
# bits and file capabilities. Without it, the setuid bit makes student root again.
echo "default: $(minicontainer run --rm --net none -v "$PWD:/lab:ro" busybox sh -c "$SETUID")"
echo "nnp off: $(minicontainer run --rm --net none -v "$PWD:/lab:ro" --security-opt no-new-privileges=false busybox sh -c "$SETUID")"
