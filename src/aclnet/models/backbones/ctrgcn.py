"""CTR-GCN (Chen et al., ICCV 2021), the backbone of FR-Head, the paper's baseline, as in PYSKL.

Per block: a channel-wise topology refinement unit over the three spatial graphs (identity, inward,
outward), a multi-scale temporal unit (two dilated 5x1 branches, max pool, 1x1), residual, ReLU.
The three per-graph units of the original are fused into single (grouped) convolutions; the
parameter count is unchanged. The input BatchNorm1d is over V*C per person (PYSKL's CTR-GCN uses
M*V*C), so any number of persons works.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from aclnet.models.backbones.blocks import (
    GCNBlock,
    SkeletonBackbone,
    Stage,
    build_stage_plan,
    channel_down,
    check_min_width,
    ctrgcn_temporal_unit,
    relation_projections,
)
from aclnet.skeleton import Layout
from aclnet.skeleton.adjacency import spatial

PUBLISHED = {"base_channels": 64, "ch_ratio": 2, "num_stages": 10, "inflate_stages": (5, 8), "down_stages": (5, 8)}


class ChannelRefinedGraphUnit(nn.Module):
    """CTR-GCN's spatial unit, all graphs at once.

    For graph s: Q_s = conv4_s(tanh(x1_s[u] - x2_s[v])) * alpha (N x C_out x V x V, channel-wise),
    out[c, t, v] = sum_s sum_u (A_s + Q_s)[c, u, v] * conv3_s(x)[c, t, u]. x1, x2 come from the
    temporally averaged input (equal to the original's averaging after the 1x1 convolutions).
    """

    def __init__(self, in_channels: int, out_channels: int, graphs: np.ndarray) -> None:
        super().__init__()
        self.num_graphs = graphs.shape[0]
        self.out_channels = out_channels
        rel = 8 if in_channels <= 16 else in_channels // 8
        s = self.num_graphs
        self.A = nn.Parameter(torch.from_numpy(graphs.copy()))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.conv1 = nn.Conv2d(in_channels, s * rel, 1)
        self.conv2 = nn.Conv2d(in_channels, s * rel, 1)
        self.conv3 = nn.Conv2d(in_channels, s * out_channels, 1)
        self.conv4 = nn.Conv2d(s * rel, s * out_channels, 1, groups=s)
        self.down = channel_down(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (N, C_in, T, V) -> (features (N, C_out, T, V), refined topology (N, S, C_out, V, V))."""
        n, _, t, v = x.shape
        s, c = self.num_graphs, self.out_channels
        x1, x2 = relation_projections(x, self.conv1, self.conv2, from_mean=True)
        relation = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        topology = self.conv4(relation).reshape(n, s, c, v, v) * self.alpha
        graph = topology + self.A[None, :, None]
        values = self.conv3(x).reshape(n, s, c, t, v)
        out = torch.einsum("nscuv,nsctu->nctv", graph, values)
        return torch.relu(self.bn(out) + self.down(x)), topology


class CTRGCN(SkeletonBackbone):
    """CTR-GCN on input (N, M, T, V, C); published width 64 -> 128 -> 256 over 10 blocks.

    Width and depth as for `ACLNetGCN` (`preset="small"` for a laptop CPU). The returned topology
    is the last block's channel-wise refined part (without the static graphs).
    """

    has_topology = True

    def __init__(self, layout: str | Layout = "nturgb+d", in_channels: int = 3, *,
                 base_channels: int | None = None, ch_ratio: float | None = None,
                 num_stages: int | None = None, inflate_stages: tuple[int, ...] | None = None,
                 down_stages: tuple[int, ...] | None = None, preset: str | None = None,
                 kernel_size: int = 5, dilations: tuple[int, ...] = (1, 2)) -> None:
        super().__init__(layout, in_channels)
        plan = build_stage_plan(type(self).__name__, in_channels, preset, PUBLISHED, base_channels=base_channels,
                                ch_ratio=ch_ratio, num_stages=num_stages, inflate_stages=inflate_stages,
                                down_stages=down_stages)
        check_min_width(type(self).__name__, plan, len(dilations) + 2, "one channel per temporal branch")
        graphs = spatial(self.layout)
        self.gcn.extend(self._block(stage, graphs, kernel_size, dilations) for stage in plan)
        self.out_channels = plan[-1].out_channels
        self._init_weights()

    @staticmethod
    def _block(stage: Stage, graphs: np.ndarray, kernel_size: int, dilations: tuple[int, ...]) -> GCNBlock:
        """One block: refinement unit, multi-scale temporal unit, residual."""
        gcn = ChannelRefinedGraphUnit(stage.in_channels, stage.out_channels, graphs)
        tcn = ctrgcn_temporal_unit(stage.out_channels, stage.stride, kernel_size, dilations)
        return GCNBlock(gcn, tcn, stage)

    def _init_weights(self) -> None:
        """CTR-GCN's initialisation: Kaiming (fan out) convolutions, unit BN, spatial-unit BN at 1e-6."""
        for module in self.gcn.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for block in self.gcn:
            nn.init.constant_(block.gcn.bn.weight, 1e-6)
