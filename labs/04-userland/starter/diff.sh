#!/bin/bash
# Usage: bash diff.sh
# Which paths does the lab04-app image have that the busybox image does not? Print them, one
# per line, sorted, without any diff markers ("> ", "+").
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every path of each image's root file system (-xdev: not /proc, /sys, /dev's contents).
minicontainer run --rm busybox find / -xdev | sort > "$tmp/busybox.txt"
minicontainer run --rm lab04-app find / -xdev | sort > "$tmp/app.txt"
wc -l "$tmp/busybox.txt" "$tmp/app.txt" >&2          # sizes, for you (stderr): not the answer

# TODO: diff the two lists. diff prints "> PATH" for lines only in the second file (or, with
#       -u, "+PATH"); keep those lines and cut the marker off (grep '^>' | cut -c3-).
