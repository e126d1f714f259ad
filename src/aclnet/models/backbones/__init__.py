"""GCN backbones on skeleton batches (N, M, T, V, C): the ACLNet GCN, CTR-GCN and ST-GCN."""

from __future__ import annotations

from typing import Any

from aclnet.errors import InputError
from aclnet.models.backbones.aclnet_gcn import ACLNetGCN
from aclnet.models.backbones.blocks import BackboneOutput, SkeletonBackbone
from aclnet.models.backbones.ctrgcn import CTRGCN
from aclnet.models.backbones.resgcn import ResGCN
from aclnet.models.backbones.stgcn import STGCN

BACKBONES: dict[str, type[SkeletonBackbone]] = {
    "aclnet_gcn": ACLNetGCN, "ctrgcn": CTRGCN, "resgcn": ResGCN, "stgcn": STGCN,
}


def build_backbone(name: str, **kwargs: Any) -> SkeletonBackbone:
    """A backbone by name (a key of `BACKBONES`) with its constructor's keyword options."""
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {name!r}; valid backbones are {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)


__all__ = [
    "ACLNetGCN", "BACKBONES", "CTRGCN", "STGCN", "BackboneOutput", "ResGCN", "SkeletonBackbone", "build_backbone",
]
