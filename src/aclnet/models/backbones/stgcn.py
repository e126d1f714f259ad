"""ST-GCN (Yan et al., AAAI 2018) as in PYSKL: fixed spatial graphs with learnable edge importance,
a 9x1 temporal convolution, residual, ReLU; 10 blocks, 64 -> 128 -> 256 channels.

The graphs are the layout's spatial partition (identity, inward, outward) from
`aclnet.skeleton.adjacency.spatial`. ST-GCN learns no sample-dependent topology: `topology` is None.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from aclnet.models.backbones.blocks import (
    GCNBlock,
    SkeletonBackbone,
    Stage,
    UnitTCN,
    build_stage_plan,
)
from aclnet.skeleton import Layout
from aclnet.skeleton.adjacency import spatial

PUBLISHED = {"base_channels": 64, "ch_ratio": 2, "num_stages": 10, "inflate_stages": (5, 8), "down_stages": (5, 8)}


class PartitionGraphUnit(nn.Module):
    """ST-GCN's spatial unit: out = ReLU(BN(sum_k conv_k(x) A_k * PA_k)), PA the edge importance."""

    def __init__(self, in_channels: int, out_channels: int, graphs: np.ndarray) -> None:
        super().__init__()
        self.num_graphs = graphs.shape[0]
        self.register_buffer("A", torch.from_numpy(graphs.copy()))
        self.PA = nn.Parameter(torch.ones_like(self.A))
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_graphs, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        """x: (N, C_in, T, V) -> (features (N, C_out, T, V), None)."""
        n, _, t, v = x.shape
        y = self.conv(x).reshape(n, self.num_graphs, -1, t, v)
        y = torch.einsum("nkctv,kvw->nctw", y, self.A * self.PA)
        return torch.relu(self.bn(y)), None


class STGCN(SkeletonBackbone):
    """ST-GCN on input (N, M, T, V, C); width and depth as for `ACLNetGCN` (`preset="small"`)."""

    has_topology = False

    def __init__(self, layout: str | Layout = "nturgb+d", in_channels: int = 3, *,
                 base_channels: int | None = None, ch_ratio: float | None = None,
                 num_stages: int | None = None, inflate_stages: tuple[int, ...] | None = None,
                 down_stages: tuple[int, ...] | None = None, preset: str | None = None,
                 kernel_size: int = 9) -> None:
        super().__init__(layout, in_channels)
        plan = build_stage_plan(type(self).__name__, in_channels, preset, PUBLISHED, base_channels=base_channels,
                                ch_ratio=ch_ratio, num_stages=num_stages, inflate_stages=inflate_stages,
                                down_stages=down_stages)
        graphs = spatial(self.layout)
        self.gcn.extend(self._block(stage, graphs, kernel_size) for stage in plan)
        self.out_channels = plan[-1].out_channels

    @staticmethod
    def _block(stage: Stage, graphs: np.ndarray, kernel_size: int) -> GCNBlock:
        """One block: partition graph unit, temporal convolution with BN, residual."""
        gcn = PartitionGraphUnit(stage.in_channels, stage.out_channels, graphs)
        tcn = UnitTCN(stage.out_channels, stage.out_channels, kernel_size, stage.stride)
        return GCNBlock(gcn, tcn, stage)
