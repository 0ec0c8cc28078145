#!/bin/bash
# Usage: bash cluster.sh
# A cluster of three nodes on this machine, each a network namespace with its own bridge and
# pod subnet, a cgroup with its allocatable CPU and memory, and an agent that heartbeats.
# A node without a heartbeat for 3 s is NotReady (Kubernetes waits 40 s). Then print the nodes.
set -euo pipefail
# TODO 1: `minicontainer cluster create` with 3 nodes of 1 CPU and 512Mi each, node timeout 3 s
#         (`minicontainer cluster create --help`)
# TODO 2: print the nodes (`minicontainer node ls`)
