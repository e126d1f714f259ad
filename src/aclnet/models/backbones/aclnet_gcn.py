"""The ACLNet GCN (the release's `GCN_Module`, PYSKL's DG-STGCN family), docs/method.md section 7.

Defaults reproduce the released configuration: 10 blocks, 96 -> 192 -> 384 channels, stride 2 at
blocks 5 and 8, 8 learnable graphs per unit, channel-wise and attention topologies, the joint-mean
multi-scale temporal unit; 3,705,696 parameters with the NTU layout and 3 input channels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.models.backbones.blocks import (
    GCNBlock,
    JointMeanMultiScaleTCN,
    SkeletonBackbone,
    Stage,
    build_stage_plan,
    channel_down,
    check_min_width,
    relation_projections,
)
from aclnet.skeleton import Layout
from aclnet.skeleton.adjacency import random_graphs

PUBLISHED = {"base_channels": 96, "ch_ratio": 2, "num_stages": 10, "inflate_stages": (5, 8), "down_stages": (5, 8)}


class AffinityGraphUnit(nn.Module):
    """Spatial unit with K learnable static graphs plus sample-dependent channel-wise and attention
    topologies (the release's `unit_gcn`).

    For graph k and channel c: out[k, c, t, w] = sum_v pre[k, c, t, v] * (A + ctr + att)[k, c, v, w],
    ctr = tanh(x1[v] - x2[w]) * alpha, att = softmax_v(sum_c x1[c, v] x2[c, w]) * beta, with x1, x2
    the 1x1 projections of the temporally averaged input. `alpha` and `beta` are kept as K-vectors of
    which element 0 scales every graph, as in the release (its parameter count and checkpoints).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        graphs: (K, V, V) initial values of the learnable static graphs (the backbone draws them once
            and gives every block the same draw, as the release does).
        ratio: channels per graph as a share of `out_channels`.
        topology_from_mean_input: project the temporally averaged input (True) or average the per-frame
            projections (the released order; equal result, slower).
    """

    def __init__(self, in_channels: int, out_channels: int, graphs: np.ndarray, ratio: float = 0.125,
                 topology_from_mean_input: bool = True) -> None:
        super().__init__()
        num_graphs = graphs.shape[0]
        self.num_graphs = num_graphs
        self.mid_channels = int(ratio * out_channels)
        self.topology_from_mean_input = topology_from_mean_input
        inner = self.mid_channels * num_graphs
        self.A = nn.Parameter(torch.from_numpy(graphs.copy()))
        self.pre = nn.Sequential(nn.Conv2d(in_channels, inner, 1), nn.BatchNorm2d(inner), nn.ReLU())
        self.post = nn.Conv2d(inner, out_channels, 1)
        self.alpha = nn.Parameter(torch.zeros(num_graphs))
        self.beta = nn.Parameter(torch.zeros(num_graphs))
        self.conv1 = nn.Conv2d(in_channels, inner, 1)
        self.conv2 = nn.Conv2d(in_channels, inner, 1)
        self.down = channel_down(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (N, C_in, T, V) -> (features (N, C_out, T, V), topology ctr + att (N, K, C', V, V))."""
        n, _, t, v = x.shape
        k, mid = self.num_graphs, self.mid_channels
        pre = self.pre(x).reshape(n, k, mid, t, v)
        x1, x2 = relation_projections(x, self.conv1, self.conv2, self.topology_from_mean_input)
        x1, x2 = x1.reshape(n, k, mid, v), x2.reshape(n, k, mid, v)
        ctr = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2)) * self.alpha[0]
        att = torch.softmax(torch.einsum("nkcv,nkcw->nkvw", x1, x2), dim=-2).unsqueeze(2) * self.beta[0]
        topology = ctr + att
        graph = topology + self.A[None, :, None]
        out = torch.einsum("nkctv,nkcvw->nkctw", pre, graph).reshape(n, k * mid, t, v)
        return torch.relu(self.bn(self.post(out)) + self.down(x)), topology


class ACLNetGCN(SkeletonBackbone):
    """The ACLNet GCN on input (N, M, T, V, C); see the module docstring.

    Width and depth: `base_channels`, `ch_ratio`, `num_stages`, `inflate_stages`, `down_stages`
    (1-based block indices), or `preset="small"`; explicit values win over the preset.
    `topology_from_mean_input=False` computes conv1/conv2 per frame and then averages (the released
    order; same outputs, slower).
    """

    has_topology = True

    def __init__(self, layout: str | Layout = "nturgb+d", in_channels: int = 3, *,
                 base_channels: int | None = None, ch_ratio: float | None = None,
                 num_stages: int | None = None, inflate_stages: tuple[int, ...] | None = None,
                 down_stages: tuple[int, ...] | None = None, preset: str | None = None,
                 num_graphs: int = 8, graph_ratio: float = 0.125,
                 topology_from_mean_input: bool = True) -> None:
        super().__init__(layout, in_channels)
        name = type(self).__name__
        if num_graphs < 1 or not 0 < graph_ratio <= 1:
            raise InputError(f"{name}: need num_graphs >= 1 and 0 < graph_ratio <= 1, got {num_graphs}, {graph_ratio}")
        plan = build_stage_plan(name, in_channels, preset, PUBLISHED, base_channels=base_channels, ch_ratio=ch_ratio,
                                num_stages=num_stages, inflate_stages=inflate_stages, down_stages=down_stages)
        check_min_width(name, plan, max(6, math.ceil(1 / graph_ratio - 1e-9)),
                        "six temporal branches and at least one channel per graph")
        seed = int(torch.randint(0, 2**31 - 1, (), device="cpu"))
        graphs = random_graphs(self.num_joints, num_graphs, 0.04, 0.02, seed)  # one draw for every block
        self.gcn.extend(self._block(stage, graphs, graph_ratio, topology_from_mean_input) for stage in plan)
        self.out_channels = plan[-1].out_channels

    def _block(self, stage: Stage, graphs: np.ndarray, ratio: float, from_mean: bool) -> GCNBlock:
        """One block: affinity graph unit, joint-mean multi-scale temporal unit, residual."""
        gcn = AffinityGraphUnit(stage.in_channels, stage.out_channels, graphs, ratio, from_mean)
        tcn = JointMeanMultiScaleTCN(stage.out_channels, self.num_joints, stage.stride)
        return GCNBlock(gcn, tcn, stage)
