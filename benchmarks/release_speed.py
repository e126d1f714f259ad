"""Speed of our losses and NTU pipeline against the authors' released code, side by side in one run.

The release (github.com/worker1h/ACLNet, folder acl/) needs Python 3.7 and mmcv 1.5; its losses and pipeline
transforms are plain PyTorch/NumPy and are imported from a checkout by file path, as package `acl_release`
(never shadowing ours), with stubs for the mmcv parts they import. No release code is in this repository.

1. One training step (forward + backward) of both losses, inter loss on (families built), at the release's
   NTU-60 settings (its heads/base.py: 60 classes, a Linear 625 -> 256 in each loss, memory 512), batch 16 (its
   per-GPU batch) and 64. Ours include two equal nn.Linear; both sides start from the same weights,
   prototypes, statistics and batches, and their losses are checked to agree.
2. Family rebuilding, 60 and 120 classes: the release's get_neighborhood (per-class Python loops) against
   `build_families`; the families are checked to be identical.
3. The training pipeline of acl/configs/ntu60_xsub/j.py (less Collect and ToTensor, which need mmcv) against
   `build_pipeline(ntu_steps("j"))` on the samples of benchmarks/data_pipeline.py. Given a RandomState seeded
   as the release's global np.random, ours makes the same draws; the outputs are checked to agree.

One CPU thread. Run from the repository root (skipped, status 0, without a checkout):

    python benchmarks/release_speed.py --release /path/to/ACLNet   (default: $ACLNET_RELEASE)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import torch
from data_pipeline import LAYOUT, make_samples, samples_per_second  # benchmarks/ is the script's folder
from torch import nn

from aclnet.data.pipeline import build_pipeline, ntu_steps
from aclnet.data.sample import Sample
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss
from aclnet.losses.families import build_families
from losses import batches, sparse_counts, timed

CLASSES, TOPOLOGY, DIM, MEMORY = 60, 625, 256, 512  # the release's SimpleHead with data_cfg='ntu60'
K, THRESHOLD, START_EPOCH = 10, 4, 30  # the release's fixed top-10, coincidence_count and start_epoch
PACKAGE = "acl_release"
FILES = {  # relative to acl/, in import order
    "inter": "aclnet/models/losses/Inter_Affinitive_Contrastive_Loss.py",
    "intra": "aclnet/models/losses/Intra_Affinitive_Contrastive_Loss.py",
    **{name: f"aclnet/datasets/pipelines/{name}.py" for name in ("compose", "formatting", "pose_related", "sampling")},
}
CONFIG = "configs/ntu60_xsub/j.py"
NEEDS_MMCV = ("Collect", "ToTensor")
CHECKED_SAMPLES = 8


def release_root(path: str | None) -> Path | None:
    """The checkout's acl/ folder, or None (the reason printed) when no path is given or files are missing."""
    if not path:
        print("skipped: no release checkout; give --release PATH or set ACLNET_RELEASE")
        return None
    root = Path(path) / "acl" if (Path(path) / "acl").is_dir() else Path(path)
    missing = [name for name in [*FILES.values(), CONFIG] if not (root / name).is_file()]
    if missing:
        print(f"skipped: {root} lacks {len(missing)} release files, e.g. {missing[0]}")
        return None
    return root


def stub(name: str, **attributes: object) -> ModuleType:
    """A package standing in for a module that the release imports."""
    module = ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attributes)
    return module


def load_release(root: Path) -> SimpleNamespace:
    """The release's two loss classes and its NTU-60 joint training pipeline, composed from the config."""
    registry = SimpleNamespace(register_module=lambda *args, **kwargs: lambda cls: cls)
    stubs = {name: stub(name) for name in (PACKAGE, f"{PACKAGE}.datasets", f"{PACKAGE}.datasets.pipelines", "mmcv")}
    stubs |= {f"{PACKAGE}.datasets.builder": stub("builder", PIPELINES=registry),
              "mmcv.utils": stub("mmcv.utils", build_from_cfg=None),  # None: never called by the code timed
              "mmcv.parallel": stub("mmcv.parallel", DataContainer=None),
              "aclnet.utils": stub("aclnet.utils", warning_r0=print)}  # sampling.py imports it absolutely
    names = {key: f"{PACKAGE}.{path[len('aclnet/'):-len('.py')].replace('/', '.')}" for key, path in FILES.items()}
    saved = {name: sys.modules.get(name) for name in [*stubs, *names.values()]}
    sys.modules.update(stubs)
    loaded = {}
    try:
        for key, path in FILES.items():  # registered, so that the relative imports between them resolve
            spec = importlib.util.spec_from_file_location(names[key], root / path)
            assert spec is not None and spec.loader is not None
            loaded[key] = sys.modules[names[key]] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded[key])
    finally:  # sys.modules as before; the loaded classes keep what they use
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    transforms = {**vars(loaded["sampling"]), **vars(loaded["pose_related"])}
    config = [dict(step) for step in runpy.run_path(str(root / CONFIG))["train_pipeline"]]
    steps = [transforms[step.pop("type")](**step) for step in config if step["type"] not in NEEDS_MMCV]
    return SimpleNamespace(inter=loaded["inter"].Inter_Affinitive_Contrastive_Loss,
                           intra=loaded["intra"].Intra_Affinitive_Contrastive_Loss,
                           pipeline=loaded["compose"].Compose(steps), steps=[type(s).__name__ for s in steps])


def topology_batches(count: int, batch: int, generator: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
    """Backbone topology features (batch, 625), labels and logits (about half the samples right)."""
    return batches(count, generator, batch=batch, classes=CLASSES, dim=TOPOLOGY)


def same_families(families: torch.Tensor, lists: list[list[int]]) -> bool:
    """Whether our family matrix holds the release's (sorted) affinitive lists."""
    return [torch.nonzero(row).flatten().tolist() for row in families] == lists


def loss_step(release: SimpleNamespace, batch: int, steps: int, release_steps: int) -> tuple[float, float, float]:
    """ms per step of the release's losses and ours, and the largest relative difference of the losses."""
    generator = torch.Generator().manual_seed(batch)
    torch.manual_seed(0)
    theirs_inter, theirs_intra = release.inter(CLASSES, TOPOLOGY, DIM), release.intra(CLASSES, MEMORY, TOPOLOGY, DIM)
    inter = InterClassAffinityLoss(CLASSES, DIM, k=K, overlap_threshold=THRESHOLD, start_epoch=START_EPOCH)
    intra = IntraClassMarginLoss(MEMORY, DIM)
    projections = [nn.Linear(TOPOLOGY, DIM), nn.Linear(TOPOLOGY, DIM)]  # the release's cl_fc weights
    for projection, loss in zip(projections, (theirs_inter, theirs_intra)):
        projection.load_state_dict(loss.cl_fc.state_dict())
    inter.prototypes.copy_(theirs_inter.avg_f.T)
    counts = sparse_counts(CLASSES, generator)
    inter.confusion.copy_(counts)
    theirs_inter.Neighborhood_Bank = [dict(enumerate(row)) for row in counts.tolist()]
    inter.set_epoch(START_EPOCH + 1)
    theirs_inter.current_epoch = START_EPOCH  # its epoch hook moves it to epoch 31 and switches the loss on
    theirs_inter.save_list()

    def ours(features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return inter(projections[0](features), labels, logits) + intra(projections[1](features), labels)

    def theirs(features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return theirs_inter(features, labels, logits).mean() + theirs_intra(features, labels).mean()

    def run(loss_fn: Callable[..., torch.Tensor], data: tuple[torch.Tensor, ...]) -> torch.Tensor:
        features, labels, logits = data
        loss = loss_fn(features.clone().requires_grad_(True), labels, logits)
        loss.backward()
        return loss.detach()

    # Fill the memories; the first step builds the families.
    for data in topology_batches(MEMORY // batch, batch, generator):
        run(ours, data)
        run(theirs, data)
    assert same_families(inter.families, theirs_inter.affinitive_list), "families differ after the first step"
    timed_batches = topology_batches(steps, batch, generator)
    fast, fast_values = timed(lambda i: run(ours, timed_batches[i]), steps)
    slow, slow_values = timed(lambda i: run(theirs, timed_batches[i]), release_steps)
    difference = max(abs(a - b) / abs(b) for a, b in zip(fast_values, slow_values))
    assert difference < 1e-4, f"losses differ by {difference:.1e} (relative) at batch {batch}"
    return slow * 1e3, fast * 1e3, difference


def rebuild(release: SimpleNamespace, classes: int, repeats: int, release_repeats: int) -> tuple[float, float]:
    """ms per family rebuild of the release and ours from the same statistics (the families must match)."""
    counts = sparse_counts(classes, torch.Generator().manual_seed(classes))
    theirs = release.inter(classes, TOPOLOGY, DIM)
    theirs.Neighborhood_Bank = [dict(enumerate(row)) for row in counts.tolist()]
    labels = torch.zeros(1, dtype=torch.long)

    def release_rebuild(_: int) -> int:
        theirs.save_state = True  # as after the previous rebuild: save_list() clears the lists, asks for a new one
        theirs.save_list()
        theirs.get_neighborhood(labels)
        return len(theirs.affinitive_list)

    release_rebuild(0)
    families, _ = build_families(counts, K, THRESHOLD, "released")
    assert same_families(families, theirs.affinitive_list), f"families differ for {classes} classes"
    fast, _ = timed(lambda _: build_families(counts, K, THRESHOLD, "released")[0].sum(), repeats)
    slow, _ = timed(release_rebuild, release_repeats)
    return slow * 1e3, fast * 1e3


def pipeline_rates(release: SimpleNamespace, samples: list[Sample], repeats: int) -> tuple[float, float, float]:
    """Samples/s of the release's pipeline and ours, and their largest difference with the same draws."""
    ours = build_pipeline(ntu_steps("j"), LAYOUT, test_mode=False)

    def theirs(sample: Sample, rng: np.random.Generator | None = None) -> np.ndarray:
        record = {"keypoint": sample.keypoint, "total_frames": sample.keypoint.shape[1], "label": sample.label}
        return release.pipeline(record)["keypoint"]

    difference = 0.0
    for seed, sample in enumerate(samples[:CHECKED_SAMPLES]):
        np.random.seed(seed)
        expected = theirs(sample)
        got = ours(sample, np.random.RandomState(seed))  # a RandomState: the release's draws, in its order
        assert got.shape == expected.shape == (1, 2, 100, 25, 3), (got.shape, expected.shape)
        difference = max(difference, float(np.abs(got - expected).max()))
    assert difference < 1e-4, f"pipeline outputs differ by {difference:.1e}"
    np.random.seed(0)
    slow = samples_per_second(theirs, samples, repeats)
    fast = samples_per_second(ours, samples, repeats)
    return slow, fast, difference


def main(argv: list[str] | None = None) -> None:
    """Compare the release and ours on the three parts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default=os.environ.get("ACLNET_RELEASE"),
                        help="checkout of github.com/worker1h/ACLNet (default: $ACLNET_RELEASE)")
    parser.add_argument("--steps", type=int, default=50, help="timed loss steps of ours")
    parser.add_argument("--release-steps", type=int, default=10, help="timed loss steps of the release (<= steps)")
    parser.add_argument("--rebuilds", type=int, default=200, help="timed rebuilds of ours")
    parser.add_argument("--release-rebuilds", type=int, default=3, help="timed rebuilds of the release")
    parser.add_argument("--samples", type=int, default=64, help="pipeline samples (2 x 300 x 25 x 3)")
    parser.add_argument("--repeats", type=int, default=3, help="pipeline passes; the best counts")
    args = parser.parse_args(argv)
    if not 1 <= args.release_steps <= args.steps:
        parser.error("--release-steps must be between 1 and --steps")
    root = release_root(args.release)
    if root is None:
        return
    torch.set_num_threads(1)
    release = load_release(root)
    print(f"release {root}; torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} thread, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}\n"
          f"loss step: inter + intra, forward + backward, inter on (epoch {START_EPOCH + 1}, families built), "
          f"{CLASSES} classes, Linear {TOPOLOGY} -> {DIM} per loss, memory {MEMORY}; "
          f"timed steps: ours {args.steps}, release {args.release_steps}\n"
          f"family rebuild: K {K}, threshold {THRESHOLD}, ~10% non-zero statistics; "
          f"timed: ours {args.rebuilds}, release {args.release_rebuilds}\n"
          f"pipeline: {' > '.join(release.steps)} (configs/ntu60_xsub/j.py) vs ntu_steps('j'); "
          f"{args.samples} samples of 2 x 300 x 25 x 3, best of {args.repeats}")
    rows, differences = [], []
    for batch in (16, 64):
        slow, fast, difference = loss_step(release, batch, args.steps, args.release_steps)
        rows.append((f"loss step, batch {batch} (ms)", slow, fast, slow / fast))
        differences.append(f"{difference:.1e} at batch {batch}")
    for classes in (CLASSES, 2 * CLASSES):
        slow, fast = rebuild(release, classes, args.rebuilds, args.release_rebuilds)
        rows.append((f"family rebuild, {classes} classes (ms)", slow, fast, slow / fast))
    slow, fast, difference = pipeline_rates(release, make_samples(args.samples), args.repeats)
    rows.append(("NTU-60 j pipeline (samples/s)", slow, fast, fast / slow))
    print(f"\n{'what':<36}{'release':>12}{'ours':>12}{'ours faster by':>16}")
    for what, theirs, ours, ratio in rows:
        print(f"{what:<36}{theirs:>12.3f}{ours:>12.3f}{ratio:>15.1f}x")
    print(f"\nchecks: losses agree (largest relative difference {', '.join(differences)}); families identical; "
          f"pipeline outputs agree to {difference:.1e} on {min(CHECKED_SAMPLES, args.samples)} samples "
          "with the same random draws")


if __name__ == "__main__":
    main()
