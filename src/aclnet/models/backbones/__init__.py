"""GCN backbones on skeleton batches (N, M, T, V, C): the ACLNet GCN, CTR-GCN and ST-GCN."""

from __future__ import annotations

import inspect
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


def backbone_options(name: str) -> list[str]:
    """The keyword options of a backbone's constructor (what `model.options` may set)."""
    return [p.name for p in inspect.signature(BACKBONES[name]).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY or p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def build_backbone(name: str, **kwargs: Any) -> SkeletonBackbone:
    """A backbone by name (a key of `BACKBONES`) with its constructor's keyword options; unknown options and
    values the constructor refuses are `InputError`s naming the option."""
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {name!r}; valid backbones are {sorted(BACKBONES)}")
    unknown = sorted(set(kwargs) - set(backbone_options(name)))
    if unknown:
        raise InputError(f"model.options: {unknown} are not options of backbone '{name}'; its options are "
                         f"{backbone_options(name)}")
    try:
        return BACKBONES[name](**kwargs)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise InputError(f"model.options: backbone '{name}' refuses {kwargs} ({type(exc).__name__}: {exc})") from None


__all__ = [
    "ACLNetGCN", "BACKBONES", "CTRGCN", "STGCN", "BackboneOutput", "ResGCN", "SkeletonBackbone", "backbone_options",
    "build_backbone",
]
