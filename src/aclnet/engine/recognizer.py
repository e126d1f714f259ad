"""The recognizer: backbone, classifier, projections and losses in one module.

Keeping the losses inside the module puts their state (confusion statistics, prototypes, memory,
epoch) into `state_dict()`, so checkpoints and DDP see it like any other buffer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss
from aclnet.models import ClassificationHead, ProjectionHead
from aclnet.models.heads import check_projection_source, projection_input


class RecognizerOutput(NamedTuple):
    """Logits (N, C) and the pooled features (N, D) of a batch."""

    logits: Tensor
    pooled: Tensor


class Recognizer(nn.Module):
    """Classification with the ACLNet objective L = CE + w_inter * L_inter + w_intra * L_intra."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        embedding_input: str = "topology",
        embedding_dim: int = 256,
        dropout: float = 0.0,
        inter_loss: InterClassAffinityLoss | None = None,
        intra_loss: IntraClassMarginLoss | None = None,
        inter_weight: float = 0.1,
        intra_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = ClassificationHead(backbone.out_channels, num_classes, dropout=dropout)
        self.embedding_input = embedding_input
        in_features = check_projection_source(backbone, embedding_input) if inter_loss or intra_loss else 0
        self.inter_projection = ProjectionHead(in_features, embedding_dim) if inter_loss is not None else None
        self.intra_projection = ProjectionHead(in_features, embedding_dim) if intra_loss is not None else None
        self.inter_loss = inter_loss
        self.intra_loss = intra_loss
        self.inter_weight = inter_weight
        self.intra_weight = intra_weight

    def set_epoch(self, epoch: int) -> None:
        """Tell the losses the (1-based) epoch; the trainer calls this at each epoch start."""
        if self.inter_loss is not None:
            self.inter_loss.set_epoch(epoch)

    def predict(self, x: Tensor) -> RecognizerOutput:
        """Logits and pooled features of a batch (N, M, T, V, C)."""
        out = self.backbone(x)
        return RecognizerOutput(self.cls_head(out.pooled), out.pooled)

    def forward(self, x: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Training losses of a batch: `loss` (the total) and its terms `ce`, `inter`, `intra`."""
        out = self.backbone(x)
        logits = self.cls_head(out.pooled)
        losses = {"ce": F.cross_entropy(logits.float(), labels)}
        total = losses["ce"]
        if self.inter_loss is not None or self.intra_loss is not None:
            source = projection_input(out, self.embedding_input)
        if self.inter_loss is not None:
            embedding = self.inter_projection(source).float()
            losses["inter"] = self.inter_loss(embedding, labels, logits.detach().float())
            total = total + self.inter_weight * losses["inter"]
        if self.intra_loss is not None:
            embedding = self.intra_projection(source).float()
            losses["intra"] = self.intra_loss(embedding, labels)
            total = total + self.intra_weight * losses["intra"]
        losses["loss"] = total
        return losses


def average_clip_scores(model: Recognizer, batch: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax scores averaged over clips, and clip-averaged pooled features, of (N, clips, M, T, V, C)."""
    n, clips = batch.shape[:2]
    out = model.predict(batch.flatten(0, 1))
    scores = torch.softmax(out.logits.float(), dim=1).view(n, clips, -1).mean(1)
    return scores, out.pooled.float().view(n, clips, -1).mean(1)
