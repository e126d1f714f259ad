"""`aclnet convert-checkpoint`: a checkpoint in the release's layout gives the same model here."""

from __future__ import annotations

import torch

from aclnet.cli import main
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.config import load_config
from aclnet.engine.run import load_for_inference
from aclnet.models.convert import to_released_layout
from aclnet.tasks.registry import make_task

# The released architecture (no preset) on generated data, tested quickly.
SETTINGS = ["model.preset=null", "data.clip_len=16", "data.test_clips=1", "data.synthetic.samples_per_class=12"]


def test_converted_release_checkpoint_predicts_identically(tmp_path, capsys):
    config = load_config("synthetic-j", SETTINGS)
    task = make_task(config)
    data = task.load_data()
    pipeline = task.pipeline(data.layout, test_mode=True)
    torch.manual_seed(0)
    original = task.build_model(data, pipeline)
    for module in original.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    loss_state = ("aux.inter.loss.", "aux.intra.loss.")
    weights = {k: v for k, v in original.state_dict().items() if not k.startswith(loss_state)}
    torch.save({"state_dict": to_released_layout(weights), "meta": {"epoch": 150}}, tmp_path / "released.pth")

    assert main(["convert-checkpoint", str(tmp_path / "released.pth"), str(tmp_path / "ours.pt")]) == 0
    converted = task.build_model(data, pipeline)
    load_for_inference(converted, load_checkpoint(tmp_path / "ours.pt")["model"], tmp_path / "ours.pt")
    x = torch.randn(3, 1, 16, 25, 3)
    original.eval()
    converted.eval()
    with torch.no_grad():
        torch.testing.assert_close(converted.predict(x).logits, original.predict(x).logits)
    assert main(["test", "synthetic-j", "--set", *SETTINGS, "--checkpoint", str(tmp_path / "ours.pt")]) == 0
    assert "top1" in capsys.readouterr().out

    # Never overwrites; unknown keys are named.
    assert main(["convert-checkpoint", str(tmp_path / "released.pth"), str(tmp_path / "ours.pt")]) == 2
    bad = torch.load(tmp_path / "released.pth", weights_only=True)
    bad["state_dict"]["cls_head.extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    assert main(["convert-checkpoint", str(tmp_path / "bad.pth"), str(tmp_path / "bad.pt")]) == 2
    assert "cls_head.extra.weight" in capsys.readouterr().err
