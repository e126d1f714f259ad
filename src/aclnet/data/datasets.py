"""PyTorch data plumbing: a dataset over samples and a pipeline, epoch-seeded samplers, loaders.

All randomness is a function of (seed, epoch, index) or (seed, epoch): an item's augmentation does
not depend on the number of workers or on the order items are fetched, and a resumed run draws the
same orders and augmentations as an uninterrupted one. Call `loader.set_epoch(epoch)` (the loader
of `make_loader`) before each epoch; it moves the sampler, the dataset and the worker seeds on.

Distributed runs: every rank builds the same base order from the same seed and keeps its shard
(`DistributedShardSampler`, padded like torch's DistributedSampler so shards have equal sizes). The
padding repeats a few items; evaluation removes the repeats with the returned sample indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from aclnet.data.annotations import read_annotations
from aclnet.data.sample import Sample
from aclnet.data.synthetic import require_int
from aclnet.errors import InputError

Pipeline = Callable[[Sample, np.random.Generator], np.ndarray]


def epoch_rng(seed: int, epoch: int, *keys: int) -> np.random.Generator:
    """A NumPy generator determined by (seed, epoch, *keys) alone, through a SeedSequence."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, *keys]))


class SkeletonDataset(Dataset):
    """Samples turned into model input by a pipeline; item i is (data, label, i).

    `data` is a float32 tensor (clips, M, T, V, C): the pipeline's output for the sample and a
    generator seeded from (seed, epoch, i).
    """

    def __init__(self, samples: Sequence[Sample], pipeline: Pipeline, *, seed: int = 0) -> None:
        require_int("seed", seed, 0)
        self.samples = list(samples)
        self.pipeline = pipeline
        self.seed = seed
        self.epoch = 0
        self.labels = np.array([s.label for s in self.samples], dtype=np.int64)

    @classmethod
    def from_annotations(cls, path: str | Path, split: str, pipeline: Pipeline, *, seed: int = 0) -> SkeletonDataset:
        """The samples of one split of an annotation file (read safely and validated)."""
        sample_set, _ = read_annotations(path)
        return cls(sample_set.split(split), pipeline, seed=seed)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations the next items get."""
        require_int("epoch", epoch, 0)
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        sample = self.samples[index]
        data = self.pipeline(sample, epoch_rng(self.seed, self.epoch, index))
        if not isinstance(data, np.ndarray) or data.ndim != 5:
            shape = getattr(data, "shape", type(data).__name__)
            raise InputError(
                f"sample '{sample.sample_id}': the pipeline returned {shape}, expected an array "
                "(clips, persons, frames, joints, channels)"
            )
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)), int(sample.label), index


class EpochSampler(Sampler[int]):
    """A sampler whose order is a function of (seed, epoch) alone; subclasses define `indices`."""

    def __init__(self, seed: int) -> None:
        require_int("seed", seed, 0)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        require_int("epoch", epoch, 0)
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        """This epoch's order of dataset indices."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        raise NotImplementedError


class OrderSampler(EpochSampler):
    """Every index once per epoch: shuffled by (seed, epoch), or in order."""

    def __init__(self, size: int, *, shuffle: bool = True, seed: int = 0) -> None:
        super().__init__(seed)
        require_int("size", size, 0)
        self.size = size
        self.shuffle = shuffle

    def indices(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return epoch_rng(self.seed, self.epoch).permutation(self.size)

    def __len__(self) -> int:
        return self.size


class BalancedSampler(EpochSampler):
    """Class-balanced epochs: each class present in `labels` is drawn exactly `samples_per_class` times.

    A class's samples are used once each, in a random order, before any repeats; the default
    `samples_per_class` is the dataset size divided by the number of classes, rounded up.
    """

    def __init__(
        self, labels: Sequence[int] | np.ndarray, *, samples_per_class: int | None = None, seed: int = 0
    ) -> None:
        super().__init__(seed)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 1 or self.labels.size == 0:
            raise InputError("balanced sampling needs a non-empty list of labels")
        _, self._class_of, self._counts = np.unique(self.labels, return_inverse=True, return_counts=True)
        default = -(-self.labels.size // self._counts.size)
        self.samples_per_class = default if samples_per_class is None else samples_per_class
        require_int("samples_per_class", self.samples_per_class, 1)

    def indices(self) -> np.ndarray:
        rng = epoch_rng(self.seed, self.epoch)
        per_class = self.samples_per_class
        copies = -(-per_class // self._counts)  # passes over each class's samples
        repeat = copies[self._class_of]
        index = np.repeat(np.arange(self.labels.size), repeat)
        first = np.repeat(np.cumsum(repeat) - repeat, repeat)
        key = (np.arange(index.size) - first) + rng.random(index.size)  # pass number + random order
        cls = self._class_of[index]
        order = np.lexsort((key, cls))
        start = np.repeat(np.cumsum(copies * self._counts) - copies * self._counts, copies * self._counts)
        chosen = index[order][np.arange(index.size) - start < per_class]
        return chosen[rng.permutation(chosen.size)]

    def __len__(self) -> int:
        return self.samples_per_class * int(self._counts.size)


class DistributedShardSampler(EpochSampler):
    """One rank's shard of a base sampler's order: padded (or cut) to a multiple of the ranks.

    Like torch's DistributedSampler: the order is extended cyclically to `ceil(n / ranks) * ranks`
    (or cut to `floor(n / ranks) * ranks` with `drop_last`) and rank r takes positions r, r + ranks, ...
    `num_replicas` and `rank` default to the initialised process group.
    """

    def __init__(
        self,
        base: EpochSampler,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(base.seed)
        if num_replicas is None or rank is None:
            if not (dist.is_available() and dist.is_initialized()):
                raise InputError(
                    "distributed sampling needs an initialised process group (run under torchrun) "
                    "or explicit num_replicas and rank"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        require_int("num_replicas", num_replicas, 1)
        require_int("rank", rank, 0)
        if rank >= num_replicas:
            raise InputError(f"rank={rank}: expected a rank in 0..{num_replicas - 1}")
        self.base = base
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.base.set_epoch(epoch)

    def indices(self) -> np.ndarray:
        order = self.base.indices()
        total = self.num_replicas * len(self)
        order = order[:total] if self.drop_last else np.resize(order, total)
        return order[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        size = len(self.base)
        return size // self.num_replicas if self.drop_last else -(-size // self.num_replicas)


class EpochDataLoader(DataLoader):
    """A DataLoader whose sampler, dataset and worker seeds follow `set_epoch`.

    PyTorch seeds Python's, NumPy's and torch's global generators in worker w with
    `base_seed + w` (NumPy through a SeedSequence), drawing `base_seed` from the loader's
    generator; reseeding that generator from (seed, epoch) makes worker randomness repeat too.
    Workers are started afresh each epoch (persistent workers would keep a stale dataset epoch).
    """

    def __init__(self, dataset: Dataset, *, seed: int, **kwargs: Any) -> None:
        if kwargs.get("persistent_workers"):
            raise InputError("persistent workers would keep the dataset's first epoch; they are not supported")
        require_int("seed", seed, 0)
        super().__init__(dataset, generator=torch.Generator(), **kwargs)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Move sampler and dataset to `epoch`; reseed the workers' base seed from (seed, epoch, rank)."""
        for part in (self.sampler, self.dataset):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)
        rank = [self.sampler.rank] if isinstance(self.sampler, DistributedShardSampler) else []
        state = np.random.SeedSequence([self.seed, epoch, *rank]).generate_state(1, np.uint64)[0]
        self.generator.manual_seed(int(state))


def make_loader(
    dataset: SkeletonDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    balanced: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    distributed: bool = False,
    drop_last: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
    pin_memory: bool = False,
) -> EpochDataLoader:
    """Batches (N, clips, M, T, V, C) float32, labels (N,) and sample indices (N,), int64.

    `balanced` draws class-balanced epochs (it implies a random order); `distributed` keeps this
    rank's shard (world from the process group unless `num_replicas`/`rank` are given).
    """
    require_int("batch_size", batch_size, 1)
    require_int("num_workers", num_workers, 0)
    if balanced and not shuffle:
        raise InputError("balanced sampling draws a random order; it cannot be combined with shuffle=False")
    if not distributed and (num_replicas is not None or rank is not None):
        raise InputError("num_replicas and rank apply only with distributed=True")
    base: EpochSampler = (
        BalancedSampler(dataset.labels, seed=seed)
        if balanced
        else OrderSampler(len(dataset), shuffle=shuffle, seed=seed)
    )
    sampler = DistributedShardSampler(base, num_replicas=num_replicas, rank=rank) if distributed else base
    return EpochDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        seed=seed,
    )
