"""ResGCN (aclnet.models.backbones.resgcn), GaitGraph's embedding network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from aclnet.errors import InputError
from aclnet.losses import SupConLoss
from aclnet.models import build_backbone
from aclnet.models.backbones import BACKBONES, ResGCN
from aclnet.models.backbones.resgcn import ResidualUnit, distance_partition, gait_branches
from aclnet.skeleton import get_layout, make_layout


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions run several times faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def batch(n: int, m: int, t: int, v: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, m, t, v, c, generator=torch.Generator().manual_seed(seed))


# --- parameter count of the published ResGCN-N39-R8 ---------------------------------------------


def gaitgraph_parameter_count(channels: int, inputs: int, joints: int, embedding: int = 128) -> int:
    """Parameters of GaitGraph's `ResGCNv1.create("resgcn-n39-r8", num_input=inputs, num_channel=channels,
    num_class=embedding, A=Graph("coco").A)`, counted layer by layer from its nets.py / modules.py /
    blocks.py. Every conv has a bias; BN has 2 per channel; each module holds an edge importance of the
    shape of A, (max_hop + 1 = 4, V, V), of which the graph convolution uses the first 3."""

    def conv(c_in: int, c_out: int, kernel: int = 1) -> int:
        return c_in * c_out * kernel + c_out

    def bn(c: int) -> int:
        return 2 * c

    def gconv(c_in: int, c_out: int) -> int:  # SpatialGraphConv, max_graph_distance 2: 3 partitions
        return conv(c_in, 3 * c_out)

    edge = 4 * joints * joints

    def basic_initial(c_in: int, c_out: int) -> int:  # Spatial/Temporal_Basic_Block, no residuals
        return gconv(c_in, c_out) + bn(c_out) + conv(c_out, c_out, 9) + bn(c_out) + edge

    def bottleneck(c_in: int, c_out: int, stride: int, r: int = 8) -> int:
        inner = c_out // r
        spatial = (0 if c_in == c_out else conv(c_in, c_out) + bn(c_out)) + conv(c_in, inner) + bn(inner) \
            + gconv(inner, inner) + bn(inner) + conv(inner, c_out) + bn(c_out)
        temporal = (0 if stride == 1 else conv(c_out, c_out) + bn(c_out)) + conv(c_out, inner) + bn(inner) \
            + conv(inner, inner, 9) + bn(inner) + conv(inner, c_out) + bn(c_out)
        return spatial + temporal + edge

    # n39 = structure [1, 2, 2, 2]: branch = Basic(C, 64, initial), Bottleneck(64, 64), Bottleneck(64, 32)
    branch = bn(channels) + basic_initial(channels, 64) + bottleneck(64, 64, 1) + bottleneck(64, 32, 1)
    main = bottleneck(32 * inputs, 128, 2) + bottleneck(128, 128, 1) + bottleneck(128, 256, 2) \
        + bottleneck(256, 256, 1)
    return inputs * branch + main + conv(256, embedding)


def test_published_parameter_count_against_gaitgraph():
    # GaitGraph's counts (its train.py prints them as "# parameters"), from the layer list above:
    assert gaitgraph_parameter_count(3, 1, 17) == 319_530  # default, one (x, y, score) branch
    assert gaitgraph_parameter_count(6, 3, 17) == 426_416  # --use_multi_branch
    # ours holds the 3 edge-importance graphs the convolution uses, not the release's unused fourth:
    # 17 * 17 fewer per module, 7 modules (one branch: 3, main stream: 4) or 13 (three branches)
    torch.manual_seed(0)
    assert count(ResGCN("coco", 3)) == 319_530 - 7 * 17 * 17 == 317_507
    assert count(ResGCN("coco", 3, branches=True)) == 426_416 - 13 * 17 * 17 == 422_659
    assert count(ResGCN("coco", 3, graph="spatial")) == 317_507  # 3 graphs either way
    assert count(ResGCN("coco", 3, preset="small")) == 32_458
    assert count(ResGCN("coco", 3, preset="small", branches=True)) == 44_020


def test_n39_r8_structure():
    torch.manual_seed(0)
    model = ResGCN("coco", 3)
    branch = model.input_branches[0].layers
    widths = [(layer.scn.residual, layer.tcn.core.out_channels) for layer in branch]
    assert [w for _, w in widths] == [64, 8, 4]  # Basic 64; Bottleneck 64 / 8; Bottleneck 32 / 8
    assert [layer.tcn.bn_up.num_features if layer.tcn.up is not None else None for layer in branch] == [None, 64, 32]
    assert [layer.tcn.bn_up.num_features for layer in model.main_stream] == [128, 128, 256, 256]
    assert [layer.tcn.core.stride[0] for layer in model.main_stream] == [2, 1, 2, 1]
    assert model.fc.in_features == 256 and model.fc.out_features == 128 == model.out_channels
    # "39": the convolutions on one input's path (Basic 2, Bottleneck 6 each) plus the linear layer
    units = [u for part in (branch, model.main_stream) for u in part.modules() if isinstance(u, ResidualUnit)]
    assert sum(1 if u.up is None else 3 for u in units) + 1 == 39
    assert all(u.core.kernel_size == (9, 1) for u in units if isinstance(u.core, nn.Conv2d))
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert model.has_topology is False and not hasattr(model, "data_bn")


# --- shapes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["coco", "nturgb+d"])
@pytest.mark.parametrize("branches", [False, True])
@pytest.mark.parametrize("persons", [1, 2])
def test_output_shapes(layout, branches, persons):
    torch.manual_seed(0)
    v = get_layout(layout).num_joints
    model = ResGCN(layout, 3, branches=branches, preset="small").eval()
    out = model(batch(2, persons, 12, v))
    assert out.features.shape == (2, persons, 64, 3, v)  # two stride-2 stages: 12 -> 6 -> 3
    assert out.pooled.shape == (2, 128)
    assert out.topology is None
    assert torch.allclose(out.pooled.norm(dim=1), torch.ones(2), atol=1e-5)


def test_published_shapes_and_unnormalised_option():
    torch.manual_seed(0)
    out = ResGCN("coco", 3).eval()(batch(2, 1, 8, 17))
    assert out.features.shape == (2, 1, 256, 2, 17) and out.pooled.shape == (2, 128)
    raw = ResGCN("coco", 3, preset="small", normalize=False, embedding_dim=16).eval()(batch(2, 1, 8, 17))
    assert raw.pooled.shape == (2, 16)
    assert not torch.allclose(raw.pooled.norm(dim=1), torch.ones(2))


def test_persons_are_averaged():
    torch.manual_seed(0)
    model = ResGCN("coco", 3, preset="small", normalize=False).eval()
    with torch.no_grad():
        for m in model.modules():  # non-trivial BN statistics and affine values
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
        one, other = batch(2, 1, 8, 17, seed=1), batch(2, 1, 8, 17, seed=2)
        both = model(torch.cat([one, other], dim=1))
        mean = (model(one).pooled + model(other).pooled) / 2  # fc is affine: mean before = mean after
    assert torch.allclose(both.pooled, mean, atol=1e-5)


def test_build_backbone_and_registry():
    assert BACKBONES["resgcn"] is ResGCN
    torch.manual_seed(0)
    model = build_backbone("resgcn", layout="coco", in_channels=3, preset="small")
    assert isinstance(model, ResGCN) and model.out_channels == 128
    assert model(batch(1, 1, 8, 17)).pooled.shape == (1, 128)


def test_bad_input_and_options():
    torch.manual_seed(0)
    model = ResGCN("coco", 3, preset="small")
    with pytest.raises(InputError):
        model(batch(1, 1, 8, 25))  # NTU joints into a COCO model
    with pytest.raises(InputError):
        model(batch(1, 1, 8, 17, c=2))
    with pytest.raises(InputError):
        model(torch.randn(1, 8, 17, 3))
    for options in ({"preset": "tiny"}, {"branches": True, "in_channels": 2}, {"block": "dense"},
                    {"structure": (1, 2, 2)}, {"structure": (0, 2, 2, 2)}, {"kernel_size": 4},
                    {"graph": "full"}, {"center_joint": 17}, {"embedding_dim": 0},
                    {"reduction": 16, "branch_channels": (64, 8)}):
        with pytest.raises(InputError):
            ResGCN("coco", **{"in_channels": 3, **options})


# --- graphs and the multi-branch input ---------------------------------------------------------


CHAIN = make_layout("chain", ["a", "b", "c"], [(0, 1), (1, 2)], center=0)  # parents (0, 0, 1)


def test_distance_partition_on_a_chain():
    graphs = distance_partition(CHAIN, 2)
    # every joint has all 3 joints within 3 hops: each column is divided by 3
    expected = np.array([
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[0, 1, 0], [1, 0, 1], [0, 1, 0]],
        [[0, 0, 1], [0, 0, 0], [1, 0, 0]],
    ], dtype=np.float32) / 3
    np.testing.assert_allclose(graphs, expected, rtol=0, atol=1e-7)
    coco = distance_partition(get_layout("coco"), 2)
    assert coco.shape == (3, 17, 17)
    np.testing.assert_allclose(coco.sum(axis=(0, 1)) > 0, True)


# (x, y, score) per frame t and joint v: x[t][v]
FRAMES = [
    [[0.0, 0.0, 1.0], [3.0, 4.0, 0.5], [3.0, 0.0, 0.25]],
    [[1.0, 0.0, 1.0], [4.0, 4.0, 0.5], [4.0, 2.0, 0.5]],
    [[2.0, 1.0, 0.5], [5.0, 6.0, 1.0], [3.0, 3.0, 0.75]],
]


def test_branch_channels_hand_computed():
    x = torch.tensor(FRAMES, dtype=torch.float64).permute(2, 0, 1).unsqueeze(0)  # (1, C=3, T=3, V=3)
    parents = torch.tensor(CHAIN.parents)
    out = gait_branches(x, CHAIN.center, parents)
    assert out.shape == (1, 3, 6, 3, 3)
    joints, velocities, bones = (out[0, i].permute(1, 2, 0) for i in range(3))  # each (T, V, 6)

    # joints: (x, y, s), then minus the center joint 0 of the same frame
    assert joints[1, 2].tolist() == [4.0, 2.0, 0.5, 3.0, 2.0, -0.5]
    assert joints[2, 1].tolist() == [5.0, 6.0, 1.0, 3.0, 5.0, 0.5]
    assert joints[0, 0].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]

    # velocities: frame 1 - frame 0, frame 2 - frame 0; the last two frames are 0
    assert velocities[0].tolist() == [
        [1.0, 0.0, 0.0, 2.0, 1.0, -0.5],
        [1.0, 0.0, 0.0, 2.0, 2.0, 0.5],
        [1.0, 2.0, 0.25, 0.0, 3.0, 0.5],
    ]
    assert velocities[1:].abs().sum().item() == 0.0

    # bones: minus the parent (joint 1 -> 0, joint 2 -> 1, the root 0 -> itself), arccos of dy over
    # (|(dx, dy)| + 1e-4), then two zero channels
    assert bones[..., :3].tolist() == [
        [[0.0, 0.0, 0.0], [3.0, 4.0, -0.5], [0.0, -4.0, -0.25]],
        [[0.0, 0.0, 0.0], [3.0, 4.0, -0.5], [0.0, -2.0, 0.0]],
        [[0.0, 0.0, 0.0], [3.0, 5.0, 0.5], [-2.0, -3.0, -0.25]],
    ]
    angles = [
        [math.pi / 2, math.acos(4 / 5.0001), math.acos(-4 / 4.0001)],
        [math.pi / 2, math.acos(4 / 5.0001), math.acos(-2 / 2.0001)],
        [math.pi / 2, math.acos(5 / (math.sqrt(34) + 1e-4)), math.acos(-3 / (math.sqrt(13) + 1e-4))],
    ]
    np.testing.assert_allclose(bones[..., 3].numpy(), angles, rtol=0, atol=1e-12)
    assert bones[..., 4:].abs().sum().item() == 0.0


def test_short_sequences_have_zero_velocities():
    x = torch.randn(2, 3, 2, 3)
    assert gait_branches(x, 0, torch.tensor(CHAIN.parents))[:, 1].abs().sum().item() == 0.0


def test_model_feeds_the_derived_streams_to_its_branches():
    torch.manual_seed(0)
    model = ResGCN(CHAIN, 3, branches=True, preset="small")
    assert model.center_joint == 0 and ResGCN(CHAIN, 3, branches=True, center_joint=1).center_joint == 1
    seen = []
    for branch in model.input_branches:
        branch.bn.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.tensor(FRAMES).unsqueeze(0).unsqueeze(0)  # (N=1, M=1, T, V, C)
    model(x.repeat(2, 1, 1, 1, 1))
    expected = gait_branches(x[:, 0].permute(0, 3, 1, 2), 0, torch.tensor(CHAIN.parents))
    for i in range(3):
        assert torch.equal(seen[i][:1], expected[:, i])


# --- training ----------------------------------------------------------------------------------


def test_supcon_training_lowers_the_loss():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = build_backbone("resgcn", layout="coco", in_channels=3, preset="small")
    criterion = SupConLoss(0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    identities = torch.randn(4, 1, 8, 17, 3, generator=generator)
    labels = torch.arange(4).repeat(2)  # two noisy views of each sequence
    losses = []
    for _ in range(20):
        views = [identities + 0.1 * torch.randn(identities.shape, generator=generator) for _ in range(2)]
        loss = criterion(model(torch.cat(views)).pooled, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
