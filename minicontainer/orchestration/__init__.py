"""Orchestration: pods, Kubernetes objects, and the controller that makes them real.

    pods.py         pod create|start|stop|rm: an infra (pause) container holding the pod's
                    namespaces, a pod cgroup with each container's group below it
    pause.c         the infra process: waits, reaps, ends on SIGTERM

The layers above a pod (docs/orchestration.md): apply writes objects in Kubernetes' shapes
into a store; a controller process reconciles them with what runs, through pods.py and the
one run sequence (runtime.py) — never a second copy of the kernel steps.
"""
