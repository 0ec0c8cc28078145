#!/bin/bash
# Usage: bash scale.sh N
# Change the desired state: lab10-web should have N replicas (apply web.yaml first, it may not
# exist yet). Wait until exactly N pods are Running and ready, and print "running: N".
set -uo pipefail
WANT=${1:?usage: scale.sh N}
minicontainer apply -f web.yaml > /dev/null
# TODO 1: minicontainer scale deployment/lab10-web --replicas "$WANT"

count() { minicontainer get pods | grep -c '^lab10-web-'; }
ready() { minicontainer get pods | grep '^lab10-web-' | grep -c ' 1/1 .* Running '; }
# TODO 2: wait until count and ready are both $WANT (a terminating pod still counts), then:
# echo "running: $(ready)"
