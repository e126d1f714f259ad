"""Tests of aclnet.losses against plain per-sample, per-class references written from the method's rules
(docs/method.md), hand-computed cases, state round trips, the scaling rule and two-process (gloo) statistics."""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from aclnet.analysis.families import describe_families
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss, scale_for_small_dataset
from aclnet.losses.families import build_families, confusion_increment, neighbours

DOUBLE = torch.float64


# ----------------------------------------------------------------------------------------------------------
# References, written from docs/method.md with Python loops, lists and sets (also used by benchmarks/losses.py).
# ----------------------------------------------------------------------------------------------------------

def normalised(x: torch.Tensor) -> torch.Tensor:
    """x / (||x|| + 1e-12)."""
    return x / (x.norm() + 1e-12)


def reference_families(H: list[list[int]], K: int, threshold: float, mode: str
                       ) -> tuple[list[set[int]], list[list[float]]]:
    """Steps 2-4: neighbours by a stable sort, overlaps by set intersection, families and affinities."""
    C = len(H)
    neighbours = []
    for i in range(C):
        order = sorted(range(C), key=lambda j: -H[i][j])  # sorted() is stable: ties in class-index order
        if mode == "paper":
            order = [j for j in order if j != i and H[i][j] > 0]
        neighbours.append(set(order[:K]))
    families: list[set[int]] = [set() for _ in range(C)]
    affinity = [[0.0] * C for _ in range(C)]
    for i in range(C):
        for j in range(C):
            overlap = len(neighbours[i] & neighbours[j])
            in_n = 1.0 if j in neighbours[i] else 0.0
            if mode == "released":
                affinity[i][j] = 0.5 * in_n + overlap / K
                if j in neighbours[i] or (j != i and overlap > threshold):
                    families[i].add(j)
            else:
                affinity[i][j] = (0.5 * in_n + overlap) / K
                if j != i and affinity[i][j] > threshold / K:
                    families[i].add(j)
    return families, affinity


class ReferenceInter:
    """Inter-ACL per sample and per class, in the method's order (docs/method.md, section 2.9): statistics,
    prototypes, families, loss."""

    def __init__(self, num_classes: int, prototypes: torch.Tensor, *, k: int, threshold: float, start_epoch: int,
                 mode: str, momentum: float = 0.9, temperatures: tuple[float, float, float] = (0.1, 0.5, 1.0),
                 fat: bool = True, fixed_tau: float = 0.1) -> None:
        self.C, self.K, self.threshold, self.start, self.mode = num_classes, k, threshold, start_epoch, mode
        self.momentum, self.temperatures, self.fat, self.fixed_tau = momentum, temperatures, fat, fixed_tau
        self.H = [[0] * num_classes for _ in range(num_classes)]
        self.m = [prototypes[c].clone() for c in range(num_classes)]
        self.seen = [False] * num_classes
        self.families: list[set[int]] = [set() for _ in range(num_classes)]
        self.affinity = [[0.0] * num_classes for _ in range(num_classes)]
        self.epoch, self.rebuilt = 1, 0
        self.seen_taus: set[float] = set()
        self.self_members = 0
        self.empty_fallbacks = 0

    def tau(self, size: int) -> float:
        """Step 6."""
        if not self.fat:
            return self.fixed_tau
        return self.temperatures[0] if size <= self.K else self.temperatures[1] if size <= 2 * self.K \
            else self.temperatures[2]

    def step(self, e: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        y, rows, B, C = labels.tolist(), logits.tolist(), len(labels), self.C
        p = [max(range(C), key=lambda c: rows[a][c]) for a in range(B)]  # first maximum, as argmax
        if self.epoch >= self.start:
            for a in range(B):
                if p[a] != y[a]:
                    self.H[y[a]][p[a]] += 1
            if self.mode == "released":
                for a in range(B):
                    for b in range(B):
                        if p[b] == y[a] and y[b] != y[a]:
                            self.H[y[a]][y[b]] += 1
        step_m = list(self.m)
        for c in range(C):
            members = [e[a] for a in range(B) if y[a] == c and (self.mode == "paper" or p[a] == c)]
            if not members:
                continue
            mean = torch.stack(members).mean(dim=0)
            if self.mode == "paper":
                mean = mean.detach()
                step_m[c] = self.momentum * self.m[c] + (1 - self.momentum) * mean if self.seen[c] else mean
                self.seen[c] = True
            else:
                step_m[c] = self.momentum * self.m[c] + (1 - self.momentum) * mean
        self.m = [m.detach() for m in step_m]
        if self.epoch > self.start and self.rebuilt != self.epoch:
            self.families, self.affinity = reference_families(self.H, self.K, self.threshold, self.mode)
            self.rebuilt = self.epoch
        if self.epoch <= self.start:
            return e.sum() * 0.0
        prototypes = [normalised(m) for m in step_m]
        losses = []
        for a in range(B):
            i, family, en = y[a], self.families[y[a]], normalised(e[a])
            if not family:
                self.empty_fallbacks += 1
                z = torch.stack([en @ prototypes[c] / 0.125 for c in range(C)])
                losses.append(-torch.log_softmax(z, dim=0)[i])
                continue
            tau = self.tau(len(family))
            self.seen_taus.add(tau)
            self.self_members += i in family
            z = torch.stack([en @ prototypes[i] / tau] + [en @ prototypes[j] / tau for j in sorted(family)])
            losses.append(-torch.log_softmax(z, dim=0)[0])
        return torch.stack(losses).mean()


class ReferenceIntra:
    """Intra-ACL per anchor and per positive, with the memory as a Python list (oldest first)."""

    def __init__(self, memory_size: int, tau: float = 0.1, epsilon: float = 0.1) -> None:
        self.S, self.tau, self.omega = memory_size, tau, math.exp(-epsilon)
        self.memory: list[tuple[torch.Tensor, int]] = []
        self.anchors_without_positive = 0

    def step(self, e: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y, B = labels.tolist(), len(labels)
        batch = [(normalised(e[a]), y[a]) for a in range(B)]
        self.memory = (self.memory + [(x.detach(), label) for x, label in batch])[-self.S:]
        rows = self.memory[:len(self.memory) - B] + batch  # memory without this batch, then this batch
        if len(self.memory) < self.S:
            return e.sum() * 0.0
        matrix = torch.stack([r for r, _ in rows])
        total = e.sum() * 0.0
        for a in range(B):
            own = len(rows) - B + a
            logits = matrix @ batch[a][0] / self.tau
            logits = logits - logits.max().detach()
            positives = [r for r in range(len(rows)) if r != own and rows[r][1] == y[a]]
            negatives = [r for r in range(len(rows)) if rows[r][1] != y[a]]
            if not positives:
                self.anchors_without_positive += 1
                continue
            negative_sum = torch.exp(logits[negatives]).sum()
            terms = [logits[u] - torch.log(self.omega * torch.exp(logits[u]) + negative_sum + 1e-6)
                     for u in positives]
            total = total + sum(terms) / len(positives)
        return -total / B


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------

def make_batch(gen: torch.Generator, B: int, C: int, D: int, bias: float = 1.5
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random embeddings, labels and logits leaning to the label (about half the samples correct)."""
    labels = torch.randint(0, C, (B,), generator=gen)
    embeddings = torch.randn(B, D, generator=gen, dtype=DOUBLE)
    logits = torch.randn(B, C, generator=gen, dtype=DOUBLE) + bias * F.one_hot(labels, C)
    return embeddings, labels, logits


def both(module_fn, reference_fn, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and gradient of the module and of the reference on separate copies of `embeddings`."""
    e1, e2 = embeddings.clone().requires_grad_(True), embeddings.clone().requires_grad_(True)
    l1, l2 = module_fn(e1), reference_fn(e2)
    l1.backward()
    l2.backward()
    assert torch.allclose(l1, l2, rtol=1e-10, atol=1e-12), (l1, l2)
    assert torch.allclose(e1.grad, e2.grad, rtol=1e-9, atol=1e-12)
    return l1.detach(), e1.grad


def family_sets(families: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(row).flatten().tolist()) for row in families]


def neighbour_sets(H: torch.Tensor, k: int, mode: str) -> list[set[int]]:
    order, keep = neighbours(H, k, mode)
    return [set(row[kept].tolist()) for row, kept in zip(order, keep)]


def run_epochs(steps_per_epoch: list[int], step) -> list[torch.Tensor]:
    """Call step(epoch) for each step of each epoch (1-based) and collect what it returns."""
    return [step(epoch) for epoch, steps in enumerate(steps_per_epoch, start=1) for _ in range(steps)]


# ----------------------------------------------------------------------------------------------------------
# Inter-ACL
# ----------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------
# Intra-ACL
# ----------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------------------------------------

def test_state_dict_round_trip_mid_training_continues_identically() -> None:
    C, D, B = 6, 4, 8
    torch.manual_seed(4)
    kwargs = dict(k=2, overlap_threshold=1, start_epoch=1)
    inter, intra = InterClassAffinityLoss(C, D, **kwargs), IntraClassMarginLoss(20, D)
    gen = torch.Generator().manual_seed(5)
    batches = [make_batch(gen, B, C, D) for _ in range(9)]
    schedule = [1, 1, 1, 2, 2, 2, 3, 3, 3]

    def run(inter_loss, intra_loss, steps):
        out = []
        for i in steps:
            inter_loss.set_epoch(schedule[i])
            emb, labels, logits = (x.float() if x.is_floating_point() else x for x in batches[i])
            out.append(torch.stack([inter_loss(emb, labels, logits), intra_loss(emb, labels)]))
        return out

    run(inter, intra, range(4))  # stops after the first step of epoch 2, i.e. after a rebuild
    buffer = io.BytesIO()
    torch.save({"inter": inter.state_dict(), "intra": intra.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    torch.manual_seed(99)
    inter2, intra2 = InterClassAffinityLoss(C, D, **kwargs), IntraClassMarginLoss(20, D)
    inter2.load_state_dict(saved["inter"])
    intra2.load_state_dict(saved["intra"])
    assert inter2.get_extra_state() == {"epoch": 2, "rebuilt_epoch": 2}
    expected, resumed = run(inter, intra, range(4, 9)), run(inter2, intra2, range(4, 9))
    assert all(torch.equal(a, b) for a, b in zip(expected, resumed))
    assert all(x[0] > 0 and x[1] > 0 for x in expected)
    for name, value in inter.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, inter2.state_dict()[name]), name


def test_state_dict_holds_the_state() -> None:
    keys = set(InterClassAffinityLoss(3, 2, family_mode="paper").state_dict())
    assert keys == {"confusion", "prototypes", "families", "affinity", "prototype_seen", "_extra_state"}
    assert set(IntraClassMarginLoss(4, 2).state_dict()) == {"memory", "memory_labels", "write_pointer", "filled",
                                                            "_extra_state"}
    with pytest.raises(InputError, match="extra state"):
        InterClassAffinityLoss(3, 2).set_extra_state({"epoch": 1})
    with pytest.raises(InputError, match="extra state"):
        IntraClassMarginLoss(4, 2).set_extra_state({"enqueued": 5})


def test_host_side_activity_follows_the_schedule_and_the_memory() -> None:
    inter = InterClassAffinityLoss(3, 2, start_epoch=2)
    assert [inter.set_epoch(e) or inter.active for e in (1, 2, 3)] == [False, False, True]
    intra = IntraClassMarginLoss(6, 2)
    emb, labels = torch.randn(4, 2), torch.tensor([0, 1, 0, 1])
    seen = []
    for _ in range(3):
        loss = intra(emb, labels)
        seen.append((intra.active, bool(loss != 0), int(intra.filled)))
    assert seen == [(False, False, 4), (True, True, 6), (True, True, 6)]  # full at the second batch
    copy = IntraClassMarginLoss(6, 2)
    copy.load_state_dict(intra.state_dict())
    assert copy.active


# ----------------------------------------------------------------------------------------------------------
# Inspection and validation
# ----------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------
# Small-dataset scaling
# ----------------------------------------------------------------------------------------------------------

def test_scaling_rule_values() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scale_for_small_dataset(60, 40091, 16, 150) == {
            "k": 10, "overlap_threshold": 4, "memory_size": 512, "start_epoch": 30}
        assert scale_for_small_dataset(120, 63026, 16, 150, default_memory_size=1024)["memory_size"] == 1024
        # 9 classes: K = round(1.5) = 2, threshold round(0.8) = 1; a quarter of 100 is 25 -> 3 batches of 8.
        assert scale_for_small_dataset(9, 100, 8, 10) == {
            "k": 2, "overlap_threshold": 1, "memory_size": 24, "start_epoch": 2}
        assert scale_for_small_dataset(15, 1000, 48, 2) == {
            "k": 3, "overlap_threshold": 1, "memory_size": 240, "start_epoch": 1}


def test_scaling_rule_warnings() -> None:
    with pytest.warns(UserWarning, match="never switches on"):
        assert scale_for_small_dataset(10, 1000, 16, 1)["start_epoch"] == 1
    with pytest.warns(UserWarning, match="fewer than four batches"):
        assert scale_for_small_dataset(10, 40, 16, 50)["memory_size"] == 16
    with pytest.raises(InputError, match="batch_size"):
        scale_for_small_dataset(10, 40, 0, 50)


# ----------------------------------------------------------------------------------------------------------
# Two processes (gloo)
# ----------------------------------------------------------------------------------------------------------

WORLD, C_DIST, D_DIST, B_DIST = 2, 5, 4, 6
DIST_START, DIST_EPOCHS = 2, [2, 2, 1]  # no statistics in epoch 1; the last step is the first of epoch 3,
# so its families come from the final H


def _dist_batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per step, one batch per rank concatenated (rank order), the same on every process."""
    gen = torch.Generator().manual_seed(6)
    return [make_batch(gen, WORLD * B_DIST, C_DIST, D_DIST) for _ in range(sum(DIST_EPOCHS))]


def _dist_modules(mode: str) -> tuple[InterClassAffinityLoss, IntraClassMarginLoss]:
    torch.manual_seed(7)
    inter = InterClassAffinityLoss(C_DIST, D_DIST, k=2, overlap_threshold=1, start_epoch=DIST_START,
                                   family_mode=mode).double()
    return inter, IntraClassMarginLoss(2 * WORLD * B_DIST, D_DIST, gather_distributed=True).double()


def _dist_step(inter: InterClassAffinityLoss, intra: IntraClassMarginLoss, epoch: int,
               batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Both losses on one batch: (inter loss, its gradient, intra loss)."""
    inter.set_epoch(epoch)
    embeddings, labels, logits = batch
    e = embeddings.clone().requires_grad_(True)
    loss = inter(e, labels, logits)
    (grad,) = torch.autograd.grad(loss, e)
    return loss.detach(), grad, intra(embeddings, labels).detach()


def _dist_worker(rank: int, store: str, out_dir: str, mode: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    inter, intra = _dist_modules(mode)
    batches = iter(_dist_batches())
    own = slice(rank * B_DIST, (rank + 1) * B_DIST)
    results = run_epochs(DIST_EPOCHS, lambda epoch: _dist_step(inter, intra, epoch,
                                                                tuple(x[own] for x in next(batches))))
    torch.save({**inter.state_dict(), **intra.state_dict(),
                **{name: torch.stack(values) for name, values in zip(("inter", "grad", "intra"), zip(*results))}},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.parametrize("mode", ["released", "paper"])
def test_two_processes_share_statistics_families_prototypes_and_memory(tmp_path: Path, mode: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mp.spawn(_dist_worker, args=(str(tmp_path / "store"), str(tmp_path), mode), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for key in ("confusion", "families", "affinity", "prototypes", "memory", "memory_labels"):
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    # One process that saw both batches one after the other holds the same statistics H ...
    sequential, sequential_intra = _dist_modules(mode)
    # ... and one that saw them as one batch the same prototypes and memory (and, in paper mode, where H
    # adds up over batches, the same families and the mean of the two processes' losses and gradients).
    joint, joint_intra = _dist_modules(mode)
    joint_results = []
    batches = iter(_dist_batches())

    def step(epoch: int) -> None:
        emb, labels, logits = next(batches)
        for r in range(WORLD):
            own = slice(r * B_DIST, (r + 1) * B_DIST)
            _dist_step(sequential, sequential_intra, epoch, (emb[own], labels[own], logits[own]))
        joint_results.append(_dist_step(joint, joint_intra, epoch, (emb, labels, logits)))

    run_epochs(DIST_EPOCHS, step)
    assert torch.equal(ranks[0]["confusion"], sequential.confusion) and sequential.confusion.sum() > 0
    families, affinity = build_families(sequential.confusion, 2, 1, mode, dtype=DOUBLE)
    assert torch.equal(ranks[0]["families"], families) and torch.equal(ranks[0]["affinity"], affinity)
    assert torch.allclose(ranks[0]["prototypes"], joint.prototypes, rtol=1e-12, atol=1e-12)
    assert torch.equal(ranks[0]["memory"], joint_intra.memory)
    joint_inter, joint_grad, joint_intra_loss = (torch.stack(v) for v in zip(*joint_results))
    # each process's loss is the mean over its own anchors; with equal batches their mean is the joint one
    assert torch.allclose((ranks[0]["intra"] + ranks[1]["intra"]) / 2, joint_intra_loss, rtol=1e-10)
    assert (joint_intra_loss != 0).sum() == 4  # the memory (24) is full from the second step (of 12) on
    if mode == "paper":
        assert torch.equal(ranks[0]["confusion"], joint.confusion)
        assert torch.allclose((ranks[0]["inter"] + ranks[1]["inter"]) / 2, joint_inter, rtol=1e-10)
        assert torch.allclose(torch.cat([ranks[0]["grad"], ranks[1]["grad"]], dim=1) / 2, joint_grad, rtol=1e-9,
                              atol=1e-12)
        assert joint_inter[-1] > 0


# ----------------------------------------------------------------------------------------------------------
# CUDA: no host synchronisation inside a step
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["released", "paper"])
def test_no_host_synchronisation_on_cuda(mode: str) -> None:
    device = torch.device("cuda")
    C, D, B = 20, 16, 32
    inter = InterClassAffinityLoss(C, D, k=3, start_epoch=1, family_mode=mode).to(device)
    intra = IntraClassMarginLoss(64, D).to(device)
    gen = torch.Generator().manual_seed(8)
    batches = [tuple(x.to(device) for x in make_batch(gen, B, C, D)) for _ in range(6)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i, (emb, labels, logits) in enumerate(batches):
            inter.set_epoch(1 + i // 2)
            e = emb.float().requires_grad_(True)
            (inter(e, labels, logits.float()) + intra(e, labels)).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert inter.families.any().item() and intra.filled.item() == 64
