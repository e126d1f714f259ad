"""The losses' state: state_dict round trips, the host-side schedule, two processes sharing it (gloo), and no
host synchronisation on CUDA."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from references import DOUBLE, make_batch, run_epochs

from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss
from aclnet.losses.families import build_families


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


@pytest.mark.slow
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
