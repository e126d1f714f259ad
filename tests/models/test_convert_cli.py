"""`aclnet convert-checkpoint`: a checkpoint in the release's layout gives the same model here.

The "released" checkpoint is written by hand from the release's module names (the docstring of
`aclnet.models.convert` and the release's `GCN_Module`), not by the project's exporter, so that the
converter is checked against an expectation of its own.
"""

from __future__ import annotations

import torch

from aclnet.cli import main
from aclnet.config import load_config
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.run import load_for_inference
from aclnet.models.convert import to_released_layout
from aclnet.tasks.registry import make_task

# The released architecture (no preset) on generated data, tested quickly.
SETTINGS = ["model.preset=null", "data.clip_len=16", "data.test_clips=1", "data.synthetic.samples_per_class=12"]

# The release's GCN_Module: output width of each of the 10 blocks; the graph unit has a `down` path where
# its width changes (blocks 0, 4, 7) and the block a `residual` convolution where a later block changes
# width or stride (blocks 4, 7; block 0 has no residual).
WIDTHS = [96, 96, 96, 96, 192, 192, 192, 384, 384, 384]
GRAPH_DOWN = {0, 4, 7}
RESIDUAL_CONV = {4, 7}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
CONV = ("weight", "bias")


def released_by_hand(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The released `state_dict` of a project state, every released name written out; also returns the
    project keys it read (all of them must be read)."""
    out: dict[str, torch.Tensor] = {}
    read: set[str] = set()

    def take(key: str) -> torch.Tensor:
        read.add(key)
        return state[key].clone()

    def same(prefix: str, fields: tuple[str, ...]) -> None:  # a module with the same name in both
        for field in fields:
            out[f"{prefix}.{field}"] = take(f"{prefix}.{field}")

    same("backbone.data_bn", BN)
    for i, width in enumerate(WIDTHS):
        g, t = f"backbone.gcn.{i}.gcn", f"backbone.gcn.{i}.tcn"
        same(g, ("A", "alpha", "beta"))
        same(f"{g}.pre.0", CONV)
        same(f"{g}.pre.1", BN)
        same(f"{g}.post", CONV)
        same(f"{g}.conv1", CONV)
        same(f"{g}.conv2", CONV)
        same(f"{g}.bn", BN)
        if i in GRAPH_DOWN:
            same(f"{g}.down.0", CONV)
            same(f"{g}.down.1", BN)
        if i in RESIDUAL_CONV:
            same(f"backbone.gcn.{i}.residual.conv", CONV)
            same(f"backbone.gcn.{i}.residual.bn", BN)
        same(t, ("add_coeff",))
        same(f"{t}.transform.0", BN)
        same(f"{t}.transform.2", CONV)
        same(f"{t}.bn", BN)
        # Six branches of width // 6 channels, the first taking the remainder. Each of branches 0-4 starts
        # with its own 1x1 conv (`branches.{b}.0`) and BN (`.1`); 0-3 then have a dilated 3x1 conv
        # (`.3.conv`); branch 5 is a single 1x1 conv (`branches.5`). The project stacks the six 1x1
        # convs in `reduce` and the five BNs in `reduce_bn`, in branch order.
        sizes = [width - 5 * (width // 6)] + [width // 6] * 5
        starts = [sum(sizes[:b]) for b in range(6)]
        for field in CONV:
            fused = take(f"{t}.branches.reduce.{field}")
            for b in range(6):
                name = f"{t}.branches.{b}.0.{field}" if b < 5 else f"{t}.branches.5.{field}"
                out[name] = fused[starts[b]:starts[b] + sizes[b]].clone()
        for field in BN:
            fused = take(f"{t}.branches.reduce_bn.{field}")
            for b in range(5):
                out[f"{t}.branches.{b}.1.{field}"] = fused.clone() if field == "num_batches_tracked" \
                    else fused[starts[b]:starts[b] + sizes[b]].clone()
        for b in range(4):
            for field in CONV:
                out[f"{t}.branches.{b}.3.conv.{field}"] = take(f"{t}.branches.temporal.{b}.conv.{field}")
    for released, project in (("cls_head.fc_cls", "cls_head.fc"),
                              ("cls_head.inter_loss.cl_fc", "aux.inter.projection.fc"),
                              ("cls_head.intra_loss.cl_fc", "aux.intra.projection.fc")):
        for field in CONV:
            out[f"{released}.{field}"] = take(f"{project}.{field}")
    return out, read


def test_converted_release_checkpoint_predicts_identically(tmp_path, capsys):
    config = load_config("synthetic-j", SETTINGS)
    task = make_task(config)
    data = task.load_data()
    pipeline = task.pipeline(data.layout, test_mode=True)
    torch.manual_seed(0)
    original = task.build_model(data, pipeline)
    with torch.no_grad():
        for module in original.modules():  # non-trivial batch-norm statistics
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
        for name, parameter in original.named_parameters():  # topologies and joint-mean terms in use
            if name.endswith(("gcn.alpha", "gcn.beta", "tcn.add_coeff")):
                parameter.uniform_(-0.5, 0.5)
    loss_state = ("aux.inter.loss.", "aux.intra.loss.")
    weights = {k: v for k, v in original.state_dict().items() if not k.startswith(loss_state)}
    released, read = released_by_hand(weights)
    assert read == set(weights)  # the hand-written names cover the whole model
    exported = to_released_layout(weights)  # the project's exporter agrees with the hand-written layout
    assert sorted(exported) == sorted(released)
    assert all(torch.equal(exported[key], released[key]) for key in released)
    for b in range(5):  # the release keeps one batch counter per branch BN; the converter takes the largest
        released[f"backbone.gcn.7.tcn.branches.{b}.1.num_batches_tracked"] = torch.tensor(100 + b)
    torch.save({"state_dict": released, "meta": {"epoch": 150}}, tmp_path / "released.pth")

    assert main(["convert-checkpoint", str(tmp_path / "released.pth"), str(tmp_path / "ours.pt")]) == 0
    ours = load_checkpoint(tmp_path / "ours.pt")["model"]
    # Representative keys: project name <- released name(s), written by hand.
    t = "backbone.gcn.7.tcn.branches."
    expected = {
        "backbone.data_bn.running_var": released["backbone.data_bn.running_var"],
        "backbone.gcn.0.gcn.A": released["backbone.gcn.0.gcn.A"],
        "backbone.gcn.4.gcn.down.0.weight": released["backbone.gcn.4.gcn.down.0.weight"],
        "backbone.gcn.4.residual.conv.weight": released["backbone.gcn.4.residual.conv.weight"],
        "backbone.gcn.9.tcn.add_coeff": released["backbone.gcn.9.tcn.add_coeff"],
        "backbone.gcn.2.tcn.branches.temporal.3.conv.weight": released["backbone.gcn.2.tcn.branches.3.3.conv.weight"],
        t + "reduce.weight": torch.cat([released[f"{t}{b}.0.weight"] for b in range(5)] + [released[f"{t}5.weight"]]),
        t + "reduce.bias": torch.cat([released[f"{t}{b}.0.bias"] for b in range(5)] + [released[f"{t}5.bias"]]),
        t + "reduce_bn.running_mean": torch.cat([released[f"{t}{b}.1.running_mean"] for b in range(5)]),
        t + "reduce_bn.num_batches_tracked": torch.tensor(104),
        "cls_head.fc.weight": released["cls_head.fc_cls.weight"],
        "aux.inter.projection.fc.weight": released["cls_head.inter_loss.cl_fc.weight"],
        "aux.intra.projection.fc.bias": released["cls_head.intra_loss.cl_fc.bias"],
    }
    assert ours[t + "reduce.weight"].shape == (384, 384, 1, 1)
    for key, value in expected.items():
        assert torch.equal(ours[key], value), key

    converted = task.build_model(data, pipeline)
    load_for_inference(converted, ours, tmp_path / "ours.pt")
    x = torch.randn(3, 1, 16, 25, 3)
    original.eval()
    converted.eval()
    with torch.no_grad():
        torch.testing.assert_close(converted.predict(x).logits, original.predict(x).logits)
        topology = original.backbone(x).topology
        assert topology.abs().max() > 0
        torch.testing.assert_close(converted.backbone(x).topology, topology)
        for name in ("inter", "intra"):
            torch.testing.assert_close(converted.aux[name].projection(topology),
                                       original.aux[name].projection(topology))
    assert main(["test", "synthetic-j", "--set", *SETTINGS, "--checkpoint", str(tmp_path / "ours.pt")]) == 0
    assert "top1" in capsys.readouterr().out

    # Never overwrites; unknown keys are named.
    assert main(["convert-checkpoint", str(tmp_path / "released.pth"), str(tmp_path / "ours.pt")]) == 2
    bad = torch.load(tmp_path / "released.pth", weights_only=True)
    bad["state_dict"]["cls_head.extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    assert main(["convert-checkpoint", str(tmp_path / "bad.pth"), str(tmp_path / "bad.pt")]) == 2
    assert "cls_head.extra.weight" in capsys.readouterr().err
