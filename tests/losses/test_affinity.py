"""`aclnet.losses.affinity` and `families`: Inter-ACL against the reference across the switch-on and by
hand; inspection and validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from references import (
    DOUBLE,
    ReferenceInter,
    both,
    family_sets,
    make_batch,
    neighbour_sets,
    reference_families,
    run_epochs,
)

from aclnet.analysis.families import describe_families
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss
from aclnet.losses.families import build_families, confusion_increment

INTER_CASES = {
    # name: (constructor kwargs, logit bias to the label, what the run must exercise: number of distinct
    # temperatures, a class in its own family, the empty-family fallback)
    "released": (dict(family_mode="released", k=3, overlap_threshold=1), 2.5, {"taus": 3, "self": True}),
    "released-fixed-tau": (dict(family_mode="released", k=2, overlap_threshold=0, fat=False, fixed_tau=0.2), 2.5,
                           {"taus": 1, "self": True}),
    "released-dense": (dict(family_mode="released", k=3, overlap_threshold=1), 1.5, {"taus": 3}),
    "paper": (dict(family_mode="paper", k=3, overlap_threshold=1), 1.5, {"taus": 2, "empty": True}),
    "paper-always-empty": (dict(family_mode="paper", k=3, overlap_threshold=4), 1.5, {"taus": 0, "empty": True}),
}


@pytest.mark.parametrize("case", sorted(INTER_CASES))
def test_inter_matches_reference_across_switch_on(case: str) -> None:
    kwargs, bias, coverage = INTER_CASES[case]
    C, D, B = 8, 6, 16
    torch.manual_seed(1)
    module = InterClassAffinityLoss(C, D, start_epoch=2, **kwargs).double()
    ref = ReferenceInter(C, module.prototypes, k=kwargs["k"], threshold=kwargs["overlap_threshold"],
                         start_epoch=2, mode=kwargs["family_mode"], fat=kwargs.get("fat", True),
                         fixed_tau=kwargs.get("fixed_tau", 0.1))
    gen = torch.Generator().manual_seed(2)

    def step(epoch: int) -> torch.Tensor:
        module.set_epoch(epoch)
        ref.epoch = epoch
        emb, labels, logits = make_batch(gen, B, C, D, bias)
        loss, _ = both(lambda e: module(e, labels, logits), lambda e: ref.step(e, labels, logits), emb)
        assert module.confusion.tolist() == ref.H
        assert torch.allclose(module.prototypes, torch.stack(ref.m), rtol=1e-12, atol=1e-12)
        assert family_sets(module.families) == ref.families
        assert torch.allclose(module.affinity, torch.tensor(ref.affinity, dtype=DOUBLE), atol=1e-12)
        return loss

    losses = run_epochs([2, 2, 3, 3, 3], step)
    assert all(loss == 0 for loss in losses[:4]) and all(loss > 0 for loss in losses[4:])
    assert len(ref.seen_taus) == coverage["taus"]
    assert (ref.self_members > 0) == coverage.get("self", False)
    assert (ref.empty_fallbacks > 0) == coverage.get("empty", False)
    assert sum(map(sum, ref.H)) > 0


def test_inter_zero_before_and_during_start_epoch_but_differentiable() -> None:
    module = InterClassAffinityLoss(4, 3, k=1, start_epoch=2)
    labels, logits = torch.tensor([0, 1, 2, 3, 0]), torch.eye(4)[[1, 2, 3, 0, 0]] * 3
    values = []
    for epoch in (1, 2, 3):
        module.set_epoch(epoch)
        e = torch.randn(5, 3, requires_grad=True)
        loss = module(e, labels, logits)
        loss.backward()
        values.append((loss.item(), e.grad.abs().sum().item(), module.confusion.sum().item()))
        assert loss.requires_grad
    # epoch 1: no statistics yet; epoch 2 (= start): statistics, loss still 0; epoch 3: the loss is on.
    assert values[0] == (0.0, 0.0, 0) and values[1][:2] == (0.0, 0.0) and values[1][2] > 0
    assert values[2][0] > 0 and values[2][1] > 0


def test_confusion_increment_by_hand() -> None:
    labels, preds = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 0, 0])
    # rule 1: H[0,1], H[1,0], H[2,0] += 1; rule 2: a in {0,1} (class 0) with b=2 (1 -> 0) and b=3 (2 -> 0):
    # H[0,1] += 2, H[0,2] += 2; a=2 (class 1) with b=1 (0 -> 1): H[1,0] += 1.
    assert confusion_increment(labels, preds, 3, "released").tolist() == [[0, 3, 2], [2, 0, 0], [1, 0, 0]]
    assert confusion_increment(labels, preds, 3, "paper").tolist() == [[0, 1, 0], [1, 0, 0], [1, 0, 0]]


def test_families_by_hand_three_classes() -> None:
    H = torch.tensor([[0, 2, 1], [3, 0, 3], [0, 0, 0]])
    # released, K=1: N(0)={1}; N(1)={0} (tie 0/2 -> index order); N(2)={0} (all zero). M(1,2)=1.
    families, affinity = build_families(H, 1, 0, "released", dtype=DOUBLE)
    assert family_sets(families) == [{1}, {0, 2}, {0, 1}]
    assert affinity.tolist() == [[1.0, 0.5, 0.0], [0.5, 1.0, 1.0], [0.5, 1.0, 1.0]]
    module = InterClassAffinityLoss(3, 2, k=1, overlap_threshold=0)
    module.families.copy_(families)
    assert module.class_temperatures().tolist() == pytest.approx([0.1, 0.5, 0.5])
    # paper, K=1: N(0)={1}, N(1)={0}, N(2)={} (zero counts left out); W(2) empty -> tau 0.125
    families, affinity = build_families(H, 1, 0, "paper", dtype=DOUBLE)
    assert family_sets(families) == [{1}, {0}, set()]
    assert affinity.tolist() == [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]]
    module = InterClassAffinityLoss(3, 2, k=1, overlap_threshold=0, family_mode="paper")
    module.families.copy_(families)
    assert module.class_temperatures().tolist() == pytest.approx([0.1, 0.1, 0.125])


def test_stable_sort_tie_order() -> None:
    H = torch.tensor([[0, 3, 3, 3, 5], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [2, 2, 0, 2, 0], [0, 0, 0, 0, 0]])
    released = neighbour_sets(H, 2, "released")
    assert released == [{4, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}]
    paper = neighbour_sets(H, 2, "paper")
    assert paper == [{4, 1}, {0, 2}, set(), {0, 1}, set()]
    wide = torch.zeros(40, 40, dtype=torch.long)
    wide[:, 5:] = 1  # 35 tied counts per row: the first three of them, in class-index order
    assert neighbour_sets(wide, 3, "released") == [{5, 6, 7}] * 40
    # paper: i itself is left out, so rows 5, 6 and 7 take the next tied class instead
    assert neighbour_sets(wide, 3, "paper") == [{5, 6, 7}] * 5 + [{6, 7, 8}, {5, 7, 8}, {5, 6, 8}] + [{5, 6, 7}] * 32


def test_overlap_threshold_is_strict() -> None:
    C = 12
    H = torch.zeros(C, C, dtype=torch.long)
    for row, members in ((0, [1, 2, 3, 4, 5]), (6, [1, 2, 3, 4, 7]), (8, [1, 2, 3, 4, 5]), (5, [1, 2, 3, 4, 9])):
        H[row, members] = torch.tensor([10, 9, 8, 7, 6])
    released, _ = build_families(H, 5, 4, "released")
    # M(0,6) = 4 is not > 4; M(0,8) = 5 is; every zero row has N = {0..4}, overlap 4 with N(0).
    assert family_sets(released)[0] == {1, 2, 3, 4, 5, 8}
    paper, _ = build_families(H, 5, 4, "paper")
    # 0.5 [j in N(0)] + M: j=5 -> 4.5 > 4, j=6 -> 4, j=8 -> 5; zero rows have no neighbours here.
    assert family_sets(paper)[0] == {5, 8}
    for mode, families in (("released", released), ("paper", paper)):
        assert family_sets(families) == reference_families(H.tolist(), 5, 4, mode)[0]


def _one_step(module: InterClassAffinityLoss, e: list[list[float]], labels: list[int], preds: list[int]
              ) -> torch.Tensor:
    logits = F.one_hot(torch.tensor(preds), module.num_classes).to(DOUBLE)
    return module(torch.tensor(e, dtype=DOUBLE), torch.tensor(labels), logits)


def test_inter_loss_by_hand_released_self_member_twice() -> None:
    module = InterClassAffinityLoss(3, 2, k=2, overlap_threshold=0, start_epoch=0).double()
    module.prototypes.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    # H becomes [[0,1,0],0,0]: N(i) = {0,1} for all i, M = 2 > 0, so W(0) = {0,1,2} (size 3 -> tau 0.5);
    # the sample is misclassified, so no prototype moves; z = [2, 0, -2] and m_0 appears twice.
    loss = _one_step(module, [[1.0, 0.0]], [0], [1])
    assert family_sets(module.families)[0] == {0, 1, 2}
    assert loss.item() == pytest.approx(-2 + math.log(2 * math.exp(2) + 1 + math.exp(-2)), rel=1e-10)


def test_inter_loss_by_hand_paper_with_empty_family() -> None:
    module = InterClassAffinityLoss(3, 2, k=2, overlap_threshold=0, start_epoch=0, family_mode="paper").double()
    module.prototypes.copy_(torch.tensor([[5.0, 5.0], [5.0, 5.0], [-1.0, 0.0]]))
    module.confusion[0, 1] = 1
    # Prototypes 0 and 1 start as their first batch means (1,0) and (0,1). W(0) = {1} (w = 0.5/2 > 0, tau 0.1):
    # z = [10, 0]. W(1) is empty: CE over all prototypes at tau 0.125 with z = [0, 8, 0], target 1.
    loss = _one_step(module, [[1.0, 0.0], [0.0, 1.0]], [0, 1], [0, 1])
    expected = (-10 + math.log(math.exp(10) + 1) + -8 + math.log(2 + math.exp(8))) / 2
    assert family_sets(module.families) == [{1}, set(), set()]
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_describe_families_with_class_names() -> None:
    module = InterClassAffinityLoss(3, 2, k=1, overlap_threshold=0, start_epoch=0)
    module.confusion.copy_(torch.tensor([[0, 2, 1], [3, 0, 3], [0, 0, 0]]))
    module.rebuild_families()
    described = describe_families(module, ["clap", "wave", "cheer"])
    assert described[1]["name"] == "wave" and described[1]["temperature"] == pytest.approx(0.5)
    assert [(m["name"], m["affinity"]) for m in described[1]["members"]] == [("cheer", 1.0), ("clap", 0.5)]
    assert [m["class"] for m in describe_families(module)[0]["members"]] == [1]
    with pytest.raises(InputError, match="2 class names given for 3 classes"):
        describe_families(module, ["a", "b"])


@pytest.mark.parametrize("kwargs,message", [
    (dict(family_mode="both"), "family_mode"), (dict(k=0), "k must"), (dict(momentum=1.0), "momentum"),
    (dict(temperatures=(0.1, 0.5)), "temperatures"), (dict(fixed_tau=0), "fixed_tau"),
    (dict(start_epoch=-1), "start_epoch"), (dict(overlap_threshold=-1), "overlap_threshold"),
])
def test_inter_rejects_bad_hyper_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        InterClassAffinityLoss(5, 3, **kwargs)


def test_shape_errors_and_bad_epochs() -> None:
    module = InterClassAffinityLoss(5, 3)
    with pytest.raises(ValueError, match="logits must be"):
        module(torch.randn(2, 3), torch.zeros(2, dtype=torch.long), torch.randn(2, 4))
    with pytest.raises(ValueError, match="embeddings must be"):
        module(torch.randn(2, 4), torch.zeros(2, dtype=torch.long), torch.randn(2, 5))
    with pytest.raises(ValueError, match="integer tensor"):
        IntraClassMarginLoss(4, 3)(torch.randn(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="epoch"):
        module.set_epoch(0)
    with pytest.raises(InputError, match="memory_size"):
        IntraClassMarginLoss(0, 3)
