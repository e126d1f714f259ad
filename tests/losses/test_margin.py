"""`aclnet.losses.margin`: Intra-ACL against the reference and by hand."""

from __future__ import annotations

import math

import pytest
import torch
from references import DOUBLE, ReferenceIntra, both, make_batch

from aclnet.losses import IntraClassMarginLoss


@pytest.mark.parametrize("memory_size,batch,tau,epsilon", [(10, 4, 0.1, 0.1), (12, 4, 0.2, 0.3), (6, 6, 0.1, 0.1)])
def test_intra_matches_reference(memory_size: int, batch: int, tau: float, epsilon: float) -> None:
    C, D = 4, 5
    module = IntraClassMarginLoss(memory_size, D, tau=tau, epsilon=epsilon).double()
    ref = ReferenceIntra(memory_size, tau, epsilon)
    gen = torch.Generator().manual_seed(3)
    losses = []
    for _ in range(7):
        emb, labels, _ = make_batch(gen, batch, C, D)
        loss, _ = both(lambda e, y=labels: module(e, y), lambda e, y=labels: ref.step(e, y), emb)
        losses.append(loss)
        memory = {(tuple(x.tolist()), y) for x, y in ref.memory}
        assert {(tuple(x), y) for x, y in zip(module.memory.tolist(), module.memory_labels.tolist())
                if y >= 0} == memory
    first_full = -(-memory_size // batch)
    assert all(loss == 0 for loss in losses[:first_full - 1]) and all(loss != 0 for loss in losses[first_full - 1:])
    assert ref.anchors_without_positive > 0


def test_intra_by_hand_three_embeddings() -> None:
    module = IntraClassMarginLoss(3, 2).double()
    e = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=DOUBLE)
    loss = module(e, torch.tensor([0, 0, 1]))
    omega = math.exp(-0.1)
    # anchor 0: logits/tau [10, 6, 0] - 10; positive 1, negative 2.
    l0 = -4 - math.log(omega * math.exp(-4) + math.exp(-10) + 1e-6)
    # anchor 1: [6, 10, 8] - 10; positive 0, negative 2. Anchor 2: no positive, 0, still in the mean.
    l1 = -4 - math.log(omega * math.exp(-4) + math.exp(-2) + 1e-6)
    assert loss.item() == pytest.approx(-(l0 + l1) / 3, rel=1e-10)


def test_intra_rejects_batch_larger_than_memory() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        IntraClassMarginLoss(4, 3)(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
