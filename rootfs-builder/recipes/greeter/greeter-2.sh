#!/bin/bash
# greeter 2.0: the same program one version later — it can shout (SHOUT=yes in its
# config, a setting 1.0 does not know). Runs beside 1.0: each image has its own program,
# configuration, interpreter and libraries.
source /etc/greeter.conf
[[ "$1" == serve ]] && { serve=yes; shift; }
line="greeter 2.0: ${GREETING}, ${1:-$NAME}!"
[[ "$SHOUT" == yes ]] && line="${line^^}"
echo "$line"
while [[ -n "$serve" ]]; do sleep 1; done
