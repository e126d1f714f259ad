"""Speed of the ACLNet losses against the per-sample, per-class references, measured in one run.

1. One training step of both losses (forward and backward) at batch 64, 120 classes, 256 dimensions and
   a memory of 1024, with the inter loss switched on: `aclnet.losses` against the references of
   tests/losses/references.py (written from docs/method.md with Python loops). Target: at least 20x.
2. Family rebuilding for 400 classes (K = 10, threshold 4, released rule): `build_families` against the
   reference's per-class Python loop. Target: at least 100x.

Both on one CPU thread. Run from the repository root: `python benchmarks/losses.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F

from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss
from aclnet.losses.families import build_families

BATCH, CLASSES, DIM, MEMORY, START_EPOCH = 64, 120, 256, 1024, 30
REBUILD_CLASSES, K, THRESHOLD = 400, 10, 4


def load_reference() -> ModuleType:
    """The reference implementations live with the tests; import them from there (no second copy)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "losses" / "references.py"
    spec = importlib.util.spec_from_file_location("aclnet_loss_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sparse_counts(num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A confusion matrix like one after some epochs: about 10% non-zero off-diagonal counts."""
    counts = torch.randint(0, 30, (num_classes, num_classes), generator=generator)
    counts = counts * (torch.rand(num_classes, num_classes, generator=generator) < 0.1)
    return counts.fill_diagonal_(0)


def batches(count: int, generator: torch.Generator, *, batch: int = BATCH, classes: int = CLASSES,
            dim: int = DIM) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Features (batch, dim), labels and logits (about half the samples classified correctly)."""
    out = []
    for _ in range(count):
        labels = torch.randint(0, classes, (batch,), generator=generator)
        logits = torch.randn(batch, classes, generator=generator) + 2.5 * F.one_hot(labels, classes)
        out.append((torch.randn(batch, dim, generator=generator), labels, logits))
    return out


def timed(step: Callable[[int], torch.Tensor], count: int) -> tuple[float, list[float]]:
    """Seconds per call of step(0..count-1) and the values it returned."""
    values = []
    start = time.perf_counter()
    for i in range(count):
        values.append(float(step(i)))
    return (time.perf_counter() - start) / count, values


def loss_step_benchmark(ref: ModuleType, steps: int, reference_steps: int) -> float:
    """Both losses, forward + backward, vectorised vs reference, from the same filled state."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    inter = InterClassAffinityLoss(CLASSES, DIM, start_epoch=START_EPOCH)
    intra = IntraClassMarginLoss(MEMORY, DIM)
    ref_inter = ref.ReferenceInter(CLASSES, inter.prototypes, k=K, threshold=THRESHOLD,
                                   start_epoch=START_EPOCH, mode="released")
    ref_intra = ref.ReferenceIntra(MEMORY)
    counts = sparse_counts(CLASSES, generator)
    inter.confusion.copy_(counts)
    ref_inter.H = counts.tolist()
    inter.set_epoch(START_EPOCH + 1)
    ref_inter.epoch = START_EPOCH + 1

    def run(inter_fn, intra_fn, batch) -> torch.Tensor:
        embeddings, labels, logits = batch
        e = embeddings.clone().requires_grad_(True)
        loss = inter_fn(e, labels, logits) + intra_fn(e, labels)
        loss.backward()
        return loss.detach()

    warm_up = batches(MEMORY // BATCH, generator)  # fills the memory; the first step rebuilds families
    for batch in warm_up:
        run(inter, intra, batch)
        run(ref_inter.step, ref_intra.step, batch)
    timed_batches = batches(steps, generator)
    fast, fast_values = timed(lambda i: run(inter, intra, timed_batches[i]), steps)
    slow, slow_values = timed(lambda i: run(ref_inter.step, ref_intra.step, timed_batches[i]), reference_steps)
    difference = max(abs(a - b) / abs(b) for a, b in zip(fast_values, slow_values))
    print(f"loss step (B={BATCH}, C={CLASSES}, D={DIM}, memory={MEMORY}, forward+backward of both losses)")
    print(f"  vectorised: {1 / fast:9.1f} steps/s ({fast * 1e3:.2f} ms)")
    print(f"  reference : {1 / slow:9.1f} steps/s ({slow * 1e3:.2f} ms)")
    print(f"  ratio {slow / fast:.1f}x (target >= 20x); largest relative difference of the losses {difference:.1e}")
    return slow / fast


def rebuild_benchmark(ref: ModuleType, repeats: int, reference_repeats: int) -> float:
    """Family rebuilding for 400 classes: build_families vs the reference's per-class loops."""
    counts = sparse_counts(REBUILD_CLASSES, torch.Generator().manual_seed(1))
    as_lists = counts.tolist()
    families, _ = build_families(counts, K, THRESHOLD, "released")
    expected, _ = ref.reference_families(as_lists, K, THRESHOLD, "released")
    assert [set(torch.nonzero(row).flatten().tolist()) for row in families] == expected
    fast, _ = timed(lambda _: build_families(counts, K, THRESHOLD, "released")[0].sum(), repeats)
    slow, _ = timed(lambda _: len(ref.reference_families(as_lists, K, THRESHOLD, "released")[0]), reference_repeats)
    print(f"family rebuild (C={REBUILD_CLASSES}, K={K}, threshold {THRESHOLD})")
    print(f"  vectorised: {1 / fast:9.1f} rebuilds/s ({fast * 1e3:.3f} ms)")
    print(f"  reference : {1 / slow:9.1f} rebuilds/s ({slow * 1e3:.1f} ms)")
    print(f"  ratio {slow / fast:.1f}x (target >= 100x)")
    return slow / fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed vectorised loss steps")
    parser.add_argument("--reference-steps", type=int, default=4, help="timed reference loss steps (<= steps)")
    parser.add_argument("--rebuilds", type=int, default=300, help="timed vectorised rebuilds")
    parser.add_argument("--reference-rebuilds", type=int, default=3, help="timed reference rebuilds")
    args = parser.parse_args()
    if not 1 <= args.reference_steps <= args.steps:
        parser.error("--reference-steps must be between 1 and --steps")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    ref = load_reference()
    loss_step_benchmark(ref, args.steps, args.reference_steps)
    rebuild_benchmark(ref, args.rebuilds, args.reference_rebuilds)


if __name__ == "__main__":
    main()
