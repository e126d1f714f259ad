"""Backbones, heads and the released-checkpoint converter (aclnet.models)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.models import (
    CTRGCN,
    STGCN,
    ACLNetGCN,
    CheckpointError,
    ClassificationHead,
    ProjectionHead,
    build_backbone,
    check_projection_source,
    convert_released_checkpoint,
    projection_input,
    to_released_layout,
)
from aclnet.skeleton import BUILTIN_LAYOUTS, LayoutError, get_layout

BACKBONE_CLASSES = [ACLNetGCN, CTRGCN, STGCN]


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random values for what initialisation leaves constant: biases, BN affine and statistics,
    alpha, beta, add_coeff, the graphs (weight matrices keep their random initial values)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            noise = torch.randn(tensor.shape, generator=generator) if tensor.is_floating_point() else None
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith(("alpha", "beta", "add_coeff")):
                tensor.copy_(noise * 0.5)
            elif name.endswith((".A", ".PA")):
                tensor.add_(noise * 0.05)
            elif tensor.dim() == 1:
                tensor.add_(noise * 0.1)
    return module


def batch(n: int, m: int, t: int, v: int, c: int, seed: int = 0) -> Tensor:
    return torch.randn(n, m, t, v, c, generator=torch.Generator().manual_seed(seed))


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- parameter counts -------------------------------------------------------------------------


def test_parameter_counts_match_the_release():
    torch.manual_seed(0)
    backbone = ACLNetGCN("nturgb+d", 3)
    assert count(backbone) == 3_705_696
    assert count(ClassificationHead(backbone.out_channels, 60)) == 23_100
    assert count(ProjectionHead(25 * 25, 256)) == 160_256
    assert backbone.out_channels == 384
    out = backbone.eval()(batch(1, 1, 8, 25, 3))
    assert out.features.shape == (1, 1, 384, 2, 25)  # two stride-2 blocks: 8 -> 4 -> 2 frames
    assert out.topology.shape == (1, 625)


def test_published_widths_and_strides():
    torch.manual_seed(0)
    widths = [(b.gcn.post.in_channels, b.gcn.bn.num_features) for b in ACLNetGCN().gcn]
    assert widths == [(96, 96)] * 4 + [(192, 192)] * 3 + [(384, 384)] * 3
    assert [b.tcn.branches.stride for b in ACLNetGCN().gcn] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert [ACLNetGCN().gcn[0].residual, type(ACLNetGCN().gcn[1].residual).__name__] == [None, "Identity"]
    assert CTRGCN().out_channels == 256 and STGCN().out_channels == 256


# --- shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", BACKBONE_CLASSES)
@pytest.mark.parametrize("layout", sorted(BUILTIN_LAYOUTS))
def test_shapes_for_every_layout_2d_3d_one_and_two_persons(cls, layout):
    torch.manual_seed(0)
    v = get_layout(layout).num_joints
    for channels in (2, 3):
        model = cls(layout, channels, preset="small")
        for persons in (1, 2):
            out = model(batch(2, persons, 6, v, channels))
            assert out.features.shape == (2, persons, 64, 3, v)
            assert out.pooled.shape == (2, 64)
            torch.testing.assert_close(out.pooled, out.features.mean(dim=(1, 3, 4)))
            if cls is STGCN:
                assert out.topology is None
            else:
                assert out.topology.shape == (2, v * v)
            assert torch.isfinite(out.features).all()


def test_modality_concatenation_channels():
    torch.manual_seed(0)
    out = ACLNetGCN("coco_new", 9, preset="small")(batch(3, 1, 5, 20, 9))
    assert out.features.shape == (3, 1, 64, 3, 20) and out.topology.shape == (3, 400)


def test_explicit_options_override_the_preset():
    torch.manual_seed(0)
    model = ACLNetGCN(preset="small", base_channels=48, num_stages=3, inflate_stages=(), down_stages=(2,))
    assert len(model.gcn) == 3 and model.out_channels == 48
    assert model(batch(2, 1, 8, 25, 3)).features.shape == (2, 1, 48, 4, 25)


# --- plain references of the units ------------------------------------------------------------


def reference_affinity_unit(unit, x: Tensor) -> tuple[Tensor, Tensor]:
    """The GCN unit of docs/method.md section 7, one graph at a time, conv1/conv2 per frame then averaged."""
    n, _, t, v = x.shape
    mid = unit.mid_channels
    pre = unit.pre(x)
    x1 = F.conv2d(x, unit.conv1.weight, unit.conv1.bias).mean(2)
    x2 = F.conv2d(x, unit.conv2.weight, unit.conv2.bias).mean(2)
    outs, topologies = [], []
    for k in range(unit.num_graphs):
        a, b = x1[:, k * mid:(k + 1) * mid], x2[:, k * mid:(k + 1) * mid]  # (n, mid, v)
        ctr = torch.tanh(a[:, :, :, None] - b[:, :, None, :]) * unit.alpha[0]
        att = torch.softmax(a.transpose(1, 2) @ b, dim=1)[:, None] * unit.beta[0]  # softmax over v
        outs.append(pre[:, k * mid:(k + 1) * mid] @ (unit.A[k] + ctr + att))
        topologies.append(ctr + att)
    y = unit.bn(unit.post(torch.cat(outs, 1))) + unit.down(x)
    return torch.relu(y), torch.stack(topologies, 1)


def reference_ctr_unit(unit, x: Tensor) -> tuple[Tensor, Tensor]:
    """CTR-GCN's unit with one CTRGC per graph (the original's loop over subsets)."""
    s, c = unit.num_graphs, unit.out_channels
    rel = unit.conv1.out_channels // s
    y, topologies = 0, []
    for k in range(s):
        r, o = slice(k * rel, (k + 1) * rel), slice(k * c, (k + 1) * c)
        x1 = F.conv2d(x, unit.conv1.weight[r], unit.conv1.bias[r]).mean(2)
        x2 = F.conv2d(x, unit.conv2.weight[r], unit.conv2.bias[r]).mean(2)
        x3 = F.conv2d(x, unit.conv3.weight[o], unit.conv3.bias[o])
        q = F.conv2d(torch.tanh(x1[..., :, None] - x2[..., None, :]), unit.conv4.weight[o], unit.conv4.bias[o])
        q = q * unit.alpha
        y = y + x3 @ (q + unit.A[k])
        topologies.append(q)
    return torch.relu(unit.bn(y) + unit.down(x)), torch.stack(topologies, 1)


def reference_partition_unit(unit, x: Tensor) -> Tensor:
    """ST-GCN's unit: sum over graphs of conv_k(x) @ (A_k * PA_k)."""
    c = unit.bn.num_features
    weight, bias = unit.conv.weight, unit.conv.bias
    y = sum(F.conv2d(x, weight[k * c:(k + 1) * c], bias[k * c:(k + 1) * c]) @ (unit.A[k] * unit.PA[k])
            for k in range(unit.num_graphs))
    return torch.relu(unit.bn(y))


def test_affinity_unit_matches_reference():
    torch.manual_seed(0)
    model = randomize(ACLNetGCN(preset="small")).double().eval()
    x = torch.randn(3, 32, 7, 25, dtype=torch.float64)
    unit = model.gcn[1].gcn
    y, topology = unit(x)
    y_ref, topology_ref = reference_affinity_unit(unit, x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(topology, topology_ref)


def test_ctr_unit_matches_reference():
    torch.manual_seed(0)
    model = randomize(CTRGCN(preset="small")).double().eval()
    for index, channels in ((0, 3), (3, 32)):
        x = torch.randn(2, channels, 5, 25, dtype=torch.float64)
        y, topology = model.gcn[index].gcn(x)
        y_ref, topology_ref = reference_ctr_unit(model.gcn[index].gcn, x)
        torch.testing.assert_close(y, y_ref)
        torch.testing.assert_close(topology, topology_ref)


def test_partition_unit_matches_reference():
    torch.manual_seed(0)
    model = randomize(STGCN("coco", preset="small")).double().eval()
    x = torch.randn(2, 32, 5, 17, dtype=torch.float64)
    y, topology = model.gcn[2].gcn(x)
    assert topology is None
    torch.testing.assert_close(y, reference_partition_unit(model.gcn[2].gcn, x))


def test_topology_output_is_last_block_topology_averaged_over_persons_and_channels():
    torch.manual_seed(0)
    for cls in (ACLNetGCN, CTRGCN):
        model = randomize(cls(preset="small")).double().eval()
        captured: dict[str, torch.Tensor] = {}
        model.gcn[-1].gcn.register_forward_hook(lambda mod, args, out, seen=captured: seen.update(topology=out[1]))
        out = model(batch(2, 2, 6, 25, 3).double())
        per_sample = captured["topology"].reshape(2, 2, -1, 625)
        expected = per_sample.mean(dim=2).mean(dim=1)  # channels, then persons
        torch.testing.assert_close(out.topology, expected)


@pytest.mark.parametrize("cls", [ACLNetGCN, CTRGCN])
def test_topology_is_zero_at_initialisation(cls):
    torch.manual_seed(0)
    model = cls(preset="small")
    out = model(batch(2, 2, 6, 25, 3))
    assert torch.equal(out.topology, torch.zeros_like(out.topology))
    with torch.no_grad():
        model.gcn[-1].gcn.alpha.fill_(1.0)
    assert model(batch(2, 2, 6, 25, 3)).topology.abs().max() > 0


def test_alpha_beta_use_element_zero_only():
    torch.manual_seed(0)
    model = randomize(ACLNetGCN(preset="small")).eval()
    x = batch(2, 1, 6, 25, 3)
    before = model(x).features
    with torch.no_grad():
        for block in model.gcn:
            block.gcn.alpha[1:] += 5.0
            block.gcn.beta[1:] -= 5.0
    torch.testing.assert_close(model(x).features, before)


# --- topology from the averaged input ---------------------------------------------------------


def test_topology_from_mean_input_equals_per_frame_order_values_and_gradients():
    torch.manual_seed(0)
    fast = randomize(ACLNetGCN(preset="small")).double()
    slow = copy.deepcopy(fast)
    for block in slow.gcn:
        block.gcn.topology_from_mean_input = False
    x = batch(3, 2, 9, 25, 3).double()
    outputs = []
    for model in (fast, slow):  # training mode: batch statistics, as in a training step
        out = model(x)
        (out.pooled.square().sum() + out.topology.sin().sum()).backward()
        outputs.append(out)
    for a, b in zip(outputs[0], outputs[1]):
        torch.testing.assert_close(a, b)
    for (name, p), q in zip(fast.named_parameters(), slow.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    assert fast.gcn[-1].gcn.conv1.weight.grad.abs().max() > 0


# --- released checkpoint conversion -----------------------------------------------------------


class _Projected(nn.Module):
    """An auxiliary entry's projection, under the name `SkeletonModel` gives it."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.projection = ProjectionHead(in_features)


class ProjectModel(nn.Module):
    """The module names of the project's model: backbone, cls_head, aux.inter.projection, aux.intra.projection."""

    def __init__(self, layout: str = "nturgb+d", in_channels: int = 3, num_classes: int = 60) -> None:
        super().__init__()
        self.backbone = ACLNetGCN(layout, in_channels)
        v = self.backbone.num_joints
        self.cls_head = ClassificationHead(self.backbone.out_channels, num_classes)
        self.aux = nn.ModuleDict({"inter": _Projected(v * v), "intra": _Projected(v * v)})

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.backbone(x)
        return (self.cls_head(out.pooled), self.aux["inter"].projection(out.topology),
                self.aux["intra"].projection(out.topology))


def bn_eval(x: Tensor, state: dict[str, Tensor], prefix: str) -> Tensor:
    return F.batch_norm(x, state[prefix + "running_mean"], state[prefix + "running_var"],
                        state[prefix + "weight"], state[prefix + "bias"], training=False)


def conv(x: Tensor, state: dict[str, Tensor], prefix: str, **kwargs) -> Tensor:
    return F.conv2d(x, state[prefix + "weight"], state[prefix + "bias"], **kwargs)


def released_unit(x: Tensor, s: dict[str, Tensor], p: str) -> tuple[Tensor, Tensor]:
    """The release's unit_gcn from its keys (eval mode), in the released order (conv, then mean);
    returns the output and the learned topology ctr + att (N, K, C', V, V)."""
    n, c_in, t, v = x.shape
    k = s[p + "A"].shape[0]
    pre = torch.relu(bn_eval(conv(x, s, p + "pre.0."), s, p + "pre.1.")).reshape(n, k, -1, t, v)
    x1 = conv(x, s, p + "conv1.").reshape(n, k, -1, t, v).mean(3, keepdim=True)
    x2 = conv(x, s, p + "conv2.").reshape(n, k, -1, t, v).mean(3, keepdim=True)
    ctr = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2)) * s[p + "alpha"][0]
    att = torch.softmax(torch.einsum("nkctv,nkctw->nktvw", x1, x2)[:, :, None], dim=-2) * s[p + "beta"][0]
    topology = (ctr + att).squeeze(3)
    y = torch.einsum("nkctv,nkcvw->nkctw", pre, topology + s[p + "A"][None, :, None]).reshape(n, -1, t, v)
    res = bn_eval(conv(x, s, p + "down.0."), s, p + "down.1.") if p + "down.0.weight" in s else x
    return torch.relu(bn_eval(conv(y, s, p + "post."), s, p + "bn.") + res), topology


def released_temporal(x: Tensor, s: dict[str, Tensor], p: str, stride: int) -> Tensor:
    """The release's six-branch temporal unit (dgmstcn) from its keys (eval mode)."""
    v = x.shape[-1]
    x = torch.cat([x, x.mean(-1, keepdim=True)], -1)
    outs = []
    for b in range(5):
        h = torch.relu(bn_eval(conv(x, s, f"{p}branches.{b}.0."), s, f"{p}branches.{b}.1."))
        if b < 4:
            outs.append(conv(h, s, f"{p}branches.{b}.3.conv.", stride=(stride, 1), padding=(b + 1, 0),
                             dilation=(b + 1, 1)))
        else:
            outs.append(F.max_pool2d(h, (3, 1), (stride, 1), (1, 0)))
    outs.append(conv(x, s, f"{p}branches.5.", stride=(stride, 1)))
    out = torch.cat(outs, 1)
    out = out[..., :v] + out[..., v:] * s[p + "add_coeff"][:v]
    out = conv(torch.relu(bn_eval(out, s, p + "transform.0.")), s, p + "transform.2.")
    return bn_eval(out, s, p + "bn.")


def released_forward(s: dict[str, Tensor], x: Tensor, strides: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The release's GCN_Module and heads (classifier, both cl_fc projections of the topology),
    functionally, from a released-layout state dict (eval mode)."""
    n, m, t, v, c = x.shape
    h = x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t)
    h = bn_eval(h, s, "backbone.data_bn.").reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
    for i, stride in enumerate(strides):
        p = f"backbone.gcn.{i}."
        res = 0
        if i > 0:
            res = bn_eval(conv(h, s, p + "residual.conv.", stride=(stride, 1)), s, p + "residual.bn.") \
                if p + "residual.conv.weight" in s else h
        y, topology = released_unit(h, s, p + "gcn.")
        h = torch.relu(released_temporal(y, s, p + "tcn.", stride) + res)
    pooled = h.reshape(n, m, *h.shape[1:]).mean(dim=(3, 4)).mean(1)
    summary = topology.reshape(n, m, -1, v * v).mean(dim=2).mean(dim=1)
    return (F.linear(pooled, s["cls_head.fc_cls.weight"], s["cls_head.fc_cls.bias"]),
            F.linear(summary, s["cls_head.inter_loss.cl_fc.weight"], s["cls_head.inter_loss.cl_fc.bias"]),
            F.linear(summary, s["cls_head.intra_loss.cl_fc.weight"], s["cls_head.intra_loss.cl_fc.bias"]))


def test_released_layout_names():
    torch.manual_seed(0)
    released = to_released_layout(ProjectModel().state_dict())
    for key, shape in [
        ("backbone.data_bn.weight", (75,)),
        ("backbone.gcn.0.gcn.A", (8, 25, 25)),
        ("backbone.gcn.0.gcn.alpha", (8,)),
        ("backbone.gcn.0.gcn.down.0.weight", (96, 3, 1, 1)),
        ("backbone.gcn.0.tcn.branches.0.0.weight", (16, 96, 1, 1)),
        ("backbone.gcn.0.tcn.branches.1.3.conv.weight", (16, 16, 3, 1)),
        ("backbone.gcn.0.tcn.branches.4.1.running_var", (16,)),
        ("backbone.gcn.0.tcn.branches.5.weight", (16, 96, 1, 1)),
        ("backbone.gcn.4.residual.conv.weight", (192, 96, 1, 1)),
        ("backbone.gcn.9.tcn.add_coeff", (25,)),
        ("cls_head.fc_cls.weight", (60, 384)),
        ("cls_head.inter_loss.cl_fc.weight", (256, 625)),
        ("cls_head.intra_loss.cl_fc.bias", (256,)),
    ]:
        assert tuple(released[key].shape) == shape, key
    assert not any(".reduce" in key or ".temporal." in key for key in released)


def test_round_trip_gives_identical_outputs_and_matches_the_released_forward():
    torch.manual_seed(0)
    source = randomize(ProjectModel(), seed=1).eval()
    released = {k: v.clone() for k, v in to_released_layout(source.state_dict()).items()}
    checkpoint = {"meta": {"epoch": 150}, "state_dict": released}
    target = ProjectModel()
    target.load_state_dict(convert_released_checkpoint(checkpoint, layout="nturgb+d", num_classes=60), strict=True)
    target.eval()
    x = batch(2, 2, 8, 25, 3, seed=2)
    with torch.no_grad():
        for a, b in zip(source(x), target(x)):
            assert torch.equal(a, b)
        expected = released_forward(released, x, [1, 1, 1, 1, 2, 1, 1, 2, 1, 1])
        for got, want in zip(target(x), expected):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_loss_state_is_left_out_with_a_warning():
    torch.manual_seed(0)
    released = to_released_layout(ProjectModel().state_dict())
    released["cls_head.inter_loss.confusion"] = torch.zeros(60, 60)
    released["cls_head.intra_loss.queue"] = torch.zeros(512, 256)
    with pytest.warns(UserWarning, match="cls_head.inter_loss.confusion"):
        converted = convert_released_checkpoint({"state_dict": released})
    assert not any("loss" in key for key in converted)


def test_add_coeff_allocated_for_25_joints_is_cut_to_the_layout():
    torch.manual_seed(0)
    source = randomize(ProjectModel("coco_new", num_classes=5))
    released = to_released_layout(source.state_dict())
    for key in [k for k in released if k.endswith("add_coeff")]:
        released[key] = torch.cat([released[key], torch.ones(5)])
    converted = convert_released_checkpoint(released, layout="coco_new")
    for key, value in source.state_dict().items():
        assert torch.equal(converted[key], value), key


def test_unknown_missing_and_misshapen_keys_are_listed():
    torch.manual_seed(0)
    good = to_released_layout(ProjectModel().state_dict())

    bad = dict(good, **{"backbone.extra.weight": torch.zeros(1), "neck.fc.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unknown keys \['backbone.extra.weight', 'neck.fc.weight'\]"):
        convert_released_checkpoint(bad)

    bad = {k: v for k, v in good.items()
           if k not in ("backbone.gcn.3.gcn.conv1.weight", "backbone.gcn.2.tcn.branches.4.1.running_var")}
    with pytest.raises(CheckpointError, match="missing keys") as info:
        convert_released_checkpoint(bad)
    assert "backbone.gcn.3.gcn.conv1.weight" in str(info.value)
    assert "backbone.gcn.2.tcn.branches.4.1.running_var" in str(info.value)

    bad = dict(good, **{"cls_head.intra_loss.cl_fc.weight": torch.zeros(256, 600)})
    shape_message = r"cls_head.intra_loss.cl_fc.weight: \(256, 600\) instead of \(256, 625\)"
    with pytest.raises(CheckpointError, match=shape_message):
        convert_released_checkpoint(bad)

    bad = dict(good, **{"backbone.gcn.1.tcn.branches.2.0.weight": torch.zeros(16, 95, 1, 1)})
    with pytest.raises(CheckpointError, match="branches.2.0.weight"):
        convert_released_checkpoint(bad)

    with pytest.raises(CheckpointError, match="120"):
        convert_released_checkpoint(good, num_classes=120)
    with pytest.raises(CheckpointError, match="not tensors"):
        convert_released_checkpoint(dict(good, **{"backbone.note": "x"}))
    with pytest.raises(CheckpointError, match="V\\*C values for V = 17"):
        convert_released_checkpoint(good, layout="coco")
    with pytest.raises(CheckpointError, match="outside backbone"):
        to_released_layout({"inter_loss.prototypes": torch.zeros(2)})


def test_checkpoint_error_is_an_input_error():
    assert issubclass(CheckpointError, InputError)


# --- heads and factory ------------------------------------------------------------------------


def test_heads():
    torch.manual_seed(0)
    head = ClassificationHead(64, 10, dropout=0.5)
    assert torch.equal(head.fc.bias, torch.zeros(10)) and head.fc.weight.std() < 0.02
    assert head.eval()(torch.randn(4, 64)).shape == (4, 10)
    assert ProjectionHead(625)(torch.randn(3, 625)).shape == (3, 256)
    with pytest.raises(InputError):
        ClassificationHead(64, 0)
    with pytest.raises(InputError):
        ProjectionHead(0)


def test_projection_sources():
    torch.manual_seed(0)
    aclnet, stgcn = ACLNetGCN(preset="small"), STGCN(preset="small")
    assert check_projection_source(aclnet, "topology") == 625
    assert check_projection_source(aclnet, "pooled") == 64
    with pytest.raises(InputError, match="learns no topology"):
        check_projection_source(stgcn, "topology")
    with pytest.raises(InputError, match="valid inputs"):
        check_projection_source(aclnet, "features")
    out = aclnet(batch(2, 1, 4, 25, 3))
    assert projection_input(out, "topology") is out.topology and projection_input(out, "pooled") is out.pooled
    with pytest.raises(InputError):
        projection_input(stgcn(batch(2, 1, 4, 25, 3)), "topology")


def test_build_backbone_and_bad_options():
    torch.manual_seed(0)
    assert isinstance(build_backbone("ctrgcn", layout="coco", preset="small"), CTRGCN)
    with pytest.raises(InputError, match=r"valid backbones are \['aclnet_gcn', 'ctrgcn', 'resgcn', 'stgcn'\]"):
        build_backbone("resnet")
    with pytest.raises(InputError, match=r"valid presets are \['small'\]"):
        ACLNetGCN(preset="tiny")
    with pytest.raises(LayoutError):
        STGCN("no-such-layout")
    with pytest.raises(InputError, match="down_stages"):
        CTRGCN(num_stages=4, inflate_stages=(2,), down_stages=(5,))
    with pytest.raises(InputError, match="at least 8 channels"):
        ACLNetGCN(base_channels=4)
    model = ACLNetGCN(preset="small")
    with pytest.raises(InputError, match="input has 17 joints.*has 25 joints"):
        model(batch(1, 1, 4, 17, 3))
    with pytest.raises(InputError, match=r"\(N, M, T, V, C\)"):
        model(torch.zeros(1, 4, 25, 3))


def test_bf16_autocast_on_cpu():
    torch.manual_seed(0)
    for cls in BACKBONE_CLASSES:
        model = randomize(cls(preset="small"))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(batch(2, 2, 6, 25, 3))
            loss = out.pooled.float().square().mean()
            if out.topology is not None:
                loss = loss + out.topology.float().square().mean()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", BACKBONE_CLASSES)
def test_cuda_training_step_has_no_host_sync(cls):
    torch.manual_seed(0)
    model = randomize(cls(preset="small")).cuda()
    head = ClassificationHead(model.out_channels, 10).cuda()
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(4, 2, 16, 25, 3, device="cuda")
    labels = torch.randint(0, 10, (4,), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
            loss = F.cross_entropy(head(out.pooled).float(), labels)
            if out.topology is not None:
                loss = loss + out.topology.float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up (library initialisation) outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    assert all(torch.isfinite(p).all() for p in params)


def test_every_block_starts_from_the_same_static_graphs():
    torch.manual_seed(3)
    model = ACLNetGCN("nturgb+d", preset="small")
    first = model.gcn[0].gcn.A
    assert first.shape == (8, 25, 25) and abs(float(first.mean()) - 0.04) < 0.005
    for block in model.gcn[1:]:
        assert torch.equal(block.gcn.A, first) and block.gcn.A is not first  # one draw, separate parameters
    torch.manual_seed(4)
    assert not torch.equal(ACLNetGCN("nturgb+d", preset="small").gcn[0].gcn.A, first)
