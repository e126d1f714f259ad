"""Skeleton layouts (joints, bones, flips, body parts) and the adjacency builders."""

from __future__ import annotations

from pathlib import Path

from aclnet.skeleton.builtin import BUILTIN_LAYOUTS
from aclnet.skeleton.custom import load_layout_file
from aclnet.skeleton.layout import PART_NAMES, Layout, LayoutError, make_layout


def get_layout(name_or_path: str | Path) -> Layout:
    """A built-in layout by name, or a user layout from a `.yaml`/`.yml`/`.json` file."""
    key = str(name_or_path)
    if key in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[key]
    if key.endswith((".yaml", ".yml", ".json")):
        return load_layout_file(key)
    raise LayoutError(
        f"unknown layout '{key}'; built-in layouts are {sorted(BUILTIN_LAYOUTS)}, "
        "or give a .yaml/.json layout file"
    )


__all__ = ["BUILTIN_LAYOUTS", "PART_NAMES", "Layout", "LayoutError", "get_layout", "load_layout_file", "make_layout"]
