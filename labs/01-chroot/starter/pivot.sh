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

# TODO 1: pivot_root needs the new root to be a mount point: bind-mount ROOT onto itself
#         (mount --bind "$ROOT" "$ROOT").

# TODO 2: cd "$ROOT" and call `pivot_root . .` — the new root becomes "/", and the old root is
#         stacked on top of it, at "." (see the NOTES in pivot_root(2)).

# TODO 3: unmount the old root with `umount -l .` (lazy: it is still busy) and `cd /`.
#         From now on the host's files are gone from this namespace.

# TODO 4: exec "$@"

echo "TODO: pivot.sh is not written yet" >&2
exit 1
