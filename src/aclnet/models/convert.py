"""Conversion of the authors' released checkpoints (mmcv dicts) into the project's module names.

A released checkpoint holds `state_dict` with
- `backbone.*`: the `GCN_Module` (`data_bn`, `gcn.{i}.gcn.*`, `gcn.{i}.tcn.*`, `gcn.{i}.residual.*`).
  `ACLNetGCN` shares these names except in the temporal unit, whose six branch-entry 1x1
  convolutions the project runs as one: per block,
    `tcn.branches.{0..4}.0.*` + `tcn.branches.5.*`  -> `tcn.branches.reduce.*` (rows concatenated),
    `tcn.branches.{0..4}.1.*` (BN)                  -> `tcn.branches.reduce_bn.*` (concatenated; the
                                                       batch counter is the largest of the five),
    `tcn.branches.{0..3}.3.conv.*`                  -> `tcn.branches.temporal.{0..3}.conv.*`.
  `tcn.add_coeff` is allocated for 25 joints by the release, which reads `add_coeff[:V]`; a longer
  vector is cut to the layout's V.
- `cls_head.fc_cls.*`: the classifier -> `cls_head.fc.*`;
- `cls_head.inter_loss.cl_fc.*`, `cls_head.intra_loss.cl_fc.*`: the projections of the two losses
  -> `aux.inter.projection.fc.*`, `aux.intra.projection.fc.*` (the auxiliary entries of `SkeletonModel`);
- any other `cls_head.inter_loss.*` / `cls_head.intra_loss.*` entry is loss state (statistics,
  prototypes, memory): it is left out with a warning, and the project's losses start afresh.

The result is the state of a model with attributes `backbone` (`ACLNetGCN` with the released
architecture), `cls_head` (`ClassificationHead`) and the projections of the `inter` and `intra`
auxiliary losses (`ProjectionHead` from the V*V topology). Any other key, a missing key or a wrong shape is an
`InputError` that lists them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

import torch
from torch import Tensor

from aclnet.errors import InputError
from aclnet.models.backbones import ACLNetGCN
from aclnet.models.backbones.blocks import resolve_layout
from aclnet.models.heads import ClassificationHead, ProjectionHead
from aclnet.skeleton import Layout

# (released prefix, project prefix), most specific first.
_PREFIXES = (
    ("cls_head.inter_loss.cl_fc.", "aux.inter.projection.fc."),
    ("cls_head.intra_loss.cl_fc.", "aux.intra.projection.fc."),
    ("cls_head.fc_cls.", "cls_head.fc."),
    ("backbone.", "backbone."),
)
_REVERSE = tuple((project, released) for released, project in _PREFIXES)
_LOSS_STATE = ("cls_head.inter_loss.", "cls_head.intra_loss.")
_TEMPORAL_UNIT = re.compile(r"^(backbone\.gcn\.\d+\.tcn\.)branches\.")

_DILATED = 4  # released temporal unit: branches 0-3 dilated, 4 max pool, 5 plain 1x1
_ENTERED = range(_DILATED + 1)
_BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# Project key (inside one temporal unit) -> the released keys merged into it, in order.
_FUSED: dict[str, tuple[str, ...]] = {
    **{f"branches.reduce.{p}": tuple(f"branches.{b}.0.{p}" for b in _ENTERED) + (f"branches.{_DILATED + 1}.{p}",)
       for p in ("weight", "bias")},
    **{f"branches.reduce_bn.{p}": tuple(f"branches.{b}.1.{p}" for b in _ENTERED) for p in _BN_FIELDS},
    **{f"branches.temporal.{b}.conv.{p}": (f"branches.{b}.3.conv.{p}",)
       for b in range(_DILATED) for p in ("weight", "bias")},
}


class CheckpointError(InputError):
    """A released checkpoint does not have the expected keys or shapes."""


def convert_released_checkpoint(state: Mapping[str, object], *, layout: str | Layout = "nturgb+d",
                                num_classes: int | None = None) -> dict[str, Tensor]:
    """Map a released checkpoint (the mmcv dict or its `state_dict`) to the project's state dict.

    The number of input channels is read from `backbone.data_bn` and the number of classes from
    `cls_head.fc_cls` (checked against `num_classes` when given).
    """
    released = dict(_state_dict_of(state))
    layout = resolve_layout(layout)
    ignored = sorted(key for key in released if key.startswith(_LOSS_STATE) and ".cl_fc." not in key)
    if ignored:
        warnings.warn(f"left out the released loss state (the losses start afresh): {ignored}", stacklevel=2)
    for key in ignored:
        del released[key]
    converted, missing = _fuse_temporal_units(released)
    unknown = []
    for key, value in released.items():
        target = _rename(key, _PREFIXES)
        if target is None:
            unknown.append(key)
        else:
            converted[target] = _fit_add_coeff(target, value, layout.num_joints)
    expected = _expected_shapes(converted, layout, num_classes)
    missing += [name for key in expected if key not in converted for name in _released_names(key)]
    unknown += [name for key in converted if key not in expected for name in _released_names(key)]
    if unknown or missing:
        raise CheckpointError(
            f"released checkpoint does not match the ACLNet GCN for layout '{layout.name}': "
            f"unknown keys {sorted(unknown)}; missing keys {sorted(missing)}"
        )
    wrong = [f"{'+'.join(_released_names(key))}: {tuple(converted[key].shape)} instead of {shape}"
             for key, shape in expected.items() if tuple(converted[key].shape) != shape]
    if wrong:
        raise CheckpointError(f"released checkpoint has tensors of the wrong shape: {wrong}")
    return converted


def to_released_layout(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inverse: a project state dict (backbone, cls_head, projections) in the released names and
    layout, as the `state_dict` of a released checkpoint. Keys of other modules are errors."""
    out: dict[str, Tensor] = {}
    units = sorted({match.group(1) for key in state if (match := _TEMPORAL_UNIT.match(key))})
    for unit in units:
        out.update(_split_temporal_unit(state, unit))
    unknown = []
    for key, value in state.items():
        if _TEMPORAL_UNIT.match(key):
            continue
        target = _rename(key, _REVERSE)
        if target is None:
            unknown.append(key)
        else:
            out[target] = value
    if unknown:
        raise CheckpointError(f"keys outside backbone, cls_head and the projections: {sorted(unknown)}")
    return out


def _state_dict_of(state: Mapping[str, object]) -> Mapping[str, Tensor]:
    """The `state_dict` entry of an mmcv checkpoint, or the mapping itself; values must be tensors."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"a checkpoint must be a mapping, got {type(state).__name__}")
    inner = state.get("state_dict", state)
    if not isinstance(inner, Mapping):
        raise CheckpointError(f"the checkpoint's 'state_dict' must be a mapping, got {type(inner).__name__}")
    bad = sorted(str(key) for key, value in inner.items() if not isinstance(value, Tensor))
    if bad:
        raise CheckpointError(f"checkpoint entries that are not tensors: {bad}")
    return inner


def _fuse_temporal_units(released: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Merge each released temporal unit's branch tensors into the fused ones; the consumed keys
    are removed from `released`. Returns (fused tensors, missing released keys)."""
    fused: dict[str, Tensor] = {}
    missing: list[str] = []
    units = sorted({match.group(1) for key in released if (match := _TEMPORAL_UNIT.match(key))})
    for unit in units:
        for target, sources in _FUSED.items():
            names = [unit + source for source in sources]
            absent = [name for name in names if name not in released]
            if absent:
                missing += absent
                continue
            fused[unit + target] = _merge([released.pop(name) for name in names], names)
    return fused, missing


def _merge(tensors: list[Tensor], names: list[str]) -> Tensor:
    """Concatenate per-branch tensors along the channel axis; batch counters take the largest."""
    if tensors[0].dim() == 0:
        return torch.stack(tensors).max()
    try:
        return torch.cat(tensors, dim=0)
    except RuntimeError as exc:
        raise CheckpointError(f"cannot concatenate the branch tensors {names}: {exc}") from exc


def _split_temporal_unit(state: Mapping[str, Tensor], unit: str) -> dict[str, Tensor]:
    """One project temporal unit's fused tensors split back into the released branches."""
    try:
        dilated = [state[f"{unit}branches.temporal.{b}.conv.weight"].shape[0] for b in range(_DILATED)]
        entered = state[f"{unit}branches.reduce_bn.weight"].shape[0]
        total = state[f"{unit}branches.reduce.weight"].shape[0]
        widths = dilated + [entered - sum(dilated), total - entered]
        out = {}
        for target, sources in _FUSED.items():
            value = state[unit + target]
            if value.dim() == 0:
                parts: tuple[Tensor, ...] = (value,) * len(sources)
            else:
                parts = value.split(widths[: len(sources)]) if len(sources) > 1 else (value,)
            out.update({unit + source: part.clone() for source, part in zip(sources, parts)})
    except KeyError as exc:
        raise CheckpointError(f"temporal unit {unit!r} lacks {exc.args[0]!r}") from exc
    return out


def _rename(key: str, prefixes: tuple[tuple[str, str], ...]) -> str | None:
    """Replace the first matching prefix; None when no prefix matches."""
    for source, target in prefixes:
        if key.startswith(source):
            return target + key[len(source):]
    return None


def _released_names(key: str) -> list[str]:
    """The released key(s) behind a project key (for messages)."""
    match = _TEMPORAL_UNIT.match(key)
    if match and key[len(match.group(1)):] in _FUSED:
        return [match.group(1) + source for source in _FUSED[key[len(match.group(1)):]]]
    return [_rename(key, _REVERSE) or key]


def _fit_add_coeff(key: str, value: Tensor, num_joints: int) -> Tensor:
    """The release allocates `add_coeff` for 25 joints and uses the first V: keep those."""
    if key.endswith(".tcn.add_coeff") and value.dim() == 1 and value.shape[0] > num_joints:
        return value[:num_joints].clone()
    return value


def _expected_shapes(converted: Mapping[str, Tensor], layout: Layout,
                     num_classes: int | None) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the project model that the released checkpoint describes (built on the meta
    device, without touching the global random state)."""
    v = layout.num_joints
    bn = converted.get("backbone.data_bn.weight")
    if bn is None or bn.dim() != 1 or bn.shape[0] % v != 0:
        shape = None if bn is None else tuple(bn.shape)
        raise CheckpointError(f"backbone.data_bn.weight must hold V*C values for V = {v} joints; got {shape}")
    fc = converted.get("cls_head.fc.weight")
    if fc is None or fc.dim() != 2:
        raise CheckpointError("cls_head.fc_cls.weight is missing or not a matrix")
    if num_classes is not None and fc.shape[0] != num_classes:
        raise CheckpointError(f"the checkpoint's classifier has {fc.shape[0]} classes, expected {num_classes}")
    inter = converted.get("aux.inter.projection.fc.weight")
    out_features = inter.shape[0] if inter is not None and inter.dim() == 2 else 256
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        backbone = ACLNetGCN(layout, bn.shape[0] // v)
        modules = {
            "backbone": backbone,
            "cls_head": ClassificationHead(backbone.out_channels, fc.shape[0]),
            "aux.inter.projection": ProjectionHead(v * v, out_features),
            "aux.intra.projection": ProjectionHead(v * v, out_features),
        }
    return {f"{name}.{key}": tuple(value.shape)
            for name, module in modules.items() for key, value in module.state_dict().items()}
