"""User-defined layouts from a YAML or JSON file.

The file holds `name` (optional), `joints` (a list of names, or a count), `edges` (pairs of joint
indices or names), `center` (index or name), `base` (0 or 1, the first index; default 0), and
optionally `flip_pairs` and `parts` (name -> list of joints).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from aclnet import plain_yaml
from aclnet.fileio import require_readable
from aclnet.skeleton.layout import Layout, LayoutError, make_layout

MAX_JOINTS = 1000
"""Most joints of a layout (whole-body pose estimators give 133)."""
_KEYS = {"name", "joints", "edges", "center", "base", "flip_pairs", "parts"}


def load_layout_file(path: str | Path) -> Layout:
    """Read and validate a layout file; errors name the file and the entry."""
    path = require_readable(Path(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read layout file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise LayoutError(f"{path}: not a text file (not UTF-8 at byte {exc.start})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else plain_yaml.load(text)
    except RecursionError:
        raise LayoutError(f"{path}: nested too deeply") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise LayoutError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    return layout_from_mapping(data, path)


def layout_from_mapping(data: Any, path: Path | str) -> Layout:
    """A layout from the mapping of a layout file (`path` names where it came from in messages)."""
    path = Path(path)
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: a layout file must hold a mapping with keys {sorted(_KEYS)}")
    unknown = set(data) - _KEYS
    if unknown:
        raise LayoutError(f"{path}: unknown keys {sorted(unknown)}; valid keys are {sorted(_KEYS)}")
    for key in ("joints", "edges", "center"):
        if key not in data:
            raise LayoutError(f"{path}: missing required key '{key}'")
    joints = data["joints"]
    if isinstance(joints, int) and not isinstance(joints, bool) and 1 <= joints <= MAX_JOINTS:
        names = [f"joint{i}" for i in range(joints)]
    elif isinstance(joints, list) and 1 <= len(joints) <= MAX_JOINTS and all(isinstance(j, str) for j in joints):
        names = list(joints)
    else:
        shown = joints if isinstance(joints, int) else f"a list of {len(joints)}" if isinstance(joints, list) else \
            type(joints).__name__
        raise LayoutError(f"{path}: 'joints' must be a count from 1 to {MAX_JOINTS} or a list of up to {MAX_JOINTS} "
                          f"names, got {shown}")
    base = data.get("base", 0)
    if base not in (0, 1):
        raise LayoutError(f"{path}: 'base' must be 0 or 1, got {base!r}")
    resolve = _resolver(path, names, base)
    if not isinstance(data["edges"], list):
        raise LayoutError(f"{path}: 'edges' must be a list of pairs")
    edges = [_pair(path, f"edges[{k}]", e, resolve) for k, e in enumerate(data["edges"])]
    center = resolve("center", data["center"])
    flips = None
    for key, kind in (("flip_pairs", list), ("parts", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            example = "[[left_hand, right_hand], ...]" if kind is list else "{arms: [joints...], ...}"
            raise LayoutError(f"{path}: '{key}' must be a {kind.__name__}, e.g. {example}; "
                              f"got {type(data[key]).__name__}")
    if data.get("flip_pairs") is not None:
        flips = [_pair(path, f"flip_pairs[{k}]", e, resolve) for k, e in enumerate(data["flip_pairs"])]
    parts = {}
    for part, members in (data.get("parts") or {}).items():
        if not isinstance(members, list):
            raise LayoutError(f"{path}: parts.{part} must be a list of joints")
        parts[str(part)] = [resolve(f"parts.{part}[{k}]", m) for k, m in enumerate(members)]
    return make_layout(
        str(data.get("name", path.stem)), names, edges, center, flip_pairs=flips, parts=parts, source=str(path)
    )


def layout_to_mapping(layout: Layout) -> dict[str, Any]:
    """The mapping of a layout file that describes `layout` exactly (what a checkpoint carries)."""
    return {
        "name": layout.name,
        "joints": list(layout.joint_names),
        "edges": [list(edge) for edge in layout.edges],
        "center": layout.center,
        "flip_pairs": [list(pair) for pair in layout.flip_pairs],
        "parts": {part: list(joints) for part, joints in layout.parts.items()},
    }


def _resolver(path: Path, names: list[str], base: int):
    index = {n: i for i, n in enumerate(names)}

    def resolve(entry: str, joint: Any) -> int:
        if isinstance(joint, str):
            if joint not in index:
                raise LayoutError(f"{path}: {entry}: unknown joint name '{joint}'")
            return index[joint]
        if isinstance(joint, int) and not isinstance(joint, bool):
            value = joint - base
            if not 0 <= value < len(names):
                raise LayoutError(
                    f"{path}: {entry}: joint {joint} is out of range {base}..{len(names) - 1 + base}"
                )
            return value
        raise LayoutError(f"{path}: {entry}: a joint must be an index or a name, got {joint!r}")

    return resolve


def _pair(path: Path, entry: str, value: Any, resolve) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise LayoutError(f"{path}: {entry}: expected a pair of joints, got {value!r}")
    return resolve(entry, value[0]), resolve(entry, value[1])
