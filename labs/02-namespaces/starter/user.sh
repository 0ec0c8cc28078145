#!/bin/bash
# Usage: bash user.sh   (as root; the script itself becomes "nobody")
# As the unprivileged user nobody (uid 65534), print "outside: UID", then, in a new user
# namespace where you are mapped to root, print "inside: UID".
set -euo pipefail

# setpriv(1) runs a command as another user, like su without a password.
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '
    echo "outside: $(id -u)"
    echo "inside: $(id -u)"      # TODO: run this id in `unshare --user --map-root-user`
'
