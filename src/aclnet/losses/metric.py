"""Supervised contrastive loss (SupCon, Khosla et al., NeurIPS 2020), the loss of the GaitGraph baseline."""

from __future__ import annotations

import torch
from torch import nn

from aclnet.losses.common import full_precision, is_number, l2_normalise, masked_logsumexp, require

_NAME = "SupConLoss"


class SupConLoss(nn.Module):
    """SupCon over a batch of embeddings with labels: every row is an anchor, every other row with
    its label is a positive, and every other row is in the denominator.

    With e_i the L2-normalised embeddings (divided by norm + 1e-12), P(i) = {p != i : y_p = y_i} and
    A(i) = {a != i}:

        loss_i = -1/|P(i)| sum_{p in P(i)} log( exp(e_i . e_p / T) / sum_{a in A(i)} exp(e_i . e_a / T) )
        loss   = (T / T_base) * mean of loss_i over the anchors with |P(i)| > 0

    Anchors without a positive contribute nothing and are left out of the mean (the release divides by
    |P(i)| = 0 and returns NaN; its batches always hold the second view of every anchor); the loss is
    0 when no anchor has a positive. Logits are shifted by their row maximum over A(i) (detached)
    before the exponential; the shift cancels. Two augmented views of each sequence arrive as 2B rows
    with their labels repeated, so views need no special handling. The forward pass reads nothing
    back to the host and runs with autocast off, in float32 (float64 inputs stay float64).

    Args:
        temperature: T, > 0; GaitGraph trains with 0.01 (`--temp 0.01`).
        base_temperature: T_base, > 0, or None for no scaling (T / T_base = 1). GaitGraph's loss keeps
            the reference code's default 0.07 while setting T = 0.01, so its values are those with
            base_temperature=0.07, i.e. 1/7 of the unscaled loss.
    """

    def __init__(self, temperature: float = 0.01, base_temperature: float | None = None) -> None:
        super().__init__()
        require(is_number(temperature) and temperature > 0,
                f"{_NAME}: temperature must be a positive number, got {temperature!r}")
        require(base_temperature is None or (is_number(base_temperature) and base_temperature > 0),
                f"{_NAME}: base_temperature must be a positive number or None, got {base_temperature!r}")
        self.temperature = float(temperature)
        self.base_temperature = None if base_temperature is None else float(base_temperature)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeddings (B, D), labels (B,) integers -> the loss, a scalar tensor."""
        if embeddings.dim() != 2:
            raise ValueError(f"{_NAME}: embeddings must be (B, D), got {tuple(embeddings.shape)}")
        if labels.shape != (embeddings.shape[0],):
            raise ValueError(f"{_NAME}: labels must be ({embeddings.shape[0]},), got {tuple(labels.shape)}")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"{_NAME}: labels must be an integer tensor, got {labels.dtype}")
        with full_precision(embeddings.device):
            e = l2_normalise(embeddings.to(torch.promote_types(embeddings.dtype, torch.float32)))
            if e.shape[0] < 2:  # no other row: nothing to contrast (keeps the graph, value 0)
                return e.sum() * 0.0
            logits = e @ e.T / self.temperature
            others = ~torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
            positives = (labels[:, None] == labels[None, :]) & others
            log_prob = logits - masked_logsumexp(logits, others)[:, None]
            count = positives.sum(dim=1)
            per_anchor = -torch.where(positives, log_prob, 0.0).sum(dim=1) / count.clamp(min=1)
            has_positive = count > 0
            loss = per_anchor.sum() / has_positive.sum().clamp(min=1)
            if self.base_temperature is not None:
                loss = loss * (self.temperature / self.base_temperature)
            return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, base_temperature={self.base_temperature}"
