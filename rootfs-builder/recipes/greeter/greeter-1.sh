#!/bin/bash
# greeter 1.0: greets NAME (or whoever /etc/greeter.conf names). `greeter serve [NAME]`
# greets, then keeps running: a stand-in for a long-running service.
source /etc/greeter.conf
[[ "$1" == serve ]] && { serve=yes; shift; }
echo "greeter 1.0: ${GREETING}, ${1:-$NAME}!"
while [[ -n "$serve" ]]; do sleep 1; done
