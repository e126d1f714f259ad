"""Building blocks shared by the GCN backbones.

Input normalisation and output pooling (`SkeletonBackbone`), the stage plan (channels and strides per
block), architecture presets, the residual block, temporal units, and the temporally averaged relation
projections used by the learned topologies. Module names follow PYSKL's (`data_bn`, `gcn.{i}.gcn`,
`gcn.{i}.tcn`, `gcn.{i}.residual`) so released checkpoints map onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.skeleton import Layout, get_layout

PRESETS: dict[str, dict[str, Any]] = {
    # Trains on a laptop CPU: 5 blocks, C -> 32, 32, 32, 64 (stride 2), 64.
    "small": {"base_channels": 32, "num_stages": 5, "inflate_stages": (4,), "down_stages": (4,)},
}


class BackboneOutput(NamedTuple):
    """What every backbone returns.

    features: (N, M, C_out, T', V); pooled: (N, C_out), the mean over T', V and then over persons;
    topology: (N, V*V), the last block's learned sample-dependent topology averaged over persons and
    channels (the released input of the contrastive projections), or None for backbones without one.
    """

    features: Tensor
    pooled: Tensor
    topology: Tensor | None


@dataclass(frozen=True)
class Stage:
    """One block of a backbone: its input and output channels, temporal stride, and residual path."""

    in_channels: int
    out_channels: int
    stride: int
    residual: bool


def resolve_layout(layout: str | Layout) -> Layout:
    """A `Layout` from a layout object, a built-in name or a layout file."""
    return layout if isinstance(layout, Layout) else get_layout(layout)


def build_stage_plan(owner: str, in_channels: int, preset: str | None, published: dict[str, Any],
                     **given: Any) -> list[Stage]:
    """The blocks of a backbone from explicit options (those not None) over the preset over the
    published defaults (`base_channels`, `ch_ratio`, `num_stages`, `inflate_stages`, `down_stages`)."""
    if preset is not None and preset not in PRESETS:
        raise InputError(f"{owner}: unknown preset {preset!r}; valid presets are {sorted(PRESETS)}")
    options = {**published, **(PRESETS[preset] if preset is not None else {})}
    options.update({key: value for key, value in given.items() if value is not None})
    return stage_plan(owner, in_channels, **options)


def stage_plan(owner: str, in_channels: int, base_channels: int, ch_ratio: float, num_stages: int,
               inflate_stages: tuple[int, ...], down_stages: tuple[int, ...]) -> list[Stage]:
    """Blocks as in PYSKL: block 1 maps the input to `base_channels` without residual; block i
    (1-based) multiplies the width by `ch_ratio` when i is in `inflate_stages` and halves time when
    i is in `down_stages`."""
    if in_channels < 1:
        raise InputError(f"{owner}: in_channels must be >= 1, got {in_channels}")
    if num_stages < 1 or base_channels < 1 or ch_ratio <= 0:
        raise InputError(
            f"{owner}: need num_stages >= 1, base_channels >= 1 and ch_ratio > 0; "
            f"got {num_stages}, {base_channels}, {ch_ratio}"
        )
    for name, stages in (("inflate_stages", inflate_stages), ("down_stages", down_stages)):
        bad = [s for s in stages if not 2 <= s <= num_stages]
        if bad:
            raise InputError(f"{owner}: {name} {bad} are outside the blocks 2..{num_stages}")
    plan = [Stage(in_channels, base_channels, 1, False)]
    width, inflations = base_channels, 0
    for index in range(2, num_stages + 1):
        inflations += index in inflate_stages
        out_channels = int(base_channels * ch_ratio**inflations + 1e-4)
        stride = 2 if index in down_stages else 1
        plan.append(Stage(width, out_channels, stride, True))
        width = out_channels
    return plan


def check_min_width(owner: str, plan: list[Stage], minimum: int, why: str) -> None:
    """Refuse widths too small for a unit (e.g. fewer channels than temporal branches)."""
    narrow = min(stage.out_channels for stage in plan)
    if narrow < minimum:
        raise InputError(f"{owner}: every block needs at least {minimum} channels ({why}); got {narrow}")


class UnitTCN(nn.Module):
    """Temporal convolution (kernel x 1, dilation, stride) with an optional batch norm, as PYSKL's unit_tcn."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1,
                 dilation: int = 1, norm: bool = True) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), stride=(stride, 1),
                              padding=(pad, 0), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


def branch_widths(channels: int, num_branches: int, remainder_first: bool) -> list[int]:
    """Channels per branch: `channels // num_branches` each, the remainder to the first or last branch."""
    width = channels // num_branches
    rest = channels - width * (num_branches - 1)
    return [rest] + [width] * (num_branches - 1) if remainder_first else [width] * (num_branches - 1) + [rest]


class MultiScaleBranches(nn.Module):
    """Parallel temporal branches: dilated k x 1 convolutions, a 3 x 1 max pool and a plain strided 1x1.

    Every branch starts with a 1x1 convolution of the same input; these are one convolution here
    (`reduce`, c -> c, the plain branch's rows last), followed by one BN + ReLU over the channels of
    the non-plain branches (`reduce_bn`; BN is per channel, so this equals one BN per branch). The
    plain branch is strided by slicing frames, which equals a strided 1x1 convolution. One
    convolution instead of six also means one input gradient in the backward pass instead of six;
    `split` rather than slicing keeps the backward from zero-filling full-size gradients.
    `branch_norm` adds CTR-GCN's BN after each branch.
    """

    def __init__(self, channels: int, stride: int, kernel_size: int, dilations: tuple[int, ...],
                 branch_norm: bool, remainder_first: bool) -> None:
        super().__init__()
        self.widths = branch_widths(channels, len(dilations) + 2, remainder_first)
        self.stride = stride
        self.reduce = nn.Conv2d(channels, channels, 1)
        self.reduce_bn = nn.BatchNorm2d(channels - self.widths[-1])
        self.temporal = nn.ModuleList(
            UnitTCN(w, w, kernel_size, stride, d, norm=branch_norm) for w, d in zip(self.widths, dilations)
        )
        self.pool = nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0))
        self.pool_bn = nn.BatchNorm2d(self.widths[-2]) if branch_norm else nn.Identity()
        self.plain_bn = nn.BatchNorm2d(self.widths[-1]) if branch_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, T, V) -> (N, C, T', V), the branches concatenated in order."""
        entered, plain = self.reduce(x).split([sum(self.widths[:-1]), self.widths[-1]], dim=1)
        parts = torch.relu(self.reduce_bn(entered)).split(self.widths[:-1], dim=1)
        outs = [tcn(part) for tcn, part in zip(self.temporal, parts)]
        outs.append(self.pool_bn(self.pool(parts[-1])))
        outs.append(self.plain_bn(plain[:, :, :: self.stride]))
        return torch.cat(outs, dim=1)


class JointMeanMultiScaleTCN(nn.Module):
    """The ACLNet GCN's temporal unit (DG-STGCN's dgmstcn).

    The input gets an extra joint, the mean over joints; six branches (3x1 convolutions with
    dilation 1-4, a max pool, a plain 1x1; the first takes the remainder width) are concatenated;
    the extra joint's output times a learnable per-joint coefficient is added to every joint; then
    BN, ReLU, 1x1 convolution and a final BN.
    """

    def __init__(self, channels: int, num_joints: int, stride: int = 1,
                 dilations: tuple[int, ...] = (1, 2, 3, 4)) -> None:
        super().__init__()
        self.add_coeff = nn.Parameter(torch.zeros(num_joints))
        self.branches = MultiScaleBranches(channels, stride, 3, dilations, branch_norm=False, remainder_first=True)
        self.transform = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1))
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        joints = x.shape[-1]
        local, shared = self.branches(torch.cat([x, x.mean(-1, keepdim=True)], dim=-1)).split([joints, 1], dim=-1)
        return self.bn(self.transform(torch.addcmul(local, shared, self.add_coeff)))


def ctrgcn_temporal_unit(channels: int, stride: int = 1, kernel_size: int = 5,
                         dilations: tuple[int, ...] = (1, 2)) -> MultiScaleBranches:
    """CTR-GCN's temporal unit: dilated k x 1 branches, max pool and strided 1x1 (remainder width),
    each ending in BN, concatenated."""
    return MultiScaleBranches(channels, stride, kernel_size, dilations, branch_norm=True, remainder_first=False)


class GCNBlock(nn.Module):
    """Spatial unit, temporal unit, residual, ReLU. The spatial unit returns (features, topology | None)."""

    def __init__(self, gcn: nn.Module, tcn: nn.Module, stage: Stage) -> None:
        super().__init__()
        self.gcn = gcn
        self.tcn = tcn
        self.residual = residual_path(stage)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        y, topology = self.gcn(x)
        y = self.tcn(y)
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y), topology


def residual_path(stage: Stage) -> nn.Module | None:
    """None (no residual), identity, or a strided 1x1 convolution with BN when the shape changes."""
    if not stage.residual:
        return None
    if stage.in_channels == stage.out_channels and stage.stride == 1:
        return nn.Identity()
    return UnitTCN(stage.in_channels, stage.out_channels, kernel_size=1, stride=stage.stride)


def channel_down(in_channels: int, out_channels: int) -> nn.Module:
    """The spatial units' own residual: identity, or 1x1 convolution + BN when the width changes."""
    if in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))


def relation_projections(x: Tensor, conv1: nn.Module, conv2: nn.Module, from_mean: bool) -> tuple[Tensor, Tensor]:
    """conv1 and conv2 of x (N, C, T, V) averaged over time, each (N, C', V).

    A 1x1 convolution is affine, so projecting the temporal mean equals averaging the per-frame
    projections (the released order, `from_mean=False`) at 1/T of the cost.
    """
    if from_mean:
        pooled = x.mean(dim=2, keepdim=True)
        return conv1(pooled).squeeze(2), conv2(pooled).squeeze(2)
    return conv1(x).mean(dim=2), conv2(x).mean(dim=2)


class SkeletonBackbone(nn.Module):
    """Shared frame of the backbones: input BatchNorm1d(V*C) per person, the blocks in `self.gcn`,
    and the pooled output. Subclasses fill `self.gcn` and set `out_channels`."""

    has_topology: ClassVar[bool] = False

    def __init__(self, layout: str | Layout, in_channels: int) -> None:
        super().__init__()
        self.layout = resolve_layout(layout)
        self.num_joints = self.layout.num_joints
        self.in_channels = in_channels
        self.out_channels = 0
        self.data_bn = nn.BatchNorm1d(self.num_joints * in_channels)
        self.gcn = nn.ModuleList()

    def forward(self, x: Tensor) -> BackboneOutput:
        """x: (N, M, T, V, C) -> BackboneOutput."""
        n, m = self._check_input(x)
        h = self._normalize_input(x)
        topology = None
        for block in self.gcn:
            h, topology = block(h)
        features = h.reshape((n, m) + h.shape[1:])
        pooled = features.mean(dim=(3, 4)).mean(dim=1)
        summary = None
        if topology is not None:
            v = self.num_joints
            summary = topology.reshape(n, m, -1, v * v).mean(dim=(1, 2))
        return BackboneOutput(features, pooled, summary)

    def _check_input(self, x: Tensor) -> tuple[int, int]:
        """Shape checks (host metadata only): (N, M, T, V, C) with this layout's V and in_channels."""
        name = type(self).__name__
        if x.dim() != 5:
            raise InputError(f"{name}: expected input (N, M, T, V, C), got shape {tuple(x.shape)}")
        if x.shape[3] != self.num_joints or x.shape[4] != self.in_channels:
            raise InputError(
                f"{name}: input has {x.shape[3]} joints and {x.shape[4]} channels; layout "
                f"'{self.layout.name}' has {self.num_joints} joints and the model takes {self.in_channels} channels"
            )
        return x.shape[0], x.shape[1]

    def _normalize_input(self, x: Tensor) -> Tensor:
        """BatchNorm1d over V*C per person on (N*M, V*C, T); returns (N*M, C, T, V)."""
        n, m, t, v, c = x.shape
        x = x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        return x.reshape(n * m, v, c, t).permute(0, 2, 3, 1).contiguous()
