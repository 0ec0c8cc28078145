"""`commit`: a container's changes become one more layer of a new image.

    shell: cp -a $UPPER/. layers/$NEW/fs/         (frozen meanwhile, as in snapshots.py)
           image.json: "layers": [ …the base image's layers…, $NEW ]

The upper dir already has the format of a layer (layers.py): new and changed files, and
whiteouts for what was deleted. So committing is copying it once into layers/, and writing
an image.json that lists the base image's layers *by id* followed by the new one: the base
is not copied, the two images share it on disk. A container of the new image mounts
lowerdir=NEW:BASE… and sees the base with the committed changes on top.

A base image that is still a single rootfs/ directory is first moved into layers/ (one
layer), so that it can be shared. The new image keeps the base's defaults (command,
environment, working directory).
"""
from __future__ import annotations

import shutil

from minicontainer.errors import ContainerError
from minicontainer.storage.copy import copy_tree
from minicontainer.storage.images import (Image, ImageStore, image_digest, parse_ref, utc_timestamp,
                                          write_image, write_layer_meta)
from minicontainer.storage.layer_tar import write_layer_tar
from minicontainer.storage.layers import chain_id, overlay_xattr_filter
from minicontainer.storage.snapshots import frozen, upper_dir


def commit(images: ImageStore, store, rec, ref: str, *, in_use=None, explain=None,
           config: dict | None = None, source: str | None = None) -> Image:
    """Make image REF from container REC (running or not) on top of its image; its
    configuration is the base image's unless CONFIG is given (build's steps give theirs)."""
    name, tag = parse_ref(ref)
    base = images.convert_to_layers(rec.image)           # share the base: it becomes a layer
    layer_tmp, image_tmp = images.new_tmp(), images.new_tmp()
    try:
        fs = layer_tmp / "fs"
        with upper_dir(store.container_dir(rec.id), rec, ": nothing to commit") as upper, frozen(rec, explain):
            size = copy_tree(upper, fs, keep_xattr=overlay_xattr_filter)
        diff_id, _ = write_layer_tar(fs)                  # the layer's content id
        layer_id = chain_id(base.layers[-1], diff_id)
        source = source or f"commit of container {rec.name} ({rec.short_id})"
        write_layer_meta(layer_tmp, layer_id, size, source)
        layers = (*base.layers, layer_id)
        config = dict(base.config if config is None else config)
        digest = image_digest(layers, config)
        image = Image(name=name, tag=tag, id=digest[7:19], digest=digest,
                      rootfs=images.image_dir(name, tag) / "rootfs", size=base.size + size,
                      created=utc_timestamp(), source=source, layers=layers, config=config)
        write_image(image_tmp / "image.json", image)
        return images.install_layered(image_tmp, image, {layer_id: layer_tmp}, in_use)
    finally:
        shutil.rmtree(layer_tmp, ignore_errors=True)      # empty if the layer was moved in
        shutil.rmtree(image_tmp, ignore_errors=True)
