"""Models: the GCN backbones, the classification and projection heads, and the released-checkpoint converter."""

from __future__ import annotations

from aclnet.models.backbones import BACKBONES, CTRGCN, STGCN, ACLNetGCN, BackboneOutput, build_backbone
from aclnet.models.convert import CheckpointError, convert_released_checkpoint, to_released_layout
from aclnet.models.heads import (
    PROJECTION_SOURCES,
    ClassificationHead,
    ProjectionHead,
    check_projection_source,
    projection_input,
)

__all__ = [
    "ACLNetGCN", "BACKBONES", "CTRGCN", "PROJECTION_SOURCES", "STGCN", "BackboneOutput", "CheckpointError",
    "ClassificationHead", "ProjectionHead", "build_backbone", "check_projection_source",
    "convert_released_checkpoint", "projection_input", "to_released_layout",
]
