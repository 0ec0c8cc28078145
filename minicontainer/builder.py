"""The bridge from `minicontainer image build` to rootfs-builder/build.py.

rootfs-builder/ lives beside the package (its name has a dash: it is a tool, not a module),
so it is loaded from its file. `image build busybox` means rootfs-builder/recipes/busybox.toml.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ConfigError

BUILDER_DIR = Path(__file__).resolve().parent.parent / "rootfs-builder"


def find_recipe(recipe: str) -> Path:
    path = Path(recipe)
    if path.is_file():
        return path
    named = BUILDER_DIR / "recipes" / f"{recipe}.toml"
    if named.is_file():
        return named
    raise ConfigError(f"no recipe {recipe!r}: give a .toml file or one of "
                      f"{', '.join(sorted(p.stem for p in (BUILDER_DIR / 'recipes').glob('*.toml')))}")


def load_builder():
    spec = importlib.util.spec_from_file_location("rootfs_builder", BUILDER_DIR / "build.py")
    if spec is None or not (BUILDER_DIR / "build.py").is_file():
        raise ConfigError(f"rootfs-builder not found at {BUILDER_DIR}: run from a minicontainer checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_recipe(recipe: str, out=None):
    """Build the recipe's tarball (at `out`, default build/NAME-TAG.tar); returns
    rootfs-builder's BuildResult(path, sha256, name, tag)."""
    builder = load_builder()
    try:
        return builder.build(find_recipe(recipe), out)
    except ValueError as e:                       # RecipeError is a ValueError: one line, 125
        raise ConfigError(str(e)) from None
