#!/bin/bash
# Usage: bash pivot.sh ROOT CMD [ARGS...]
# Run CMD with ROOT as its root directory — with pivot_root(8), not chroot, so that no path
# leads back to the host's files. Everything happens in a new mount namespace: the host's
# mount table is never touched.
set -euo pipefail
ROOT=$(realpath "${1:?usage: pivot.sh ROOT CMD [ARGS...]}")
shift

# Step 0 (given): run the rest of this script again, inside a new mount namespace whose
# mounts do not propagate back to the host (see mount_namespaces(7)).
if [ -z "${PIVOT_IN_NAMESPACE:-}" ]; then
    PIVOT_IN_NAMESPACE=1 exec unshare --mount --propagation private bash "$0" "$ROOT" "$@"
fi

# 1. pivot_root(2) wants a mount point: a bind mount of ROOT onto itself is one.
mount --bind "$ROOT" "$ROOT"

# 2. "." becomes "/", and the old root is put on top of it, also at ".".
cd "$ROOT"
pivot_root . .

# 3. Detach the old root (lazily: our shell still uses it). Nothing of the host remains.
umount -l .
cd /

# 4. Become the command.
exec "$@"
