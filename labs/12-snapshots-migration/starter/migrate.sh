#!/bin/bash
# Usage: bash migrate.sh
# Migrate the running VM lab12 live to a second QEMU on this machine. Print QEMU's report and:
#   vm downtime: N ms
set -euo pipefail
# TODO 1: out=$(minicontainer vm migrate lab12 --to localhost); echo "$out"
# TODO 2: print "vm downtime: N ms", N from the line "downtime   N ms" (awk '$1 == "downtime" {print $2}')
