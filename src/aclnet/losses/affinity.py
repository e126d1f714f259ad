"""Inter-class affinity contrastive loss (Inter-ACL, docs/method.md section 2): each sample against its class prototype
and the prototypes of its Motion Family, with family-aware temperatures; no host synchronisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aclnet.errors import InputError
from aclnet.losses.common import (
    all_reduce_sum,
    check_batch,
    full_precision,
    is_int,
    is_number,
    l2_normalise,
    masked_logsumexp,
    require,
    world,
)
from aclnet.losses.families import FAMILY_MODES, build_families, confusion_increment, family_temperatures
from aclnet.losses.scaling import RELEASED_CONSTANTS

_NAME = "InterClassAffinityLoss"


MOMENTUM_RANGE = (0.0, 1.0)
"""Allowed prototype momentum: low <= gamma < high (at 1 the prototypes would never move)."""


class InterClassAffinityLoss(nn.Module):
    """Inter-ACL with its state: confusion statistics, prototypes, families, affinity and the epoch.

    Within a step: statistics (from epoch `start_epoch` on), prototype update, families rebuilt at the
    first step of every epoch after `start_epoch` (from H including this batch), then the loss, which is
    0 (but differentiable) before and during epoch `start_epoch`. Call `set_epoch` (1-based) each epoch.
    `family_mode="released"` follows the authors' code, `"paper"` the paper where they differ
    (docs/method.md, section 4).
    """

    needs_logits = True  # its statistics read the classifier's predictions

    confusion: torch.Tensor
    prototypes: torch.Tensor
    families: torch.Tensor
    affinity: torch.Tensor
    prototype_seen: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        dim: int,
        *,
        k: int = RELEASED_CONSTANTS["k"],
        overlap_threshold: float = RELEASED_CONSTANTS["overlap_threshold"],
        momentum: float = 0.9,
        start_epoch: int = RELEASED_CONSTANTS["start_epoch"],
        family_mode: str = "released",
        temperatures: Sequence[float] = (0.1, 0.5, 1.0),
        fat: bool = True,
        fixed_tau: float = 0.1,
    ) -> None:
        super().__init__()
        _validate(num_classes, dim, k, overlap_threshold, momentum, start_epoch, family_mode, temperatures,
                  fat, fixed_tau)
        self.num_classes = num_classes
        self.dim = dim
        self.k = k
        self.overlap_threshold = overlap_threshold
        self.momentum = float(momentum)
        self.start_epoch = start_epoch
        self.family_mode = family_mode
        self.temperatures = tuple(float(t) for t in temperatures)
        self.fat = fat
        self.fixed_tau = float(fixed_tau)
        self.register_buffer("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long))
        self.register_buffer("prototypes", torch.randn(num_classes, dim))
        self.register_buffer("families", torch.zeros(num_classes, num_classes, dtype=torch.bool))
        self.register_buffer("affinity", torch.zeros(num_classes, num_classes))
        if family_mode == "paper":  # a paper prototype starts as its class's first batch mean
            self.register_buffer("prototype_seen", torch.zeros(num_classes, dtype=torch.bool))
        # This epoch's samples and those of them whose family was empty (diagnostics; not checkpointed).
        self.register_buffer("epoch_counts", torch.zeros(2, dtype=torch.long), persistent=False)
        self._epoch = 1
        self._rebuilt_epoch = 0  # epoch of the last family rebuild, 0 = never

    @property
    def epoch(self) -> int:
        """The current (1-based) epoch, as last set by the trainer."""
        return self._epoch

    @property
    def active(self) -> bool:
        """Whether this epoch's steps give the loss a gradient (epochs after `start_epoch`); a host-side
        number, so the trainer can leave the projection untouched while it is False."""
        return self._epoch > self.start_epoch

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss which epoch (1-based) the coming steps belong to."""
        if not is_int(epoch) or epoch < 1:
            raise ValueError(f"{_NAME}.set_epoch: epoch must be an integer >= 1, got {epoch!r}")
        self._epoch = epoch
        self.epoch_counts.zero_()

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Device scalars describing the state, for a per-epoch log: mean family size over classes, the
        share of this epoch's samples whose family was empty (paper mode; NaN before the loss starts) and
        the mean prototype norm."""
        samples, empty = self.epoch_counts.to(self.affinity.dtype)
        return {
            "family_size": self.families.sum(dim=1).to(self.affinity.dtype).mean(),
            "empty_family_share": empty / samples,
            "prototype_norm": self.prototypes.norm(dim=1).mean(),
        }

    def get_extra_state(self) -> dict[str, int]:
        """Host-side numbers saved with state_dict, so that a resumed run knows whether a rebuild is due."""
        return {"epoch": self._epoch, "rebuilt_epoch": self._rebuilt_epoch}

    def set_extra_state(self, state: Any) -> None:
        """Restore the epoch and the epoch of the last rebuild from a state_dict."""
        if not isinstance(state, dict) or set(state) != {"epoch", "rebuilt_epoch"} \
                or not all(is_int(v) and v >= 0 for v in state.values()):
            raise InputError(f"{_NAME}: invalid extra state {state!r}; expected epoch and rebuilt_epoch")
        self._epoch = state["epoch"]
        self._rebuilt_epoch = state["rebuilt_epoch"]

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """One training step: update the state from this batch and return the loss (a scalar tensor)."""
        check_batch(_NAME, embeddings, labels, self.dim)
        if logits.shape != (embeddings.shape[0], self.num_classes):
            raise ValueError(f"{_NAME}: logits must be ({embeddings.shape[0]}, {self.num_classes}), "
                             f"got {tuple(logits.shape)}")
        with full_precision(embeddings.device):
            raw = embeddings.to(self.prototypes.dtype)
            labels = labels.long()
            preds = logits.detach().argmax(dim=1)
            prototypes = self._update_state(raw, labels, preds)
            if self.active and self._rebuilt_epoch != self._epoch:
                self.rebuild_families()
            if not self.active:
                return embeddings.sum() * 0.0
            return self._family_loss(raw, labels, prototypes)

    def rebuild_families(self) -> None:
        """Rebuild families and affinity from the statistics H (vectorised; runs once per epoch)."""
        families, affinity = build_families(self.confusion, self.k, self.overlap_threshold, self.family_mode,
                                            dtype=self.affinity.dtype)
        self.families.copy_(families)
        self.affinity.copy_(affinity)
        self._rebuilt_epoch = self._epoch

    def class_temperatures(self) -> torch.Tensor:
        """tau of each class's family (C,): the FAT tier or the fixed tau; 0.125 for an empty family."""
        return family_temperatures(self.families, self.k, self.temperatures, self.fat, self.fixed_tau,
                                   self.prototypes.dtype)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, dim={self.dim}, k={self.k}, "
                f"overlap_threshold={self.overlap_threshold}, momentum={self.momentum}, "
                f"start_epoch={self.start_epoch}, family_mode={self.family_mode!r}, "
                f"temperatures={self.temperatures}, fat={self.fat}, fixed_tau={self.fixed_tau}")

    def _update_state(self, raw: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
        """Steps 1 and 5: add this batch to H and move the prototypes (sums over all processes); returns
        the prototypes this step's loss uses.

        Released: correctly classified samples, gradient through the batch mean. Paper: all samples, a
        class's first mean as its start, detached. The stored copy is always detached.
        """
        selected = torch.ones_like(labels, dtype=torch.bool) if self.family_mode == "paper" else preds == labels
        membership = F.one_hot(labels, self.num_classes).to(raw.dtype) * selected[:, None].to(raw.dtype)
        sums = membership.T @ raw
        counts = membership.sum(dim=0)
        increment = None
        if self._epoch >= self.start_epoch:
            increment = confusion_increment(labels, preds, self.num_classes, self.family_mode)
        if world()[0] > 1:
            sums, counts, increment = _sum_over_processes(sums, counts, increment)
        if increment is not None:
            self.confusion += increment
        present = (counts > 0)[:, None]
        mean = sums / counts.clamp(min=1)[:, None]
        if self.family_mode == "paper":
            mean = mean.detach()
        blended = self.momentum * self.prototypes + (1.0 - self.momentum) * mean
        if self.family_mode == "paper":
            blended = torch.where(self.prototype_seen[:, None], blended, mean)
            self.prototype_seen |= present[:, 0]
        updated = torch.where(present, blended, self.prototypes)
        self.prototypes.copy_(updated.detach())
        return updated

    def _family_loss(self, raw: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Step 7 as one padded (B, 1 + C) logit matrix with a mask: column 0 is e . m_i / tau, then the family.

        Released: m_i appears again among the members when i is in its own family. Empty family (paper):
        members are all classes but i at tau 0.125, i.e. cross-entropy over all C prototypes.
        """
        similarity = l2_normalise(raw) @ l2_normalise(prototypes).T
        tau = self.class_temperatures()[labels]
        members = self.families[labels]
        empty = ~members.any(dim=1, keepdim=True)
        self.epoch_counts += torch.stack([torch.ones_like(empty).sum(), empty.sum()])
        own = F.one_hot(labels, self.num_classes).bool()
        members = torch.where(empty, ~own, members)
        scaled = similarity / tau[:, None]
        target = scaled.gather(1, labels[:, None])
        padded = torch.cat([target, scaled], dim=1)
        mask = torch.cat([torch.ones_like(target, dtype=torch.bool), members], dim=1)
        return (masked_logsumexp(padded, mask) - target[:, 0]).mean()


def _sum_over_processes(sums: torch.Tensor, counts: torch.Tensor, increment: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """All-reduce the per-class sums and counts and the H increment in one float64 collective.

    The gradient keeps flowing through this process's own sums (the other processes' part is a constant).
    """
    parts = [sums.detach().flatten(), counts.flatten()] + ([] if increment is None else [increment.flatten()])
    packed = all_reduce_sum(torch.cat([p.to(torch.float64) for p in parts]))
    total_sums, total_counts, total_increment = torch.split(
        packed, [sums.numel(), counts.numel(), 0 if increment is None else increment.numel()])
    sums = sums + (total_sums.view_as(sums).to(sums.dtype) - sums).detach()
    counts = total_counts.view_as(counts).to(counts.dtype)
    if increment is not None:
        increment = total_increment.view_as(increment).round().long()
    return sums, counts, increment


def _validate(num_classes: int, dim: int, k: int, overlap_threshold: float, momentum: float, start_epoch: int,
              family_mode: str, temperatures: Sequence[float], fat: bool, fixed_tau: float) -> None:
    """Check the hyper-parameters, naming the one that is wrong."""
    require(is_int(num_classes) and num_classes >= 2, f"{_NAME}: num_classes must be an integer >= 2, "
                                                      f"got {num_classes!r}")
    require(is_int(dim) and dim >= 1, f"{_NAME}: dim must be a positive integer, got {dim!r}")
    require(is_int(k) and k >= 1, f"{_NAME}: k must be a positive integer, got {k!r}")
    require(is_number(overlap_threshold) and overlap_threshold >= 0,
            f"{_NAME}: overlap_threshold must be a number >= 0, got {overlap_threshold!r}")
    low, high = MOMENTUM_RANGE
    require(is_number(momentum) and low <= momentum < high,
            f"{_NAME}: momentum must be in [{low:g}, {high:g}), got {momentum!r}")
    require(is_int(start_epoch) and start_epoch >= 0,
            f"{_NAME}: start_epoch must be an integer >= 0, got {start_epoch!r}")
    require(family_mode in FAMILY_MODES, f"{_NAME}: family_mode must be one of {FAMILY_MODES}, "
                                         f"got {family_mode!r}")
    require(isinstance(temperatures, Sequence) and len(temperatures) == 3
            and all(is_number(t) and t > 0 for t in temperatures),
            f"{_NAME}: temperatures must be three positive numbers, got {temperatures!r}")
    require(isinstance(fat, bool), f"{_NAME}: fat must be true or false, got {fat!r}")
    require(is_number(fixed_tau) and fixed_tau > 0, f"{_NAME}: fixed_tau must be a positive number, "
                                                    f"got {fixed_tau!r}")
