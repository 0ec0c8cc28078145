#!/bin/bash
# Usage: bash users.sh
# Print the users of the lab04-app image as a table: NAME<TAB>UID<TAB>SHELL, one user per line,
# sorted by UID (numerically), using cut, paste, sort — and tr for the tab, if you like.
set -euo pipefail

# This reads the HOST's /etc/passwd. The table must come from the image's: run the pipeline in
# a container (minicontainer run --rm lab04-app sh -c '…').
# /etc/passwd fields (passwd(5)), separated by ":":  name:password:UID:GID:comment:home:shell
cut -d: -f1 /etc/passwd
# TODO: in the container, cut out fields 1, 3 and 7 (into files in /tmp, or all at once),
#       join them with paste (tab-separated by default) — or cut -f1,3,7 | tr ':' '\t' —
#       and sort -n by the second column (sort -t "$(printf '\t')" -k2,2n, or put UID first).
