#!/bin/bash
# Usage: bash nnp.sh
# A setuid-root program in a container, started by the user student (uid 1000). Print:
#   default: euid N          with no_new_privs (minicontainer's default)
#   nnp off: euid N          with --security-opt no-new-privileges=false
set -euo pipefail
gcc -static -O2 -o euid euid.c

# In the container: copy the program, make it setuid root (mode 4755), run it as student.
SETUID='cp /lab/euid /tmp/euid && chmod 4755 /tmp/euid && su -s /bin/sh student -c /tmp/euid'

echo "default: $(minicontainer run --rm --net none -v "$PWD:/lab:ro" busybox sh -c "$SETUID")"
# TODO: the same with no_new_privs switched off (--security-opt no-new-privileges=false).
#       What does the setuid bit do now?
