"""`minicontainer build`: an image from a Containerfile, one layer per instruction.

    containerfile.py   the file → instructions (continuations, forms, $VARIABLES)
    builder.py         each instruction → a cached image: RUN in a real container (the
                       library's Container, the same run sequence as `run`), COPY/ADD
                       through storage/cp.py into a created container, then `commit`

rootfs-builder's recipes (`image build RECIPE`) stay: they show how a userland is assembled
from nothing. A Containerfile starts from an image and changes it, as Docker and Podman do.
"""
