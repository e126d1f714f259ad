"""Adjacency matrices built from a layout, as the GCN backbones use them (V x V, float32)."""

from __future__ import annotations

import numpy as np

from aclnet.skeleton.layout import Layout


def edge_matrix(pairs: tuple[tuple[int, int], ...] | list[tuple[int, int]], num_joints: int) -> np.ndarray:
    """A[j, i] = 1 for each directed pair (i, j), as PYSKL's `edge2mat`."""
    matrix = np.zeros((num_joints, num_joints), dtype=np.float32)
    if pairs:
        src, dst = np.asarray(pairs, dtype=np.int64).T
        matrix[dst, src] = 1.0
    return matrix


def normalize_columns(matrix: np.ndarray) -> np.ndarray:
    """Divide each column by its sum (columns summing to 0 stay 0)."""
    degree = matrix.sum(axis=0)
    scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return (matrix * scale[None, :]).astype(np.float32)


def spatial(layout: Layout) -> np.ndarray:
    """Three graphs (3, V, V): identity, normalised inward edges, normalised outward edges."""
    num = layout.num_joints
    inward = layout.inward
    outward = tuple((p, v) for v, p in inward)
    return np.stack([
        np.eye(num, dtype=np.float32),
        normalize_columns(edge_matrix(inward, num)),
        normalize_columns(edge_matrix(outward, num)),
    ])


def binary(layout: Layout, self_loops: bool = True) -> np.ndarray:
    """Symmetric 0/1 adjacency (V, V), with self-loops unless asked otherwise."""
    num = layout.num_joints
    both = list(layout.edges) + [(b, a) for a, b in layout.edges]
    matrix = edge_matrix(both, num)
    if self_loops:
        matrix += np.eye(num, dtype=np.float32)
    return matrix


def normalized(layout: Layout) -> np.ndarray:
    """Symmetrically normalised adjacency with self-loops, D^-1/2 (A + I) D^-1/2 (V, V)."""
    matrix = binary(layout, self_loops=True)
    inv_sqrt = 1.0 / np.sqrt(matrix.sum(axis=1))
    return (matrix * inv_sqrt[:, None] * inv_sqrt[None, :]).astype(np.float32)


def random_graphs(num_joints: int, count: int, mean: float, std: float, seed: int | None = None) -> np.ndarray:
    """`count` graphs (count, V, V) drawn from N(mean, std): the learnable graphs' initial values."""
    rng = np.random.default_rng(seed)
    return rng.normal(mean, std, size=(count, num_joints, num_joints)).astype(np.float32)
