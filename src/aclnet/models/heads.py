"""Heads on a backbone's output: the classifier and the projections of the contrastive losses."""

from __future__ import annotations

from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.models.backbones import BackboneOutput, SkeletonBackbone

PROJECTION_SOURCES = ("topology", "pooled")
"""Inputs a projection can take: the learned topology (V*V values, released) or the pooled feature (paper)."""


class ClassificationHead(nn.Module):
    """Dropout and a linear classifier on the pooled feature (N, C) -> logits (N, num_classes).

    Weights start from N(0, 0.01) and the bias at 0, as the release's `fc_cls`.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1 or not 0.0 <= dropout < 1.0:
            raise InputError(
                f"ClassificationHead: need in_channels >= 1, num_classes >= 1 and 0 <= dropout < 1; "
                f"got {in_channels}, {num_classes}, {dropout}"
            )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(self.dropout(pooled))


class ProjectionHead(nn.Module):
    """The linear map of one contrastive loss's input to its embedding space (256 dimensions)."""

    def __init__(self, in_features: int, out_features: int = 256) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise InputError(f"ProjectionHead: sizes must be >= 1, got {in_features} -> {out_features}")
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


def check_projection_source(backbone: SkeletonBackbone, source: str) -> int:
    """Validate a projection input choice for a backbone; returns the projection's in_features."""
    if source not in PROJECTION_SOURCES:
        raise InputError(f"unknown projection input {source!r}; valid inputs are {list(PROJECTION_SOURCES)}")
    if source == "pooled":
        return backbone.out_channels
    if not backbone.has_topology:
        raise InputError(f"{type(backbone).__name__} learns no topology; use projection input 'pooled'")
    return backbone.num_joints**2


def projection_input(output: BackboneOutput, source: str) -> Tensor:
    """The tensor a projection reads: `output.topology` (N, V*V) or `output.pooled` (N, C)."""
    if source == "pooled":
        return output.pooled
    if source == "topology" and output.topology is not None:
        return output.topology
    raise InputError(f"projection input {source!r} is not available from this backbone's output")
