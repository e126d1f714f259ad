"""A projection whose loss is switched off does not move: no gradient, so no weight decay and no momentum."""

from __future__ import annotations

from pathlib import Path

import torch

from aclnet.config import load_config
from aclnet.engine.distributed import DistInfo
from aclnet.engine.run import build_trainer, seed_everything
from aclnet.engine.run_folder import RunFolder
from aclnet.engine.trainer import Trainer
from aclnet.tasks.registry import make_task

# Released-like optimiser (SGD, Nesterov 0.9, weight decay 5e-4); no scaling rule, explicit loss constants.
BASE = ["data.clip_len=16", "data.synthetic.samples_per_class=12", "optim.batch_size=8", "optim.epochs=4",
        "loss.small_dataset_scaling=false", "data.num_workers=0", "optim.weight_decay=0.0005"]


def _trainer(tmp_path: Path, name: str, overrides: list[str]) -> Trainer:
    config = load_config("synthetic-j", [*BASE, *overrides])
    seed_everything(config)
    run = RunFolder(tmp_path / name)
    run.prepare(resume=False, force=False)
    trainer, _ = build_trainer(make_task(config), run, DistInfo(), torch.device("cpu"))
    return trainer


def _batches(trainer: Trainer, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    trainer.train_loader.set_epoch(1)
    batches = []
    for data, labels, _ in trainer.train_loader:
        batches.append((data, labels))
        if len(batches) == count:
            break
    return batches


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_inter_projection_is_untouched_until_its_loss_starts(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "inter", ["loss.inter.start_epoch=2", "loss.intra.enabled=false"])
    model = trainer.model
    projection = model.aux["inter"].projection
    start = _weights(projection)
    batches = _batches(trainer, 3)
    for epoch in (1, 2):  # statistics are gathered in epoch 2, but the loss is still 0
        model.set_epoch(epoch)
        for batch in batches:
            trainer.train_step(*batch)
        assert _same(_weights(projection), start), epoch
    assert int(model.aux["inter"].loss.confusion.sum()) > 0
    model.set_epoch(3)
    trainer.train_step(*batches[0])
    assert not _same(_weights(projection), start)


def test_intra_projection_is_untouched_until_the_memory_is_full(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "intra", ["loss.inter.enabled=false", "loss.intra.memory_size=24"])
    model = trainer.model
    projection = model.aux["intra"].projection
    start = _weights(projection)
    model.set_epoch(1)
    moved = []
    for batch in _batches(trainer, 4):  # batches of 8: the memory of 24 is full at the third step
        trainer.train_step(*batch)
        moved.append(not _same(_weights(projection), start))
    assert moved == [False, False, True, True]


def test_cross_entropy_training_is_the_same_with_switched_off_losses(tmp_path: Path) -> None:
    ce = _trainer(tmp_path, "ce", ["loss.inter.enabled=false", "loss.intra.enabled=false"])
    idle = _trainer(tmp_path, "idle", ["loss.inter.start_epoch=3", "loss.intra.memory_size=4096"])
    shared = {k: v for k, v in ce.model.state_dict().items() if k.startswith(("backbone.", "cls_head."))}
    idle.model.load_state_dict(shared, strict=False)
    batches = _batches(ce, 3)
    for trainer in (ce, idle):
        trainer.model.set_epoch(1)
        for batch in batches:
            trainer.train_step(*batch)
    after_ce, after_idle = ce.model.state_dict(), idle.model.state_dict()
    for key in shared:
        assert torch.equal(after_ce[key], after_idle[key]), key
