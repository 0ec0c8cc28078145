#!/bin/bash
# Usage: bash user.sh   (as root; the script itself becomes "nobody")
# As the unprivileged user nobody (uid 65534), print "outside: UID", then, in a new user
# namespace where you are mapped to root, print "inside: UID".
set -euo pipefail

# No root needed for a user namespace: nobody becomes uid 0 *inside* it. /proc/self/uid_map
# says "0 65534 1": inside-uid 0 is outside-uid 65534, one id long (user_namespaces(7)).
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '
    echo "outside: $(id -u)"
    unshare --user --map-root-user sh -c "echo \"inside: \$(id -u)\"; cat /proc/self/uid_map"
'
