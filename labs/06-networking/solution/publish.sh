#!/bin/bash
# Usage: bash publish.sh
# Publish a web server: busybox httpd in a container, port 80 inside, reachable on the host at
# 127.0.0.1:8080. Fetch the page from the host and print it; remove the container at the end.
set -uo pipefail
minicontainer rm -f lab06-web >/dev/null 2>&1
trap 'minicontainer rm -f lab06-web >/dev/null 2>&1' EXIT

SERVE='mkdir -p /www; echo "hello from lab 06, served by $(hostname)" > /www/index.html; exec httpd -f -p 80 -h /www'
# -p 8080:80: a DNAT rule rewrites packets for the host's port 8080 to CONTAINER_IP:80.
minicontainer run -d --name lab06-web -p 8080:80 busybox sh -c "$SERVE" > /dev/null
sleep 0.5                                      # give httpd a moment to listen

busybox wget -q -O - http://127.0.0.1:8080/
