"""The Motion Families a run learned: each class with its family members, affinity weights and FAT temperature.

Read from a checkpoint's inter-loss state (`aux.inter.loss.families`, `aux.inter.loss.affinity`) and its resolved
configuration; temperatures come from the loss's own rule (docs/method.md, sections 2.5 and 2.7), not a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aclnet.config import ExperimentConfig, config_from_text
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.run_folder import resolve_checkpoint
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss
from aclnet.tasks.components import loss_constants

_STATE_KEYS = ("families", "affinity", "prototypes")


def describe_families(
    loss: InterClassAffinityLoss, class_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """For inspection (not a training step): each class with its temperature and its family members,
    ordered by affinity weight (ties by class index), with names when the dataset has them."""
    if class_names is not None and len(class_names) != loss.num_classes:
        raise InputError(f"describe_families: {len(class_names)} class names given for "
                         f"{loss.num_classes} classes")
    families = loss.families.cpu().tolist()
    affinity = loss.affinity.double().cpu().tolist()
    temperatures = loss.class_temperatures().double().cpu().tolist()

    def entry(index: int) -> dict[str, Any]:
        return {"class": index, "name": None if class_names is None else class_names[index]}

    described = []
    for i in range(loss.num_classes):
        members = sorted((j for j in range(loss.num_classes) if families[i][j]),
                         key=lambda j: (-affinity[i][j], j))
        described.append({**entry(i), "temperature": temperatures[i],
                          "members": [{**entry(j), "affinity": affinity[i][j]} for j in members]})
    return described


def _inter_state(model: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The inter loss's families, affinity and prototypes, checked for shape and type."""
    if not isinstance(model, dict):
        raise InputError(f"{path}: the checkpoint's 'model' entry is not a state dict")
    present = {key: model.get(f"aux.inter.loss.{key}") for key in _STATE_KEYS}
    if all(value is None for value in present.values()):
        raise InputError(f"{path}: the run had no inter loss (no aux.inter.loss.* state in the model); "
                         "Motion Families exist only when loss.inter.enabled is true")
    missing = [key for key, value in present.items() if not isinstance(value, torch.Tensor)]
    if missing:
        raise InputError(f"{path}: inter-loss state lacks {', '.join(f'aux.inter.loss.{k}' for k in missing)}")
    families, affinity, prototypes = (present[key] for key in _STATE_KEYS)
    num_classes = families.shape[0] if families.dim() == 2 else -1
    if families.shape != (num_classes, num_classes) or families.dtype != torch.bool or num_classes < 2:
        raise InputError(f"{path}: aux.inter.loss.families must be a square bool matrix, got "
                         f"{tuple(families.shape)} {families.dtype}")
    if affinity.shape != families.shape or not affinity.is_floating_point():
        raise InputError(f"{path}: aux.inter.loss.affinity must be a float {tuple(families.shape)} matrix, got "
                         f"{tuple(affinity.shape)} {affinity.dtype}")
    if prototypes.dim() != 2 or prototypes.shape[0] != num_classes:
        raise InputError(f"{path}: aux.inter.loss.prototypes must be ({num_classes}, D), got {tuple(prototypes.shape)}")
    return present


def _class_names(payload: dict[str, Any], num_classes: int, path: Path) -> list[str]:
    """The run's class names, or the class indices when the checkpoint has none."""
    names = payload.get("class_names")
    if names is None:
        return [str(i) for i in range(num_classes)]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) != num_classes:
        raise InputError(f"{path}: class_names must be {num_classes} strings (one per class of the inter loss)")
    return names


def _loss_settings(payload: dict[str, Any], config: ExperimentConfig, num_classes: int) -> dict[str, Any]:
    """The inter loss's K, threshold, mode and temperatures as the run built them: the constants the run saved
    (checkpoints written before they were saved: derived again, K and the threshold depend on the class count
    only, so the training-set size does not matter)."""
    inter = config.loss.inter
    constants = payload.get("loss_constants") or loss_constants(config, num_classes, 4 * config.optim.batch_size)
    k, threshold = constants.get("k"), constants.get("overlap_threshold")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (k, threshold)):
        raise InputError(f"loss_constants: K and the overlap threshold must be whole numbers, got {constants!r}")
    return {"k": k, "overlap_threshold": threshold, "family_mode": inter.family_mode,
            "temperatures": inter.temperatures, "fat": inter.fat, "fixed_tau": inter.fixed_tau}


def family_table(run_dir_or_checkpoint: str | Path) -> list[dict[str, Any]]:
    """One row per class: `class`, `name`, `size`, `temperature` and `members` (each with `class`, `name`,
    `affinity`), members ordered by affinity weight (ties by class index), as the loss sees them."""
    path = resolve_checkpoint(run_dir_or_checkpoint)
    payload = load_checkpoint(path)
    state = _inter_state(payload["model"], path)
    num_classes, dim = state["prototypes"].shape
    if not bool(state["families"].any()):
        raise InputError(f"{path}: no class has a Motion Family yet; families are built after the inter "
                         f"loss's start epoch (checkpoint of epoch {payload.get('epoch', '?')})")
    names = _class_names(payload, num_classes, path)
    config = config_from_text(payload.get("config"), str(path))
    loss = InterClassAffinityLoss(num_classes, dim, **_loss_settings(payload, config, num_classes))
    loss.families.copy_(state["families"])
    loss.affinity.copy_(state["affinity"].to(loss.affinity.dtype))
    return [{**row, "size": len(row["members"])} for row in describe_families(loss, names)]


def format_family_table(rows: list[dict[str, Any]]) -> str:
    """The family table as text: class, family size, temperature, then the members with their weights."""
    width = max([len("class"), *(len(row["name"]) for row in rows)])
    lines = [f"{'class'.ljust(width)}  size    tau  family members (affinity weight)"]
    for row in rows:
        members = ", ".join(f"{m['name']} {m['affinity']:.2f}" for m in row["members"]) or "(empty)"
        lines.append(f"{row['name'].ljust(width)}  {row['size']:4d}  {row['temperature']:5.3f}  {members}")
    return "\n".join(lines)
