"""minicontainer-oci: the OCI runtime, with runc's command line, on minicontainer's run sequence.

    the OCI runtime spec: runtime.md (state, lifecycle, operations), config.md, config-linux.md
    shell: runc create|start|state|kill|delete|run|exec|pause|resume|ps|list|features

    config.py     bundle/config.json → spec.Spec (every field checked, one line per error)
    state.py      the state directory (--root/ID/state.json) and the state JSON `state` prints
    container.py  create and exec: the operations that run the run sequence (runtime.launch)
    control.py    start, kill, delete, pause/resume, ps: the short ones, without it
    hooks.py      the lifecycle hooks: prestart … poststop, the state on their stdin
    cli.py        runc's grammar: global options, one function per verb, errors as runc prints them
    launcher.py   the console script as scripts/setup.sh installs it: python -I -S, no `site`

The kernel steps are runtime.launch(): the very ones `minicontainer run` uses. What differs is
around them, as podman and runc split the work: here the root is the bundle's directory (no
overlay, no network but a fresh namespace), and `create` leaves PID 1 waiting on a fifo for
`start`, adopted by the caller (conmon, containerd-shim) instead of waited for by us.
"""
