"""SupConLoss (aclnet.losses.metric): against a plain loop, a hand-computed case, gradients, validation."""

from __future__ import annotations

import math

import pytest
import torch

from aclnet.errors import InputError
from aclnet.losses import SupConLoss


def per_anchor_reference(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> dict[int, float]:
    """SupCon written out: per anchor, per positive, explicit sums; only anchors with a positive appear."""
    rows = embeddings.tolist()
    ys = labels.tolist()
    unit = []
    for row in rows:
        norm = math.sqrt(sum(v * v for v in row))
        unit.append([v / (norm + 1e-12) for v in row])

    def dot(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b))

    losses = {}
    for i in range(len(rows)):
        positives = [p for p in range(len(rows)) if p != i and ys[p] == ys[i]]
        if not positives:
            continue
        denominator = sum(math.exp(dot(unit[i], unit[a]) / temperature) for a in range(len(rows)) if a != i)
        log_probs = 0.0
        for p in positives:
            log_probs += math.log(math.exp(dot(unit[i], unit[p]) / temperature) / denominator)
        losses[i] = -log_probs / len(positives)
    return losses


def loop_reference(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """The mean over the anchors that have a positive; 0 when none has."""
    losses = per_anchor_reference(embeddings, labels, temperature)
    return sum(losses.values()) / len(losses) if losses else 0.0


def seeded(b: int, d: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(b, d, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (b,), generator=generator)
    return embeddings, labels


@pytest.mark.parametrize("temperature", [0.01, 0.07, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_loop_reference(temperature, seed):
    embeddings, labels = seeded(12, 8, 4, seed)
    loss = SupConLoss(temperature)(embeddings, labels)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(loop_reference(embeddings, labels, temperature), abs=1e-6, rel=1e-9)


def test_anchor_without_positive_is_left_out_of_the_mean():
    embeddings, _ = seeded(7, 5, 1, 3)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3])  # anchors 5 and 6 have no positive
    loss = SupConLoss(0.1)(embeddings, labels)
    per_anchor = per_anchor_reference(embeddings, labels, 0.1)
    assert sorted(per_anchor) == [0, 1, 2, 3, 4]
    # the mean over the 5 anchors with a positive (the lone rows still sit in every denominator),
    # not a mean over all 7 with the lone anchors at 0
    assert loss.item() == pytest.approx(sum(per_anchor.values()) / 5, abs=1e-6, rel=1e-9)
    assert loss.item() != pytest.approx(sum(per_anchor.values()) / 7, rel=1e-3)


def test_two_views_as_repeated_labels():
    embeddings, _ = seeded(8, 6, 1, 4)
    labels = torch.arange(4).repeat(2)  # view 1 of samples 0..3, then view 2
    loss = SupConLoss(0.01)(embeddings, labels)
    assert loss.item() == pytest.approx(loop_reference(embeddings, labels, 0.01), abs=1e-6, rel=1e-9)


def test_hand_computed_three_samples():
    # e0 and e1 point the same way (label 0), e2 is orthogonal (label 1, no positive). With T = 1,
    # anchors 0 and 1: -log(e^1 / (e^1 + e^0)) = log(1 + e^-1); anchor 2 is left out.
    embeddings = torch.tensor([[2.0, 0.0], [0.5, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 0, 1])
    expected = math.log1p(math.exp(-1.0))  # 0.31326168751822286
    assert SupConLoss(1.0)(embeddings, labels).item() == pytest.approx(expected, abs=1e-6)
    # GaitGraph's scaling T / T_base
    assert SupConLoss(1.0, base_temperature=0.5)(embeddings, labels).item() == pytest.approx(2 * expected, abs=1e-6)


def test_no_positive_anywhere_is_zero_with_finite_gradient():
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = SupConLoss()(embeddings, torch.arange(4))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(embeddings.grad).all()
    single = torch.randn(1, 3, requires_grad=True)
    assert SupConLoss()(single, torch.tensor([0])).item() == 0.0


def test_gradient_flows():
    embeddings, labels = seeded(10, 6, 3, 5)
    embeddings = embeddings.float().requires_grad_()
    SupConLoss(0.1)(embeddings, labels).backward()
    assert torch.isfinite(embeddings.grad).all()
    assert embeddings.grad.abs().sum() > 0


def test_invariant_to_scaling_the_embeddings():
    embeddings, labels = seeded(10, 6, 3, 6)
    loss = SupConLoss(0.05)
    scales = torch.rand(10, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) * 10 + 0.1
    assert loss(embeddings * 7.5, labels).item() == pytest.approx(loss(embeddings, labels).item(), abs=1e-9)
    assert loss(embeddings * scales, labels).item() == pytest.approx(loss(embeddings, labels).item(), abs=1e-9)


def test_sharp_temperature_stays_finite():
    # T = 0.01: logits span +-100; the row shift over the other rows keeps the exponentials in range
    generator = torch.Generator().manual_seed(8)
    embeddings = torch.randn(16, 32, generator=generator)
    labels = torch.arange(8).repeat(2)
    embeddings[8:] = -embeddings[:8]  # positives point away from their anchors
    assert torch.isfinite(SupConLoss(0.01)(embeddings, labels))


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, float("nan"), float("inf"), True, "0.1", None])
def test_bad_temperature(bad):
    with pytest.raises(InputError):
        SupConLoss(bad)


def test_bad_base_temperature_and_shapes():
    with pytest.raises(InputError):
        SupConLoss(0.1, base_temperature=0)
    loss = SupConLoss()
    with pytest.raises(ValueError):
        loss(torch.randn(4), torch.arange(4))
    with pytest.raises(ValueError):
        loss(torch.randn(4, 3), torch.arange(3))
    with pytest.raises(ValueError):
        loss(torch.randn(4, 3), torch.zeros(4))
