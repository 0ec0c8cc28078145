#!/bin/bash
# Usage: bash nat.sh
# While a container publishes port 8081, print the firewall rule lines that mention 8081 —
# the DNAT that makes -p work. minicontainer writes them with nft (nftables) or, where Docker's
# iptables rules are in charge, with iptables.
set -uo pipefail
minicontainer rm -f lab06-nat >/dev/null 2>&1
trap 'minicontainer rm -f lab06-nat >/dev/null 2>&1' EXIT
minicontainer run -d --name lab06-nat -p 8081:80 busybox sleep 1000 > /dev/null

# TODO: print the lines of the ruleset that mention 8081:
#         nft list ruleset | grep 8081          (nftables)
#         iptables-save -t nat | grep 8081      (iptables)
#       Which one does minicontainer use here? `minicontainer inspect lab06-nat | grep firewall`
