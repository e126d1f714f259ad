"""Intra-class marginal contrastive loss (Intra-ACL, docs/method.md section 3): this batch against a first-in first-out
memory of recent embeddings, with a margin on the positive's logit; the memory is a device ring buffer."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aclnet.errors import InputError
from aclnet.losses.common import (
    all_gather_rows,
    check_batch,
    full_precision,
    is_int,
    is_number,
    l2_normalise,
    require,
    world,
)

_NAME = "IntraClassMarginLoss"
LOG_EPS = 1e-6  # inside the logarithm, as released


class IntraClassMarginLoss(nn.Module):
    """Intra-ACL with a memory of the latest `memory_size` normalised, detached embeddings and labels.

    Rows are the memory without this batch followed by this batch (with gradient); anchors are this batch.
    The loss is 0 until the memory has been filled, this batch counted; it is computed every step and
    multiplied by a 0/1 tensor, so no step reads the fill level back to the host. The fill level is also
    counted on the host from the batch shapes (`active`), so the trainer can leave the projection
    untouched until the loss uses it.
    With `gather_distributed`, every process enqueues the batches of all processes (in rank order).
    """

    memory: torch.Tensor
    memory_labels: torch.Tensor
    write_pointer: torch.Tensor
    filled: torch.Tensor

    def __init__(self, memory_size: int, dim: int, *, tau: float = 0.1, epsilon: float = 0.1,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        require(is_int(memory_size) and memory_size >= 1,
                f"{_NAME}: memory_size must be a positive integer, got {memory_size!r}")
        require(is_int(dim) and dim >= 1, f"{_NAME}: dim must be a positive integer, got {dim!r}")
        require(is_number(tau) and tau > 0, f"{_NAME}: tau must be a positive number, got {tau!r}")
        require(is_number(epsilon) and epsilon >= 0, f"{_NAME}: epsilon must be a number >= 0, got {epsilon!r}")
        require(isinstance(gather_distributed, bool),
                f"{_NAME}: gather_distributed must be true or false, got {gather_distributed!r}")
        self.memory_size = memory_size
        self.dim = dim
        self.tau = float(tau)
        self.epsilon = float(epsilon)
        self.gather_distributed = gather_distributed
        self.register_buffer("memory", torch.zeros(memory_size, dim))
        self.register_buffer("memory_labels", torch.full((memory_size,), -1, dtype=torch.long))
        self.register_buffer("write_pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self._enqueued = 0  # host copy of `filled`, from the batch shapes

    @property
    def active(self) -> bool:
        """Whether the last step's loss was on (the memory full, that step's batch counted)."""
        return self._enqueued >= self.memory_size

    def get_extra_state(self) -> dict[str, int]:
        """The host copy of the fill level, saved with state_dict so a resumed run knows it."""
        return {"enqueued": self._enqueued}

    def set_extra_state(self, state: Any) -> None:
        """Restore the host copy of the fill level."""
        if not isinstance(state, dict) or set(state) != {"enqueued"} or not is_int(state["enqueued"]) \
                or not 0 <= state["enqueued"] <= self.memory_size:
            raise InputError(f"{_NAME}: invalid extra state {state!r}; expected enqueued in 0..{self.memory_size}")
        self._enqueued = state["enqueued"]

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Enqueue this batch and return the loss over its anchors (a scalar tensor)."""
        check_batch(_NAME, embeddings, labels, self.dim)
        with full_precision(embeddings.device):
            anchors = l2_normalise(embeddings.to(self.memory.dtype))
            labels = labels.long()
            size, rank = world() if self.gather_distributed else (1, 0)
            if size * anchors.shape[0] > self.memory_size:
                raise ValueError(f"{_NAME}: {size * anchors.shape[0]} embeddings per step do not fit a memory "
                                 f"of {self.memory_size}")
            self._enqueued = min(self.memory_size, self._enqueued + size * anchors.shape[0])
            slots = self._enqueue(all_gather_rows(anchors.detach()) if size > 1 else anchors.detach(),
                                  all_gather_rows(labels) if size > 1 else labels)
            own_slots = slots[rank * anchors.shape[0]:(rank + 1) * anchors.shape[0]]
            rows = self.memory.index_copy(0, own_slots, anchors)  # this batch's slots with gradient
            loss = margin_contrastive_loss(anchors @ rows.T, labels, self.memory_labels, own_slots, self.tau,
                                           math.exp(-self.epsilon))
            return loss * (self.filled >= self.memory_size).to(loss.dtype)

    def extra_repr(self) -> str:
        return (f"memory_size={self.memory_size}, dim={self.dim}, tau={self.tau}, epsilon={self.epsilon}, "
                f"gather_distributed={self.gather_distributed}")

    def _enqueue(self, batch: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Write `batch` over the oldest slots of the ring buffer; return the slots written, in order."""
        slots = (self.write_pointer + torch.arange(batch.shape[0], device=batch.device)) % self.memory_size
        self.memory.index_copy_(0, slots, batch)
        self.memory_labels.index_copy_(0, slots, labels)
        self.write_pointer.copy_((self.write_pointer + batch.shape[0]) % self.memory_size)
        self.filled.copy_((self.filled + batch.shape[0]).clamp(max=self.memory_size))
        return slots


def margin_contrastive_loss(similarity: torch.Tensor, labels: torch.Tensor, row_labels: torch.Tensor,
                            anchor_rows: torch.Tensor, tau: float, omega: float) -> torch.Tensor:
    """From the similarities e_a . e_r (B x S): -mean over anchors of the mean over positives u of
    logit_au - log(omega exp(logit_au) + sum over negatives v of exp(logit_av) + 1e-6).

    Logits are e_a . e_r / tau minus the row maximum over all rows, the anchor's own row included
    (detached); `anchor_rows` marks each anchor's own row, excluded from positives and negatives. An
    anchor without positives contributes 0 and still counts in the outer mean over all anchors.
    """
    logits = similarity / tau
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    same = labels[:, None] == row_labels[None, :]
    is_self = F.one_hot(anchor_rows, similarity.shape[1]).bool()
    positives = same & ~is_self
    exp = logits.exp()
    negative_sum = torch.where(same, 0.0, exp).sum(dim=1, keepdim=True)
    pair = logits - torch.log(omega * exp + negative_sum + LOG_EPS)
    per_anchor = torch.where(positives, pair, 0.0).sum(dim=1) / positives.sum(dim=1).clamp(min=1)
    return -per_anchor.mean()
