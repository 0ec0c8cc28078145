#!/bin/bash
# Usage: bash migrate.sh
# Migrate the running VM lab12 live to a second QEMU on this machine. Print QEMU's report and:
#   vm downtime: N ms
set -euo pipefail
out=$(minicontainer vm migrate lab12 --to localhost)
echo "$out"
echo "vm downtime: $(echo "$out" | awk '$1 == "downtime" {print $2}') ms"
