"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

A checkpoint holds everything a resumed run needs: model (with the losses' buffers and extra
state), optimizer, scheduler, epoch, metric history, random-number states and the resolved config.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aclnet.array_files import check_zip_expansion
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as plain containers and tensors (weights_only-safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by `rng_state`."""
    internal, version, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Serialise `payload` and write it atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """`torch.load(weights_only=True)`: tensors and plain containers only, no code runs; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    check_zip_expansion(path, "checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # not a pickle of known types at all
            raise InputError(f"{path}: not a readable checkpoint (truncated, corrupt or not a checkpoint)") from None
        # torch's own advice (load it with weights_only=False) would run the file's code: not repeated here
        raise InputError(f"{path}: refused: it holds objects other than tensors and plain containers, and loading "
                         "those could run code from the file; only checkpoints of weights are read") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc


def check_finite_weights(state: dict[str, Any], path: str | Path) -> None:
    """Refuse model weights with NaN or infinite values (a run that diverged), naming the first such tensor."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"{path}: the weights are not finite (NaN or infinite values in '{key}'); the run that "
                             "wrote this checkpoint diverged: use an earlier checkpoint")


def check_model_fits(wanted: dict[str, Any], given: dict[str, Any], checkpoint: str | Path) -> None:
    """Refuse a state of another model in one message: what differs, and the class counts of both."""
    missing = [k for k in wanted if k not in given]
    unexpected = [k for k in given if k not in wanted]
    reshaped = [k for k in wanted if k in given and hasattr(given[k], "shape") and given[k].shape != wanted[k].shape]
    if not (missing or unexpected or reshaped):
        return
    parts = [f"{len(x)} {what}" for x, what in ((reshaped, "tensors of another shape"), (missing, "missing"),
                                                 (unexpected, "unexpected")) if x]
    first = reshaped[0] if reshaped else (missing or unexpected)[0]
    detail = (f"'{first}' is {tuple(given[first].shape)} in the checkpoint, {tuple(wanted[first].shape)} here"
              if reshaped else f"e.g. '{first}'")
    key = "cls_head.fc.weight"
    counts = [f"{name} has {d[key].shape[0]} classes" for name, d in
              (("the checkpoint", given), ("this configuration", wanted)) if key in d]
    raise InputError(f"{checkpoint}: holds another model than this configuration builds: {', '.join(parts)} "
                     f"({detail}){'; ' + ', '.join(counts) if counts else ''}. Test it with the configuration "
                     "it was trained with (its config.yaml)")



def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read an aclnet checkpoint without executing code from it; errors name the file."""
    payload = read_torch_file(path, map_location)
    if not isinstance(payload, dict) or "model" not in payload:
        raise InputError(f"{path}: not an aclnet checkpoint (no 'model' entry)")
    return payload
