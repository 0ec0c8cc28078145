"""`system df`: where the disk space goes — images, containers, volumes.

    shell: du -s --apparent-size /var/lib/minicontainer/{images,layers,containers,volumes}

Layers are shared, so adding up the sizes of images counts a base layer once per image
that uses it; here each layer counts once. RECLAIMABLE is what removing everything unused
would free: layers that only unused images list, stopped containers' writes, volumes that
no container names (as `docker system df` defines it).
"""
from __future__ import annotations

from pathlib import Path

from minicontainer.storage.copy import tree_size


def disk_usage(root: Path) -> list[dict]:
    from minicontainer.state import StateStore, is_alive
    from minicontainer.storage.images import ImageStore
    from minicontainer.storage.volumes import VolumeStore, volume_names
    images = ImageStore(root / "images").list()
    records = StateStore(root).list()
    used_refs = {r.image for r in records}

    sizes: dict[str, int] = {}                           # layer id (or rootfs path) → bytes
    used: set[str] = set()
    for image in images:
        parts = image.layers or (str(image.rootfs),)
        for part in parts:
            if part not in sizes:
                sizes[part] = _layer_size(image, part)
            if image.ref in used_refs:
                used.add(part)
    image_total = sum(sizes.values())
    image_free = sum(size for part, size in sizes.items() if part not in used)

    running = [r for r in records if r.status in ("running", "paused") and is_alive(r.pid, r.pid_start)]
    uppers = {r.id: tree_size(root / "containers" / r.id) for r in records}
    running_ids = {r.id for r in running}
    containers_free = sum(size for cid, size in uppers.items() if cid not in running_ids)

    store = VolumeStore(root / "volumes")
    volumes = store.list()
    named = {name for r in records for name in volume_names(r.config)}
    vsizes = {v.name: store.data_size(v) for v in volumes}
    volumes_free = sum(size for name, size in vsizes.items() if name not in named)

    return [
        _row("Images", len(images), len([i for i in images if i.ref in used_refs]), image_total, image_free),
        _row("Containers", len(records), len(running), sum(uppers.values()), containers_free),
        _row("Local Volumes", len(volumes), len([v for v in volumes if v.name in named]),
             sum(vsizes.values()), volumes_free),
    ]


def _layer_size(image, part: str) -> int:
    if not image.layers:
        return image.size
    import json
    meta = image.layer_dirs[image.layers.index(part)].parent / "layer.json"
    try:
        return int(json.loads(meta.read_text()).get("size", 0))
    except (OSError, ValueError):
        return 0


def _row(kind: str, total: int, active: int, size: int, reclaimable: int) -> dict:
    return {"type": kind, "total": total, "active": active, "size": size, "reclaimable": reclaimable}
