"""Run by tests/engine/test_training.py under `torchrun --nproc_per_node=2`: train, then save each rank's loss state."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from aclnet.config import load_config
from aclnet.engine.distributed import init_distributed
from aclnet.engine.run import build_trainer, seed_everything
from aclnet.engine.run_folder import RunFolder
from aclnet.tasks.registry import make_task

out = Path(sys.argv[1])
config = load_config("synthetic-j", [
    "optim.epochs=3", "train.max_steps_per_epoch=3", "optim.batch_size=8", "data.clip_len=16",
    "data.synthetic.samples_per_class=12", "data.num_workers=0",
])
seed_everything(config)
info = init_distributed("cpu")
run = RunFolder(out / "run")
if info.is_main:
    run.prepare(resume=False, force=False)
torch.distributed.barrier()
trainer, _ = build_trainer(make_task(config), run, info, torch.device("cpu"))
trainer.fit()
loss = trainer.model.aux["inter"].loss
torch.save({"confusion": loss.confusion, "families": loss.families, "prototypes": loss.prototypes},
           out / f"rank{info.rank}.pt")
torch.distributed.destroy_process_group()
