"""Helpers shared by the contrastive losses: validation, normalisation, precision and collectives."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager

import torch
import torch.distributed as dist

from aclnet.errors import InputError

NORM_EPS = 1e-12


def require(ok: bool, message: str) -> None:
    """Raise InputError with `message` when a hyper-parameter check fails."""
    if not ok:
        raise InputError(message)


def is_int(value: object) -> bool:
    """True for a Python integer that is not a bool (bools are integers to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for a finite real Python number that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows divided by their norm plus 1e-12, as the released code normalises (docs/method.md, section 10)."""
    return x / (x.norm(dim=-1, keepdim=True) + NORM_EPS)


def masked_logsumexp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log of the sum of exp(values) over each row's entries where `mask` holds (at least one per row).

    Equal to logsumexp over the row with the masked-out entries at -inf, but exp is never taken of those
    (exp of -inf or of values below about -88 takes a slow path on CPU, about ten times slower).
    """
    shift = values.masked_fill(~mask, float("-inf")).amax(dim=1, keepdim=True).detach()
    shifted = torch.where(mask, values - shift, 0.0)
    return torch.where(mask, shifted.exp(), 0.0).sum(dim=1).log() + shift[:, 0]


def full_precision(device: torch.device) -> AbstractContextManager[None]:
    """Switch autocast off, so that the losses run in the precision of their buffers (tau = 0.1 is sharp)."""
    return torch.autocast(device_type=device.type, enabled=False)


def world() -> tuple[int, int]:
    """(world size, rank) of the default process group, or (1, 0) without distributed training."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all processes in place and return it (no-op in a single process)."""
    if world()[0] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's `tensor` along dim 0, in rank order (equal shapes on all ranks)."""
    size = world()[0]
    if size == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def check_batch(name: str, embeddings: torch.Tensor, labels: torch.Tensor, dim: int) -> None:
    """Shape checks on host-known sizes only (reading label values would synchronise the device)."""
    if embeddings.dim() != 2 or embeddings.shape[1] != dim:
        raise ValueError(f"{name}: embeddings must be (B, {dim}), got {tuple(embeddings.shape)}")
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"{name}: labels must be ({embeddings.shape[0]},), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name}: labels must be an integer tensor, got {labels.dtype}")
