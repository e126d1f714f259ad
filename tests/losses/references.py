"""Plain references of the losses, written from docs/method.md with Python loops, lists and sets, and the
helpers the loss tests share (also imported by benchmarks/losses.py: no second copy)."""


from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aclnet.losses.families import neighbours

DOUBLE = torch.float64


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
