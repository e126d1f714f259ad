"""The model of every task: a backbone, an optional classifier, and a list of auxiliary losses.

Each auxiliary loss is one entry (projection, loss, weight): adding a loss is adding an entry. The
losses live inside the module, so their state (confusion statistics, prototypes, memory, epoch) is in
`state_dict()` and checkpoints and DDP see it like any other buffer. Everything under `aux.` serves
training only; inference loaders and exporters drop it (`TRAINING_ONLY_PREFIX`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.models.backbones import SkeletonBackbone
from aclnet.models.heads import ClassificationHead, ProjectionHead, check_projection_source, projection_input

TRAINING_ONLY_PREFIX = "aux."
"""State-dict prefix of everything that serves training only (auxiliary projections and loss state)."""


class ModelOutput(NamedTuple):
    """Logits (N, C), or None for a model without a classifier, and the pooled features (N, D)."""

    logits: Tensor | None
    pooled: Tensor


class AuxiliaryLoss(nn.Module):
    """One auxiliary term of the objective: `weight * loss(projection(source), labels[, logits])`.

    Args:
        loss: the loss module; it takes (embeddings (B, D), labels (B,)), and also the detached logits
            (B, C) when its class sets `needs_logits = True` (the inter-class affinity loss does).
            A `set_epoch(epoch)` method, when present, is called at each epoch start.
        projection: maps the source tensor to the loss's embedding space (`nn.Identity()` for none).
        weight: the term's weight in the total loss.
        source: which backbone output feeds the projection: "topology" or "pooled".
    """

    def __init__(self, loss: nn.Module, projection: nn.Module, weight: float, source: str) -> None:
        super().__init__()
        self.loss = loss
        self.projection = projection
        self.weight = float(weight)
        self.source = source

    @property
    def needs_logits(self) -> bool:
        return bool(getattr(self.loss, "needs_logits", False))

    @property
    def active(self) -> bool:
        """Whether the loss gave its projection a gradient in the last step (host-side; losses without an
        `active` property always do)."""
        return bool(getattr(self.loss, "active", True))

    def set_epoch(self, epoch: int) -> None:
        set_epoch = getattr(self.loss, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)

    def diagnostics(self) -> dict[str, Tensor]:
        """Device scalars for a per-epoch log: the loss's own (`diagnostics()`, when it has one) and the
        norm of the projection's weights."""
        values = dict(self.loss.diagnostics()) if hasattr(self.loss, "diagnostics") else {}
        weights = [p.detach().flatten() for p in self.projection.parameters() if p.dim() > 1]
        if weights:
            values["projection_norm"] = torch.cat(weights).norm()
        return values

    def forward(self, source: Tensor, labels: Tensor, logits: Tensor | None) -> Tensor:
        embedding = self.projection(source).float()
        if self.needs_logits:
            return self.loss(embedding, labels, logits.detach().float())
        return self.loss(embedding, labels)


def projected_loss(backbone: SkeletonBackbone, loss: nn.Module, *, weight: float, source: str,
                   dim: int | None) -> AuxiliaryLoss:
    """An auxiliary entry whose projection is a Linear from `source` to `dim` (None: no projection)."""
    in_features = check_projection_source(backbone, source)
    projection = nn.Identity() if dim is None else ProjectionHead(in_features, dim)
    return AuxiliaryLoss(loss, projection, weight, source)


class SkeletonModel(nn.Module):
    """Backbone, classifier and auxiliary losses: L = ce_weight * CE + sum of weight_i * L_i.

    Args:
        backbone: a skeleton backbone (input (N, M, T, V, C), output `BackboneOutput`).
        num_classes: classifier outputs; None for a model without classifier (e.g. GaitGraph, trained
            with a metric loss only).
        aux_losses: named auxiliary entries (e.g. {"inter": ..., "intra": ...}).
        dropout: dropout before the classifier.
    """

    def __init__(self, backbone: SkeletonBackbone, num_classes: int | None, *,
                 aux_losses: dict[str, AuxiliaryLoss] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = None if num_classes is None else ClassificationHead(backbone.out_channels, num_classes,
                                                                            dropout=dropout)
        self.aux = nn.ModuleDict(aux_losses or {})
        logit_users = [name for name, entry in self.aux.items() if entry.needs_logits]
        if self.cls_head is None and logit_users:
            raise InputError(f"auxiliary loss(es) {logit_users} need the classifier's logits; enable the classifier")

    @property
    def num_classes(self) -> int | None:
        return None if self.cls_head is None else self.cls_head.fc.out_features

    def set_epoch(self, epoch: int) -> None:
        """Tell the auxiliary losses the (1-based) epoch; the trainer calls this at each epoch start."""
        for entry in self.aux.values():
            entry.set_epoch(epoch)

    def diagnostics(self) -> dict[str, float]:
        """Each auxiliary entry's diagnostics as `NAME_KEY` numbers (read to the host: call once per epoch);
        undefined ones (NaN, e.g. a share of no samples) are left out."""
        values = {f"{name}_{key}": float(value) for name, entry in self.aux.items()
                  for key, value in entry.diagnostics().items()}
        return {key: value for key, value in values.items() if not math.isnan(value)}

    def idle_parameters(self) -> list[nn.Parameter]:
        """Parameters whose only loss term was switched off in the last step (the projections of inactive
        auxiliary losses): the optimizer must leave them exactly as they are, as the release does, whose
        switched-off losses are constants that give no gradient at all."""
        return [p for entry in self.aux.values() if not entry.active for p in entry.projection.parameters()]

    def predict(self, x: Tensor) -> ModelOutput:
        """Logits and pooled features of a batch (N, M, T, V, C)."""
        out = self.backbone(x)
        return ModelOutput(None if self.cls_head is None else self.cls_head(out.pooled), out.pooled)

    def forward(self, x: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Training losses of a batch: `loss` (the total) and each term (`ce` and the entries' names)."""
        out = self.backbone(x)
        losses: dict[str, Tensor] = {}
        logits = None
        if self.cls_head is not None:
            logits = self.cls_head(out.pooled)
            losses["ce"] = F.cross_entropy(logits.float(), labels)
        for name, entry in self.aux.items():
            losses[name] = entry(projection_input(out, entry.source), labels, logits)
        if not losses:
            raise InputError("this model has neither a classifier nor an auxiliary loss; it cannot be trained")
        total = losses.get("ce", torch.zeros((), device=x.device))
        for name, entry in self.aux.items():
            total = total + entry.weight * losses[name]
        losses["loss"] = total
        return losses


def clip_averaged(model: SkeletonModel, batch: Tensor) -> tuple[Tensor | None, Tensor]:
    """Softmax scores (None without classifier) and pooled features, averaged over clips, of a batch
    (N, clips, M, T, V, C)."""
    n, clips = batch.shape[:2]
    out = model.predict(batch.flatten(0, 1))
    features = out.pooled.float().view(n, clips, -1).mean(1)
    if out.logits is None:
        return None, features
    return torch.softmax(out.logits.float(), dim=1).view(n, clips, -1).mean(1), features
