#!/bin/bash
# Usage: bash pod.sh
# A pod: two containers sharing one network namespace. Create the pod lab10-pod, start a web
# server in it (lab10-pod-web, detached), then fetch its page from a *second* container of the
# same pod over 127.0.0.1 — localhost works between the containers of a pod. Print the page.
set -uo pipefail
minicontainer pod rm -f lab10-pod >/dev/null 2>&1

# TODO 1: minicontainer pod create --name lab10-pod
# TODO 2: minicontainer run -d --pod lab10-pod --name lab10-pod-web busybox \
#             sh -c 'mkdir -p /www; echo "hello from the pod" > /www/index.html; exec httpd -f -p 8080 -h /www'
# TODO 3: a second container in the pod: minicontainer run --rm --pod lab10-pod busybox wget -qO- http://127.0.0.1:8080/
#         (retry a few times: httpd needs a moment to listen) and echo the page
minicontainer pod ls
