# Sourced first by every bench script: bridge containers (the default network) create mc0, NAT
# rules and ip_forward — never on the machine's own network. So the script re-executes itself in
# a new network namespace with lo up; MC_BENCH_NETNS marks that it is there (children inherit it).
if [ -z "${MC_BENCH_NETNS:-}" ]; then
    exec unshare --net env -u BENCH_FORWARD_BEFORE BENCH_LINKS_BEFORE=" lo " MC_BENCH_NETNS=1 \
        bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
