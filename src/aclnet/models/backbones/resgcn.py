"""ResGCN (Song et al., ACM MM 2020, "ResGCN v1") as GaitGraph (Teepe et al., ICIP 2021) uses it:
the gait-recognition baseline's embedding network.

Every module is a spatial unit (graph convolution over hop-distance graphs with a learnable edge
importance) followed by a temporal unit (9x1 convolution). "Basic" modules are convolution + BN; a
"Bottleneck" module wraps each convolution in 1x1 convolutions that reduce the width by `reduction`
and restore it, and adds a residual around each unit. One input branch per input stream maps its
channels to 32; the branches are concatenated and a main stream (two stride-2 stages) maps them to
256 channels; the temporal and joint mean goes through a linear layer to the embedding, which is
L2-normalised.

GaitGraph's released model is ResGCN-N39-R8 (`resgcn-n39-r8`, the released weights
`gaitgraph_resgcn-n39-r8_coco_seq_60.pth`): structure (1, 2, 2, 2) of Bottleneck modules, reduction 8,
embedding 128, which is `preset=None` here:

    input branch   Basic C -> 64 (no residual), Bottleneck 64 -> 64, Bottleneck 64 -> 32
    main stream    Bottleneck 32*I -> 128 (stride 2), 128 -> 128, 128 -> 256 (stride 2), 256 -> 256
    output         mean over frames and joints, Linear 256 -> 128, L2 normalisation

("N39": one branch's depth in layers, 2 for the Basic module + 6 per Bottleneck module + the linear layer.)
GaitGraph's `--dropout 0.4` and `--temporal_kernel_size` only reach its ST-GCN model; its ResGCN has no
dropout and the module default temporal kernel 9.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.models.backbones.blocks import BackboneOutput, SkeletonBackbone, Stage, residual_path
from aclnet.skeleton import Layout
from aclnet.skeleton.adjacency import spatial

PUBLISHED: dict[str, Any] = {
    # ResGCN-N39-R8: ResGCN's "n39" structure, Bottleneck modules, reduction "r8".
    "structure": (1, 2, 2, 2),
    "block": "bottleneck",
    "reduction": 8,
    "branch_channels": (64, 32),
    "stream_channels": (128, 256),
}

PRESETS: dict[str, dict[str, Any]] = {
    # Trains on a laptop CPU: branch Basic C -> 16, Bottleneck 16 -> 16; main 16*I -> 32 (stride 2),
    # 32 -> 64 (stride 2); reduction 4.
    "small": {"structure": (1, 1, 1, 1), "reduction": 4, "branch_channels": (16, 16), "stream_channels": (32, 64)},
}

BLOCKS = ("basic", "bottleneck")
GRAPHS = ("distance", "spatial")
NORM_HOPS = 3  # the release's Graph(max_hop=3): columns are normalised over all joints within 3 hops
BONE_EPS = 1e-4  # added to the bone length before the angle, as released


def hop_distances(layout: Layout) -> np.ndarray:
    """(V, V) number of edges on the shortest path between two joints (inf when not connected)."""
    num = layout.num_joints
    step = np.eye(num, dtype=bool)
    for a, b in layout.edges:
        step[a, b] = step[b, a] = True
    distance = np.full((num, num), np.inf)
    reached = np.eye(num, dtype=bool)
    hops = 0
    while True:
        distance[reached & np.isinf(distance)] = hops
        grown = (reached.astype(np.int64) @ step.astype(np.int64)) > 0
        if (grown == reached).all():
            return distance
        reached, hops = grown, hops + 1


def distance_partition(layout: Layout, max_distance: int = 2) -> np.ndarray:
    """ResGCN's graphs (max_distance + 1, V, V): graph k links the joints exactly k hops apart.

    As released, all graphs share one normalisation: column w is divided by the number of joints
    within max(3, max_distance) hops of w (the release's Graph builds hops 0..3 and the graph
    convolution uses the first max_distance + 1 of them).
    """
    distance = hop_distances(layout)
    within = (distance <= max(NORM_HOPS, max_distance)).sum(axis=0).astype(np.float32)
    return np.stack([(distance == k).astype(np.float32) / within[None, :] for k in range(max_distance + 1)])


def gait_branches(x: Tensor, center: int, parents: Tensor) -> Tensor:
    """GaitGraph's three input streams from (x, y, score) joints, as its `MultiInput` builds them.

    x: (B, C, T, V) with channels (x, y, score); returns (B, 3, 2C, T, V), for C = 3:

    - joints: (x, y, s) of joint v, then (x, y, s) of v minus those of the `center` joint;
    - velocities: frame t + 1 minus frame t, then frame t + 2 minus frame t (all of x, y, s); the
      last two frames are 0;
    - bones: (x, y, s) of v minus those of its parent `parents[v]` (0 for the root), then
      arccos(dy / (sqrt(dx^2 + dy^2) + 1e-4)), then two channels of 0.

    The bones' last three channels are as released: its loop over the coordinates writes every angle
    into the same channel, so only the last coordinate's angle (y) is kept and the rest stay 0. In
    general the angle is taken of the channel before the score over the length of all channels
    before it.
    """
    c, t = x.shape[1], x.shape[2]
    joints = torch.cat([x, x - x[..., center : center + 1]], dim=1)
    steps = [x[:, :, 1 : t - 1] - x[:, :, : max(t - 2, 0)], x[:, :, 2:] - x[:, :, : max(t - 2, 0)]]
    velocities = torch.cat([F.pad(d, (0, 0, 0, t - d.shape[2])) for d in steps], dim=1)
    bones = x - x.index_select(3, parents)
    length = bones[:, : c - 1].square().sum(dim=1, keepdim=True).sqrt() + BONE_EPS
    angle = torch.arccos(bones[:, c - 2 : c - 1] / length)
    bones = torch.cat([bones, angle, bones.new_zeros(bones.shape[0], c - 1, t, bones.shape[3])], dim=1)
    return torch.stack([joints, velocities, bones], dim=1)


class GraphConv(nn.Module):
    """sum_k (1x1 conv_k x) (A_k * E_k): one convolution to K * C_out channels, then the K graphs
    weighted by the learnable edge importance E (initially 1)."""

    def __init__(self, in_channels: int, out_channels: int, graphs: np.ndarray) -> None:
        super().__init__()
        self.num_graphs = graphs.shape[0]
        self.register_buffer("A", torch.from_numpy(graphs.copy()))
        self.edge = nn.Parameter(torch.ones_like(self.A))
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_graphs, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, T, V) -> (N, C_out, T, V)."""
        n, _, t, v = x.shape
        y = self.conv(x).reshape(n, self.num_graphs, -1, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, self.A * self.edge)


def temporal_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Conv2d:
    """A kernel_size x 1 convolution over frames, 'same' padding, temporal stride."""
    return nn.Conv2d(in_channels, out_channels, (kernel_size, 1), (stride, 1), ((kernel_size - 1) // 2, 0))


class ResidualUnit(nn.Module):
    """One spatial or temporal unit: ReLU(BN(core(x)) + residual(x) + module residual).

    With `reduction`, the core runs at out_channels // reduction channels between a 1x1 convolution
    down (BN, ReLU) and a 1x1 convolution up (BN, `bn_up`, initialised to 0 as released).
    `residual`: identity, or a 1x1 convolution (with the stride) + BN when the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, core: Callable[[int, int], nn.Module], *,
                 stride: int = 1, reduction: int | None = None, residual: bool = False) -> None:
        super().__init__()
        if reduction is None:
            self.down, self.up = None, None
            self.core = core(in_channels, out_channels)
            self.bn = nn.BatchNorm2d(out_channels)
        else:
            inner = out_channels // reduction
            self.down = nn.Sequential(nn.Conv2d(in_channels, inner, 1), nn.BatchNorm2d(inner), nn.ReLU())
            self.core = core(inner, inner)
            self.bn = nn.BatchNorm2d(inner)
            self.up = nn.Conv2d(inner, out_channels, 1)
            self.bn_up = nn.BatchNorm2d(out_channels)
        self.residual = residual_path(Stage(in_channels, out_channels, stride, residual))

    def forward(self, x: Tensor, module_residual: Tensor | None = None) -> Tensor:
        y = x if self.down is None else self.down(x)
        y = self.bn(self.core(y))
        if self.up is not None:
            y = self.bn_up(self.up(torch.relu(y)))
        if self.residual is not None:
            y = y + self.residual(x)
        if module_residual is not None:
            y = y + module_residual
        return torch.relu(y)


class ResGCNModule(nn.Module):
    """Spatial unit then temporal unit (ResGCN_Module).

    Residuals: none for an `initial` module; around the whole module for Basic modules; around each
    unit for Bottleneck modules. The temporal unit carries the stride.
    """

    def __init__(self, in_channels: int, out_channels: int, graphs: np.ndarray, *, bottleneck: bool,
                 reduction: int, stride: int = 1, kernel_size: int = 9, initial: bool = False) -> None:
        super().__init__()
        unit_residual = bottleneck and not initial
        module_residual = not bottleneck and not initial
        inner = reduction if bottleneck else None
        self.scn = ResidualUnit(in_channels, out_channels, lambda i, o: GraphConv(i, o, graphs),
                                reduction=inner, residual=unit_residual)
        self.tcn = ResidualUnit(out_channels, out_channels, lambda i, o: temporal_conv(i, o, kernel_size, stride),
                                stride=stride, reduction=inner, residual=unit_residual)
        self.residual = residual_path(Stage(in_channels, out_channels, stride, module_residual))

    def forward(self, x: Tensor) -> Tensor:
        return self.tcn(self.scn(x), None if self.residual is None else self.residual(x))


class InputBranch(nn.Module):
    """BatchNorm2d over the stream's channels (shared by all joints), then the branch's modules."""

    def __init__(self, in_channels: int, modules: list[ResGCNModule]) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.layers = nn.ModuleList(modules)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(x)
        for layer in self.layers:
            x = layer(x)
        return x


class ResGCN(SkeletonBackbone):
    """GaitGraph's ResGCN embedding network on input (N, M, T, V, C), C = (x, y, score).

    Persons are processed independently; `features` (N, M, C_out, T', V) is the main stream's output
    (256 channels, T' = T / 4 for the published plan) and `pooled` (N, embedding_dim) is the linear
    layer on the mean over frames, joints and persons. With `normalize` (default) `pooled` is
    L2-normalised, as GaitGraph's model output: its contrastive loss (`SupConLoss`) and its gallery
    matching both work on unit vectors, so the embedding is the normalised one (a classifier on top
    then sees cosine-like features). The input normalisation is GaitGraph's BatchNorm2d per input
    stream, over channels only; this backbone has no `data_bn`.

    Args:
        layout: skeleton layout (object, built-in name or file); GaitGraph uses COCO's 17 joints.
        in_channels: channels per joint, 3 for (x, y, score).
        branches: GaitGraph's multi-branch input (`--use_multi_branch`). The model derives three
            streams of 2 * in_channels channels from the joints itself (see `gait_branches`):
            joints (x, y, s, and x, y, s relative to the center joint), velocities (x, y, s
            differences to the next frame and to the frame after), bones (x, y, s differences to the
            parent joint, arccos of the bone's y over its length, two zero channels), each through its
            own input branch. Needs in_channels = 3.
        embedding_dim: output size of the linear layer (GaitGraph: 128, `--embedding_layer_size`).
        preset: None for the published ResGCN-N39-R8, or "small" (narrow and shallow, for CPU tests).
        structure: module counts (a, b, c, d): a Basic modules at the branch start, b - 1 modules at the
            branch width, c - 1 and d - 1 extra modules after the two stride-2 main modules
            (ResGCN's n39 = (1, 2, 2, 2), n51 = (1, 2, 3, 3), n57 = (1, 3, 4, 3), n75 = (1, 3, 6, 4)).
        block: "bottleneck" (ResGCN-N*) or "basic" (ResGCN-B*) for the modules after the first.
        reduction: Bottleneck width reduction (R8 = 8).
        branch_channels: (width, output) of an input branch; published (64, 32).
        stream_channels: widths of the main stream's two stages; published (128, 256).
        kernel_size: temporal kernel (odd); 9 as released.
        graph: "distance" (ResGCN's hop-distance graphs, see `distance_partition`) or "spatial"
            (ST-GCN's identity / inward / outward graphs, `aclnet.skeleton.adjacency.spatial`).
        max_graph_distance: largest hop of the "distance" graphs (2 as released: hops 0, 1, 2).
        center_joint: reference joint of the relative joint coordinates with `branches`; default the
            layout's center (COCO: the nose). GaitGraph hard-codes joint 1 (COCO's left eye).
        normalize: L2-normalise the embedding (as GaitGraph).

    Differences from the release: the edge importance holds the max_graph_distance + 1 graphs the
    convolution uses (the release's holds a fourth, unused one per module: 17 * 17 parameters each on
    COCO); graphs come from the layout: `coco-gaitgraph` (what `casia-b-gaitgraph-j` uses) has GaitGraph's
    COCO edges (ears to shoulders, shoulders and hips to each other), `coco` links the nose to the
    shoulders instead; bones use the layout's parents (GaitGraph gives the nose the left shoulder as
    parent and the shoulders the nose, here the root has no bone and the shoulders hang from the ears).
    """

    has_topology = False

    def __init__(self, layout: str | Layout = "coco", in_channels: int = 3, *, branches: bool = False,
                 embedding_dim: int = 128, preset: str | None = None,
                 structure: tuple[int, int, int, int] | None = None, block: str | None = None,
                 reduction: int | None = None, branch_channels: tuple[int, int] | None = None,
                 stream_channels: tuple[int, int] | None = None, kernel_size: int = 9, graph: str = "distance",
                 max_graph_distance: int = 2, center_joint: int | None = None, normalize: bool = True) -> None:
        super().__init__(layout, in_channels)
        del self.data_bn  # GaitGraph normalises each input stream with its own BatchNorm2d
        name = type(self).__name__
        if preset is not None and preset not in PRESETS:
            raise InputError(f"{name}: unknown preset {preset!r}; valid presets are {sorted(PRESETS)}")
        options = {**PUBLISHED, **(PRESETS[preset] if preset is not None else {})}
        given = {"structure": structure, "block": block, "reduction": reduction,
                 "branch_channels": branch_channels, "stream_channels": stream_channels}
        options.update({key: value for key, value in given.items() if value is not None})
        structure, block, reduction = tuple(options["structure"]), options["block"], options["reduction"]
        branch_width, branch_out = options["branch_channels"]
        stream_width, stream_out = options["stream_channels"]
        self._validate(in_channels, branches, embedding_dim, structure, block, reduction,
                       (branch_width, branch_out, stream_width, stream_out), kernel_size, graph,
                       max_graph_distance, center_joint, self.num_joints)

        self.branches = branches
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        self.structure, self.block, self.reduction = structure, block, reduction
        self.center_joint = self.layout.center if center_joint is None else center_joint
        self.register_buffer("parents", torch.tensor(self.layout.parents, dtype=torch.long), persistent=False)
        graphs = distance_partition(self.layout, max_graph_distance) if graph == "distance" else spatial(self.layout)

        def module(c_in: int, c_out: int, stride: int = 1, bottleneck: bool = block == "bottleneck",
                   initial: bool = False) -> ResGCNModule:
            return ResGCNModule(c_in, c_out, graphs, bottleneck=bottleneck, reduction=reduction, stride=stride,
                                kernel_size=kernel_size, initial=initial)

        num_inputs = 3 if branches else 1
        stream_in = 2 * in_channels if branches else in_channels
        first, width, extra_a, extra_b = structure
        self.input_branches = nn.ModuleList(
            InputBranch(stream_in, [module(stream_in, branch_width, bottleneck=False, initial=True)]
                        + [module(branch_width, branch_width, bottleneck=False, initial=True) for _ in range(first - 1)]
                        + [module(branch_width, branch_width) for _ in range(width - 1)]
                        + [module(branch_width, branch_out)])
            for _ in range(num_inputs)
        )
        self.main_stream = nn.ModuleList(
            [module(num_inputs * branch_out, stream_width, stride=2)]
            + [module(stream_width, stream_width) for _ in range(extra_a - 1)]
            + [module(stream_width, stream_out, stride=2)]
            + [module(stream_out, stream_out) for _ in range(extra_b - 1)]
        )
        self.fc = nn.Linear(stream_out, embedding_dim)
        self.out_channels = embedding_dim
        self._init_weights()

    @staticmethod
    def _validate(in_channels: int, branches: bool, embedding_dim: int, structure: tuple[int, ...], block: str,
                  reduction: int, widths: tuple[int, ...], kernel_size: int, graph: str, max_graph_distance: int,
                  center_joint: int | None, num_joints: int) -> None:
        name = "ResGCN"
        if branches and in_channels != 3:
            raise InputError(f"{name}: branches need (x, y, score) input, in_channels = 3; got {in_channels}")
        if embedding_dim < 1:
            raise InputError(f"{name}: embedding_dim must be >= 1, got {embedding_dim}")
        if len(structure) != 4 or min(structure) < 1:
            raise InputError(f"{name}: structure must be four module counts >= 1, got {structure}")
        if block not in BLOCKS:
            raise InputError(f"{name}: unknown block {block!r}; valid blocks are {list(BLOCKS)}")
        if reduction < 1 or min(widths) < 1:
            raise InputError(f"{name}: need reduction >= 1 and widths >= 1; got {reduction} and {widths}")
        if block == "bottleneck" and min(widths) < reduction:
            raise InputError(f"{name}: every width must be >= reduction {reduction} (bottleneck); got {widths}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"{name}: kernel_size must be odd, got {kernel_size}")
        if graph not in GRAPHS:
            raise InputError(f"{name}: unknown graph {graph!r}; valid graphs are {list(GRAPHS)}")
        if max_graph_distance < 0:
            raise InputError(f"{name}: max_graph_distance must be >= 0, got {max_graph_distance}")
        if center_joint is not None and not 0 <= center_joint < num_joints:
            raise InputError(f"{name}: center_joint {center_joint} is not a joint index in 0..{num_joints - 1}")

    def _init_weights(self) -> None:
        """As released: Kaiming (fan out) convolutions, BN at (1, 0), the linear layer at N(0, 0.001),
        zero biases, and each Bottleneck unit's last BN scale at 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ResidualUnit) and m.up is not None:
                nn.init.zeros_(m.bn_up.weight)

    def forward(self, x: Tensor) -> BackboneOutput:
        """x: (N, M, T, V, C) -> BackboneOutput(features (N, M, C_out, T', V), pooled (N, embedding_dim), None)."""
        n, m = self._check_input(x)
        _, _, t, v, c = x.shape
        h = x.permute(0, 1, 4, 2, 3).reshape(n * m, c, t, v)
        streams = gait_branches(h, self.center_joint, self.parents).unbind(1) if self.branches else (h,)
        h = torch.cat([branch(s) for branch, s in zip(self.input_branches, streams)], dim=1)
        for layer in self.main_stream:
            h = layer(h)
        features = h.reshape((n, m) + h.shape[1:])
        pooled = self.fc(features.mean(dim=(3, 4)).mean(dim=1))
        if self.normalize:
            pooled = F.normalize(pooled, dim=1)
        return BackboneOutput(features, pooled, None)
