#!/bin/bash
# Usage: bash cluster.sh
# A cluster of three nodes on this machine, each a network namespace with its own bridge and
# pod subnet, a cgroup with its allocatable CPU and memory, and an agent that heartbeats.
# A node without a heartbeat for 3 s is NotReady (Kubernetes waits 40 s). Then print the nodes.
set -euo pipefail
minicontainer cluster create --nodes 3 --cpus 1 --memory 512Mi --node-timeout 3
minicontainer node ls
