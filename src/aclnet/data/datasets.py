"""PyTorch data plumbing: a dataset over samples and a pipeline, epoch-seeded samplers, loaders.

All randomness is a function of (seed, epoch, index) or (seed, epoch): an item's augmentation does
not depend on the number of workers or on the order items are fetched, and a resumed run draws the
same orders and augmentations as an uninterrupted one. Call `loader.set_epoch(epoch)` (the loader
of `make_loader`) before each epoch; it moves the sampler, the dataset and the worker seeds on.

Distributed runs: every rank builds the same base order from the same seed and keeps its shard
(`DistributedShardSampler`, padded like torch's DistributedSampler so shards have equal sizes). The
padding repeats a few items; evaluation removes the repeats with the returned sample indices.
Identity batches (`PKSampler`, P labels x K samples) shard by whole batches instead.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from aclnet.data.annotations import read_annotations
from aclnet.data.checks import require_int
from aclnet.data.sample import Sample
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
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch whose order the next iteration yields, from position `start` of it on (a run
        resumed mid-epoch skips what it has trained on without loading it)."""
        require_int("epoch", epoch, 0)
        require_int("start", start, 0)
        self.epoch = epoch
        self.start = start

    def indices(self) -> np.ndarray:
        """This epoch's order of dataset indices."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start:].tolist())

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


def resolve_world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank), each defaulting to the initialised process group; checked."""
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
    return num_replicas, rank


class PKSampler(EpochSampler):
    """Identity-balanced batches: every block of P x K consecutive indices is one batch of P
    distinct identities (labels) with K sequences each, identity by identity.

    An epoch holds as many samples as the dataset (at least one batch per P identities): it is made
    of rounds, each a pass over the identities in a random order cut into batches of P, the last
    batch of a round, when short, filled with identities drawn from those not already in it; so every
    identity is used every round and a few twice. For each identity in a batch, K of its
    sequences are drawn without replacement when it has at least K, with replacement otherwise.
    Everything is a function of (seed, epoch). Use it with a loader whose batch size is P x K.

    `distributed`: every rank draws the same epoch and keeps batches rank, rank + ranks, ...;
    the batches are extended cyclically to a multiple of the ranks (cut with `drop_last`).
    `num_replicas` and `rank` default to the initialised process group.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        *,
        identities_per_batch: int,
        sequences_per_identity: int,
        seed: int = 0,
        distributed: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(seed)
        require_int("identities_per_batch", identities_per_batch, 1)
        require_int("sequences_per_identity", sequences_per_identity, 1)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 1 or self.labels.size == 0:
            raise InputError("P x K sampling needs a non-empty list of labels")
        self.identities, inverse, self._counts = np.unique(self.labels, return_inverse=True, return_counts=True)
        if self.identities.size < identities_per_batch:
            raise InputError(
                f"P x K sampling with P={identities_per_batch} identities per batch needs at least "
                f"{identities_per_batch} identities; the data has {self.identities.size}"
            )
        self._grouped = np.argsort(inverse, kind="stable")  # sample indices, identity by identity
        self._starts = np.cumsum(self._counts) - self._counts
        self.p = identities_per_batch
        self.k = sequences_per_identity
        if not distributed and (num_replicas is not None or rank is not None):
            raise InputError("num_replicas and rank apply only with distributed=True")
        self.distributed = distributed
        self.num_replicas, self.rank = resolve_world(num_replicas, rank) if distributed else (1, 0)
        self.drop_last = drop_last
        if self.num_batches == 0:
            raise InputError(
                f"P x K sampling: {self.epoch_batches} batches per epoch cannot give each of "
                f"{self.num_replicas} ranks a batch with drop_last"
            )

    @property
    def round_batches(self) -> int:
        """Batches in one pass over the identities."""
        return -(-int(self.identities.size) // self.p)

    @property
    def epoch_batches(self) -> int:
        """Batches in one epoch over all ranks (before padding for the ranks): about the dataset's size."""
        return max(self.round_batches, -(-int(self.labels.size) // (self.p * self.k)))

    @property
    def num_batches(self) -> int:
        """Batches this rank yields per epoch."""
        if self.drop_last:
            return self.epoch_batches // self.num_replicas
        return -(-self.epoch_batches // self.num_replicas)

    def _epoch(self) -> np.ndarray:
        """All batches of the epoch, (epoch_batches, P, K) dataset indices."""
        rng = epoch_rng(self.seed, self.epoch)
        n, p, k = int(self.identities.size), self.p, self.k
        rounds = []
        for _ in range(-(-self.epoch_batches // self.round_batches)):
            order = rng.permutation(n)
            missing = self.round_batches * p - n
            if missing:
                last = order[n - (p - missing):]
                others = np.setdiff1d(np.arange(n), last)
                order = np.concatenate([order, rng.choice(others, missing, replace=False)])
            rounds.append(order)
        order = np.concatenate(rounds)[: self.epoch_batches * p]
        counts = self._counts[order]
        # enough sequences: a random order of each slot's sequences, the first K of them
        big = np.flatnonzero(counts >= k)
        size = counts[big]
        slot = np.repeat(np.arange(big.size), size)
        position = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        member = self._grouped[np.repeat(self._starts[order[big]], size) + position]
        shuffled = member[np.lexsort((rng.random(member.size), slot))]
        chosen = np.empty((order.size, k), dtype=np.int64)
        chosen[big] = shuffled[position < k].reshape(big.size, k)
        # too few: K draws with replacement
        small = np.flatnonzero(counts < k)
        draws = rng.integers(0, counts[small][:, None], size=(small.size, k))
        chosen[small] = self._grouped[self._starts[order[small]][:, None] + draws]
        return chosen.reshape(self.epoch_batches, p, k)

    def batches(self) -> np.ndarray:
        """This rank's batches of the current epoch, (num_batches, P x K) dataset indices."""
        batches = self._epoch().reshape(self.epoch_batches, self.p * self.k)
        if self.distributed:
            total = self.num_batches * self.num_replicas
            batches = batches[:total] if self.drop_last else batches[np.arange(total) % len(batches)]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def indices(self) -> np.ndarray:
        return self.batches().reshape(-1)

    def __len__(self) -> int:
        return self.num_batches * self.p * self.k


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
        num_replicas, rank = resolve_world(num_replicas, rank)
        self.base = base
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        super().set_epoch(epoch, start)
        self.base.set_epoch(epoch)

    def indices(self) -> np.ndarray:
        order = self.base.indices()
        total = self.num_replicas * len(self)
        order = order[:total] if self.drop_last else np.resize(order, total)
        return order[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        size = len(self.base)
        return size // self.num_replicas if self.drop_last else -(-size // self.num_replicas)


def _ignore_ctrl_c(worker_id: int) -> None:
    """Workers leave Ctrl-C (sent to the whole process group by a terminal) to the main process, which stops
    training at a step boundary and then ends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        super().__init__(dataset, generator=torch.Generator(), worker_init_fn=_ignore_ctrl_c, **kwargs)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Move sampler and dataset to `epoch` (its batches from `start_batch` on); reseed the workers' base
        seed from (seed, epoch, rank). Skipped batches are not loaded, and the others come out as they would
        in the whole epoch: each sample's augmentation depends on (seed, epoch, index) alone."""
        require_int("start_batch", start_batch, 0)
        if start_batch and not isinstance(self.sampler, EpochSampler):
            raise InputError("starting an epoch mid-way needs an EpochSampler")
        if isinstance(self.sampler, EpochSampler):
            self.sampler.set_epoch(epoch, start_batch * (self.batch_size or 1))
        elif hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        sharded = isinstance(self.sampler, DistributedShardSampler) or getattr(self.sampler, "distributed", False)
        rank = [self.sampler.rank] if sharded else []
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
    sequences_per_identity: int | None = None,
) -> EpochDataLoader:
    """Batches (N, clips, M, T, V, C) float32, labels (N,) and sample indices (N,), int64.

    `balanced` draws class-balanced epochs (it implies a random order); `distributed` keeps this
    rank's shard (world from the process group unless `num_replicas`/`rank` are given).
    `sequences_per_identity` (K) makes identity batches: P = batch_size // K labels with K
    samples each (`PKSampler`; distributed ranks take whole batches); batch_size must be a
    multiple of K and the data must have at least P labels.
    """
    require_int("batch_size", batch_size, 1)
    require_int("num_workers", num_workers, 0)
    if balanced and not shuffle:
        raise InputError("balanced sampling draws a random order; it cannot be combined with shuffle=False")
    if not distributed and (num_replicas is not None or rank is not None):
        raise InputError("num_replicas and rank apply only with distributed=True")
    sampler: EpochSampler
    if sequences_per_identity is not None:
        sampler = _identity_sampler(
            dataset, batch_size, sequences_per_identity, shuffle=shuffle, balanced=balanced, seed=seed,
            distributed=distributed, num_replicas=num_replicas, rank=rank, drop_last=drop_last,
        )
    else:
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


def _identity_sampler(
    dataset: SkeletonDataset,
    batch_size: int,
    k: int,
    *,
    shuffle: bool,
    balanced: bool,
    seed: int,
    distributed: bool,
    num_replicas: int | None,
    rank: int | None,
    drop_last: bool,
) -> PKSampler:
    """make_loader's P x K sampler, its options checked with messages naming the values."""
    require_int("sequences_per_identity", k, 1)
    if batch_size % k:
        raise InputError(
            f"batch_size={batch_size} is not a multiple of sequences_per_identity={k}; "
            "identity batches hold P identities x K sequences"
        )
    if balanced or not shuffle:
        raise InputError(
            "sequences_per_identity draws its own random identity batches; it cannot be combined "
            "with balanced=True or shuffle=False"
        )
    p = batch_size // k
    identities = int(np.unique(dataset.labels).size)
    if identities < p:
        raise InputError(
            f"batch_size={batch_size} with sequences_per_identity={k} needs P={p} identities per batch; "
            f"the data has {identities}"
        )
    return PKSampler(
        dataset.labels, identities_per_batch=p, sequences_per_identity=k, seed=seed,
        distributed=distributed, num_replicas=num_replicas, rank=rank, drop_last=drop_last,
    )
