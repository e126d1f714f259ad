"""The small-dataset scaling rule (docs/method.md, section 5): K, the overlap threshold, the
memory size and the start epoch derived from the dataset instead of the released constants."""

from __future__ import annotations

import warnings

from aclnet.losses.common import is_int, require

RELEASED_MEMORY_SIZE = 512  # released NTU-60 / PKU-MMD size; NTU-120 and FineGYM use 1024, Kinetics 2048
RELEASED_CONSTANTS = {"k": 10, "overlap_threshold": 4, "start_epoch": 30, "memory_size": RELEASED_MEMORY_SIZE}
"""The released loss constants (NTU-60), used where neither the configuration nor the small-data rule sets one."""
RELEASED_EPOCHS = 150
START_FRACTION = RELEASED_CONSTANTS["start_epoch"] / RELEASED_EPOCHS
"""The share of the schedule before the inter loss switches on, as released (epoch 30 of 150)."""
_NAME = "scale_for_small_dataset"


def scale_for_small_dataset(num_classes: int, num_train_samples: int, batch_size: int, epochs: int, *,
                            default_memory_size: int = RELEASED_MEMORY_SIZE) -> dict[str, int]:
    """Hyper-parameters of both losses scaled to the dataset; keys are the loss constructors' arguments.

    k = max(2, round(C / 6)) (halves round up); overlap_threshold = round(0.4 k); memory_size = the
    largest multiple of the batch that is at most both a quarter of the training set and
    `default_memory_size` (the released value; at least one batch); start_epoch = max(1, round(0.2 epochs)).
    Warns when the memory exceeds a quarter of the training set.
    """
    for name, value in (("num_classes", num_classes), ("num_train_samples", num_train_samples),
                        ("batch_size", batch_size), ("epochs", epochs), ("default_memory_size", default_memory_size)):
        require(is_int(value) and value >= 1, f"{_NAME}: {name} must be a positive integer, got {value!r}")
    require(num_classes >= 2, f"{_NAME}: num_classes must be at least 2, got {num_classes}")
    k = max(2, (num_classes + 3) // 6)
    overlap_threshold = round(0.4 * k)
    memory_size = max(batch_size, min(default_memory_size, num_train_samples // 4) // batch_size * batch_size)
    start_epoch = max(1, round(START_FRACTION * epochs))
    if memory_size > num_train_samples // 4:
        warnings.warn(f"{_NAME}: {num_train_samples} training samples are fewer than four batches of "
                      f"{batch_size}; the intra memory ({memory_size}) holds more than a quarter of them",
                      UserWarning, stacklevel=2)
    return {"k": k, "overlap_threshold": overlap_threshold, "memory_size": memory_size,
            "start_epoch": start_epoch}
