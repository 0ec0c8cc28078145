#!/bin/bash
# Usage: bash users.sh
# Print the users of the lab04-app image as a table: NAME<TAB>UID<TAB>SHELL, one user per line,
# sorted by UID (numerically), using cut, paste, sort — and tr for the tab, if you like.
set -euo pipefail

# Inside the container /etc/passwd is the image's. cut picks columns, paste glues columns
# side by side with a tab, sort -k2,2n sorts by the 2nd tab-separated field as a number.
minicontainer run --rm lab04-app sh -c '
    cut -d: -f1 /etc/passwd > /tmp/name
    cut -d: -f3 /etc/passwd > /tmp/uid
    cut -d: -f7 /etc/passwd > /tmp/shell
    paste /tmp/name /tmp/uid /tmp/shell | sort -t "$(printf "\t")" -k2,2n'
