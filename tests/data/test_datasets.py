"""Dataset plumbing: per-item seeding, loaders that repeat exactly across workers and epochs,
class-balanced and distributed samplers (against torch's DistributedSampler), and errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from aclnet.data.annotations import write_annotations
from aclnet.data.datasets import (
    BalancedSampler,
    DistributedShardSampler,
    EpochDataLoader,
    OrderSampler,
    SkeletonDataset,
    epoch_rng,
    make_loader,
)
from aclnet.data.sample import Sample, SampleSet
from aclnet.data.synthetic import make_action_dataset
from aclnet.errors import InputError

FRAMES = 20


class CropPipeline:
    """A trivial random pipeline: a random window of FRAMES frames (zero padded), jitter, one clip."""

    def __call__(self, sample: Sample, rng: np.random.Generator) -> np.ndarray:
        kp = sample.keypoint
        start = int(rng.integers(0, max(1, kp.shape[1] - FRAMES + 1)))
        window = np.zeros((kp.shape[0], FRAMES) + kp.shape[2:], dtype=np.float32)
        piece = kp[:, start : start + FRAMES]
        window[:, : piece.shape[1]] = piece
        return (window + rng.normal(0.0, 0.01, window.shape).astype(np.float32))[None]


class GlobalNumpyPipeline:
    """Uses NumPy's global generator (as careless code does): only worker seeding keeps it repeatable."""

    def __call__(self, sample: Sample, rng: np.random.Generator) -> np.ndarray:
        return np.full((1, 1, 1, 1, 1), np.random.random(), dtype=np.float32)


@pytest.fixture(scope="module")
def sample_set() -> SampleSet:
    return make_action_dataset(num_classes=4, samples_per_class=9, num_subjects=3, frames=(16, 30), seed=5)


@pytest.fixture
def dataset(sample_set: SampleSet) -> SkeletonDataset:
    return SkeletonDataset(sample_set.samples, CropPipeline(), seed=11)


def run_epoch(loader: torch.utils.data.DataLoader, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All batches of one epoch, concatenated."""
    loader.set_epoch(epoch)
    data, labels, indices = zip(*loader)
    return torch.cat(data), torch.cat(labels), torch.cat(indices)


# ------------------------------------------------------------------ dataset


def test_item_is_the_pipeline_output_under_the_seed_epoch_index_generator(dataset: SkeletonDataset) -> None:
    dataset.set_epoch(3)
    data, label, index = dataset[7]
    expected = CropPipeline()(dataset.samples[7], epoch_rng(11, 3, 7))
    assert data.dtype == torch.float32 and tuple(data.shape) == (1, 1, FRAMES, 25, 3)
    np.testing.assert_array_equal(data.numpy(), expected)
    assert label == dataset.samples[7].label and index == 7
    assert dataset.labels.tolist() == [s.label for s in dataset.samples]


def test_same_epoch_repeats_and_another_epoch_or_seed_differs(dataset: SkeletonDataset, sample_set: SampleSet) -> None:
    dataset.set_epoch(0)
    first = dataset[4][0]
    dataset.set_epoch(1)
    other_epoch = dataset[4][0]
    dataset.set_epoch(0)
    assert torch.equal(dataset[4][0], first)
    assert not torch.equal(other_epoch, first)
    assert not torch.equal(SkeletonDataset(sample_set.samples, CropPipeline(), seed=12)[4][0], first)


def test_pipeline_with_a_wrong_output_is_an_input_error(sample_set: SampleSet) -> None:
    bad = SkeletonDataset(sample_set.samples, lambda sample, rng: sample.keypoint)  # 4 axes, no clip axis
    with pytest.raises(InputError, match=sample_set.samples[0].sample_id):
        bad[0]


def test_from_annotations_reads_one_split(tmp_path, sample_set: SampleSet) -> None:
    path = tmp_path / "synthetic.pkl"
    write_annotations(sample_set, path)
    loaded = SkeletonDataset.from_annotations(path, "val", CropPipeline(), seed=11)
    assert [s.sample_id for s in loaded.samples] == sample_set.splits["val"]
    original = SkeletonDataset(sample_set.split("val"), CropPipeline(), seed=11)
    assert torch.equal(loaded[2][0], original[2][0])
    with pytest.raises(InputError, match="unknown split"):
        SkeletonDataset.from_annotations(path, "nope", CropPipeline())


@pytest.mark.parametrize(("name", "value"), [("seed", -1), ("seed", 1.5), ("epoch", -2)])
def test_bad_seed_or_epoch_is_an_input_error(sample_set: SampleSet, name: str, value: object) -> None:
    with pytest.raises(InputError, match=name):
        if name == "seed":
            SkeletonDataset(sample_set.samples, CropPipeline(), seed=value)
        else:
            SkeletonDataset(sample_set.samples, CropPipeline()).set_epoch(value)


# ------------------------------------------------------------------ loaders


def test_loader_batches_have_the_documented_shapes(dataset: SkeletonDataset) -> None:
    data, labels, indices = next(iter(make_loader(dataset, 8, seed=2)))
    assert tuple(data.shape) == (8, 1, 1, FRAMES, 25, 3) and data.dtype == torch.float32
    assert labels.dtype == torch.int64 and indices.dtype == torch.int64 and labels.shape == indices.shape == (8,)
    assert labels.tolist() == [dataset.samples[i].label for i in indices.tolist()]


def test_loader_repeats_exactly_across_worker_counts_and_epochs(dataset: SkeletonDataset) -> None:
    single = make_loader(dataset, 5, seed=4, num_workers=0)
    workers = make_loader(dataset, 5, seed=4, num_workers=2)
    epoch0 = run_epoch(single, 0)
    for a, b in zip(epoch0, run_epoch(workers, 0)):
        assert torch.equal(a, b)
    epoch1 = run_epoch(workers, 1)
    assert not torch.equal(epoch0[2], epoch1[2])  # another order
    assert sorted(epoch0[2].tolist()) == sorted(epoch1[2].tolist()) == list(range(len(dataset)))
    for a, b in zip(epoch1, run_epoch(single, 1)):
        assert torch.equal(a, b)
    for a, b in zip(epoch0, run_epoch(single, 0)):  # back to epoch 0, as a resumed run would
        assert torch.equal(a, b)
    same_item = epoch1[0][epoch1[2].argsort()] - epoch0[0][epoch0[2].argsort()]
    assert same_item.abs().amax(dim=(1, 2, 3, 4, 5)).min() > 0  # every item augmented differently


@pytest.mark.parametrize("workers", [0, 2])
def test_an_epoch_started_mid_way_yields_the_rest_of_the_whole_epoch(dataset: SkeletonDataset, workers: int) -> None:
    loader = make_loader(dataset, 5, seed=4, num_workers=workers)
    loader.set_epoch(3)
    whole = list(loader)
    loader.set_epoch(3, start_batch=2)
    rest = list(loader)
    assert len(rest) == len(whole) - 2
    for expected, got in zip(whole[2:], rest):
        for a, b in zip(expected, got):
            assert torch.equal(a, b)
    loader.set_epoch(3)  # the next epoch starts at its beginning again
    assert len(list(loader)) == len(whole)


def test_a_pk_epoch_started_mid_way_yields_the_rest_of_the_whole_epoch(dataset: SkeletonDataset) -> None:
    loader = make_loader(dataset, 4, seed=1, sequences_per_identity=2)
    loader.set_epoch(5)
    whole = list(loader)
    loader.set_epoch(5, start_batch=1)
    assert [b[2].tolist() for b in loader] == [b[2].tolist() for b in whole[1:]]


def test_worker_seeding_makes_global_numpy_randomness_repeat(sample_set: SampleSet) -> None:
    dataset = SkeletonDataset(sample_set.samples, GlobalNumpyPipeline())
    loader = make_loader(dataset, 4, seed=9, num_workers=2, shuffle=False)
    first, again = run_epoch(loader, 0)[0], run_epoch(loader, 0)[0]
    assert torch.equal(first, again)
    assert not torch.equal(first, run_epoch(loader, 1)[0])
    assert not torch.equal(first, run_epoch(make_loader(dataset, 4, seed=10, num_workers=2, shuffle=False), 0)[0])


def test_unshuffled_loader_keeps_the_dataset_order(dataset: SkeletonDataset) -> None:
    _, labels, indices = run_epoch(make_loader(dataset, 7, shuffle=False), 3)
    assert indices.tolist() == list(range(len(dataset)))
    _, _, dropped = run_epoch(make_loader(dataset, 7, shuffle=False, drop_last=True), 0)
    assert len(dropped) == (len(dataset) // 7) * 7


def test_balanced_loader_draws_classes_equally(sample_set: SampleSet) -> None:
    samples = [s for s in sample_set.samples if s.label != 2 or s.meta["subject"] == 1]  # class 2 rare
    counts = Counter(s.label for s in samples)
    assert counts[2] < counts[0]
    dataset = SkeletonDataset(samples, CropPipeline())
    _, labels, indices = run_epoch(make_loader(dataset, 6, balanced=True, seed=1), 0)
    per_class = -(-len(samples) // 4)
    assert Counter(labels.tolist()) == {c: per_class for c in range(4)}
    assert labels.tolist() == [samples[i].label for i in indices.tolist()]


def test_distributed_loaders_split_an_epoch_between_ranks(dataset: SkeletonDataset) -> None:
    parts = [run_epoch(make_loader(dataset, 4, seed=3, distributed=True, num_replicas=3, rank=r), 2) for r in range(3)]
    shards = [p[2].tolist() for p in parts]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(dataset) // 3
    assert sorted(sum(shards, [])) == list(range(len(dataset)))
    # each rank's items are the ones a single-process loader produces for them
    data, _, indices = run_epoch(make_loader(dataset, 4, seed=3), 2)
    by_index = {int(i): d for i, d in zip(indices, data)}
    for part in parts:
        for d, i in zip(part[0], part[2].tolist()):
            assert torch.equal(d, by_index[i])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"balanced": True, "shuffle": False}, "shuffle=False"),
        ({"distributed": True}, "process group"),
        ({"num_replicas": 2, "rank": 0}, "distributed=True"),
        ({"distributed": True, "num_replicas": 2, "rank": 2}, "rank=2"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_bad_loader_options_are_input_errors(
    dataset: SkeletonDataset, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        make_loader(dataset, 4, **options)
    with pytest.raises(InputError, match="batch_size"):
        make_loader(dataset, 0)


def test_persistent_workers_are_refused(dataset: SkeletonDataset) -> None:
    with pytest.raises(InputError, match="persistent workers"):
        EpochDataLoader(dataset, seed=0, num_workers=1, persistent_workers=True)


# ------------------------------------------------------------------ samplers


def test_order_sampler_is_a_permutation_per_epoch_from_the_seed() -> None:
    sampler = OrderSampler(13, seed=5)
    first = list(sampler)
    assert sorted(first) == list(range(13)) and len(sampler) == 13
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(13)) and second != first
    sampler.set_epoch(0)
    assert list(sampler) == first == list(OrderSampler(13, seed=5))
    assert list(OrderSampler(13, seed=6)) != first
    assert list(OrderSampler(4, shuffle=False)) == [0, 1, 2, 3]


def test_balanced_sampler_counts_are_exact_and_repeats_come_last() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1 + [5] * 6)  # class 5 present, 3 and 4 absent
    sampler = BalancedSampler(labels, seed=3)
    per_class = -(-len(labels) // 4)
    order = sampler.indices()
    assert len(sampler) == len(order) == 4 * per_class
    assert Counter(labels[order].tolist()) == {0: per_class, 1: per_class, 2: per_class, 5: per_class}
    uses = Counter(order.tolist())
    for cls in (0, 1, 2, 5):
        members = np.flatnonzero(labels == cls)
        times = [uses.get(int(i), 0) for i in members]
        assert max(times) - min(times) <= 1  # every sample once before any sample twice
    sampler.set_epoch(1)
    assert not np.array_equal(sampler.indices(), order)
    sampler.set_epoch(0)
    np.testing.assert_array_equal(sampler.indices(), order)
    custom = BalancedSampler(labels, samples_per_class=2, seed=3)
    assert Counter(labels[custom.indices()].tolist()) == {0: 2, 1: 2, 2: 2, 5: 2}
    with pytest.raises(InputError, match="samples_per_class"):
        BalancedSampler(labels, samples_per_class=0)
    with pytest.raises(InputError, match="non-empty"):
        BalancedSampler([])


@pytest.mark.parametrize("size", [10, 12, 2])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shards_match_torch_distributed_sampler(size: int, drop_last: bool) -> None:
    replicas = 3
    for rank in range(replicas):
        ours = DistributedShardSampler(
            OrderSampler(size, shuffle=False), num_replicas=replicas, rank=rank, drop_last=drop_last
        )
        reference = DistributedSampler(
            range(size), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last
        )
        assert list(ours) == list(reference) and len(ours) == len(reference)


def test_shards_are_disjoint_cover_the_epoch_and_pad_from_its_start() -> None:
    base = OrderSampler(10, seed=8)
    shards = [DistributedShardSampler(base, num_replicas=4, rank=r) for r in range(4)]
    for shard in shards:
        shard.set_epoch(5)
    lists = [list(s) for s in shards]
    order = base.indices().tolist()
    assert all(len(x) == 3 for x in lists)
    merged = [lists[r][k] for k in range(3) for r in range(4)]  # rank r holds positions r, r + 4, ...
    assert merged == order + order[:2]


def test_balanced_shards_together_are_the_balanced_epoch() -> None:
    labels = np.repeat(np.arange(3), [7, 2, 4])
    base = BalancedSampler(labels, seed=2)
    shards = [DistributedShardSampler(base, num_replicas=2, rank=r) for r in range(2)]
    for shard in shards:
        shard.set_epoch(4)
    base.set_epoch(4)
    order = base.indices().tolist()  # 3 classes x 5 draws = 15, padded to 16 for two ranks
    assert [len(s) for s in shards] == [8, 8]
    assert sorted(sum((list(s) for s in shards), [])) == sorted(order + order[:1])
