#!/bin/bash
# Usage: bash nat.sh
# While a container publishes port 8081, print which firewall minicontainer writes its rules
# with here — one line, `firewall: nft` or `firewall: iptables` — and then the rule lines that
# mention 8081: the DNAT that makes -p work. minicontainer uses nft (nftables) or, where
# Docker's iptables rules are in charge, iptables.
set -uo pipefail
minicontainer rm -f lab06-nat >/dev/null 2>&1
trap 'minicontainer rm -f lab06-nat >/dev/null 2>&1' EXIT
minicontainer run -d --name lab06-nat -p 8081:80 busybox sleep 1000 > /dev/null

# TODO: which firewall does minicontainer use here? `minicontainer inspect lab06-nat` says it
#       (a -f '{{…}}' template prints one field). Print "firewall: …", then the lines of that
#       ruleset that mention 8081:
#         nft list ruleset | grep 8081          (nftables)
#         iptables-save -t nat | grep 8081      (iptables)
