"""The `Layout` record: joints, edges and everything derived from them (bones, flips, body parts)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from aclnet.errors import InputError

PART_NAMES = ("left_arm", "right_arm", "hands", "legs", "trunk")


class LayoutError(InputError):
    """A layout definition is invalid (edges out of range, disconnected skeleton, bad center)."""


@dataclass(frozen=True)
class Layout:
    """A skeleton: joint names, undirected edges, a center joint and derived tables.

    `parents[v]` is the neighbour of v on the shortest path to the center (the center maps to
    itself); bones (modality b) are `(v, parents[v])`, two-hop bones (modality k) are
    `(v, parents[parents[v]])`. `flip_pairs` swap left and right joints; `parts` name the joint
    groups used for occlusion tests.
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    flip_pairs: tuple[tuple[int, int], ...] = ()
    parts: dict[str, tuple[int, ...]] = field(default_factory=dict)
    parents: tuple[int, ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        return tuple((v, p) for v, p in enumerate(self.parents))

    @property
    def two_hop_pairs(self) -> tuple[tuple[int, int], ...]:
        return tuple((v, self.parents[p]) for v, p in enumerate(self.parents))

    @property
    def inward(self) -> tuple[tuple[int, int], ...]:
        """Directed edges (child, parent) towards the center, as PYSKL's graphs use them."""
        return tuple((v, p) for v, p in enumerate(self.parents) if v != p)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation of joints that mirrors left and right."""
        index = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return tuple(index)


def make_layout(
    name: str,
    joint_names: list[str] | tuple[str, ...],
    edges: list[tuple[int, int]] | tuple[tuple[int, int], ...],
    center: int,
    *,
    flip_pairs: list[tuple[int, int]] | None = None,
    parts: dict[str, list[int] | tuple[int, ...]] | None = None,
    source: str = "<built-in>",
) -> Layout:
    """Validate a layout definition (0-based indices) and derive its parent table.

    Flip pairs default to joints named `left_X` / `right_X`; `source` names the file in errors.
    """
    names = tuple(str(n) for n in joint_names)
    num = len(names)
    where = f"{source}: layout '{name}'"
    if num < 1:
        raise LayoutError(f"{where}: no joints")
    if len(set(names)) != num:
        dup = sorted({n for n in names if names.count(n) > 1})
        raise LayoutError(f"{where}: duplicate joint names {dup}")
    if not isinstance(center, int) or not 0 <= center < num:
        raise LayoutError(f"{where}: center {center!r} is not a joint index in 0..{num - 1}")
    clean: list[tuple[int, int]] = []
    for k, edge in enumerate(edges):
        if len(edge) != 2 or not all(isinstance(x, int) for x in edge):
            raise LayoutError(f"{where}: edge #{k} {edge!r} is not a pair of joint indices")
        a, b = edge
        if not (0 <= a < num and 0 <= b < num):
            raise LayoutError(f"{where}: edge #{k} {edge!r} has a joint outside 0..{num - 1}")
        if a == b:
            raise LayoutError(f"{where}: edge #{k} {edge!r} joins a joint to itself")
        clean.append((a, b))
    parents = _parents_towards(center, num, clean)
    unreached = [names[v] for v in range(num) if parents[v] < 0]
    if unreached:
        raise LayoutError(f"{where}: skeleton is not connected; joints {unreached} cannot reach the center")
    if flip_pairs is None:
        flips = _flip_pairs_from_names(names)
    else:
        flips = tuple((int(a), int(b)) for a, b in flip_pairs)
        for a, b in flips:
            if not (0 <= a < num and 0 <= b < num):
                raise LayoutError(f"{where}: flip pair {(a, b)} has a joint outside 0..{num - 1}")
    part_table: dict[str, tuple[int, ...]] = {}
    for part, joints in (parts or {}).items():
        bad = [j for j in joints if not 0 <= j < num]
        if bad:
            raise LayoutError(f"{where}: part '{part}' has joints outside 0..{num - 1}: {bad}")
        part_table[part] = tuple(int(j) for j in joints)
    return Layout(name, names, tuple(clean), center, flips, part_table, tuple(parents))


def _parents_towards(center: int, num: int, edges: list[tuple[int, int]]) -> list[int]:
    """Breadth-first search from the center; -1 marks joints that cannot be reached."""
    neighbours: list[list[int]] = [[] for _ in range(num)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    parents = [-1] * num
    parents[center] = center
    queue = deque([center])
    while queue:
        v = queue.popleft()
        for w in sorted(neighbours[v]):
            if parents[w] < 0:
                parents[w] = v
                queue.append(w)
    return parents


def _flip_pairs_from_names(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    index = {n: i for i, n in enumerate(names)}
    return tuple(
        (i, index["right_" + n[5:]])
        for i, n in enumerate(names)
        if n.startswith("left_") and "right_" + n[5:] in index
    )
