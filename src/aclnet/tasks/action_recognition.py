"""Action recognition: build data, model and losses from a configuration; train; test.

Checkpoints are chosen on a validation split that is not the test split. Where a protocol has
none, part of the training subjects is held out. Training on the whole training split and testing
the final epoch (`select_on: last`) and choosing on the test split (the release's practice, labelled
so in the report) are options.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aclnet.data.datasets import SkeletonDataset, make_loader
from aclnet.data.formats import read_format
from aclnet.data.pipeline import PRESETS, Pipeline, build_pipeline
from aclnet.data.sample import Sample, SampleSet
from aclnet.data.synthetic import make_action_dataset
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.config import ExperimentConfig, dump_config
from aclnet.engine.distributed import DistInfo, init_distributed, resolve_device
from aclnet.engine.evaluation import confusion_matrix, save_scores
from aclnet.engine.recognizer import Recognizer
from aclnet.engine.trainer import EvalResult, Trainer, evaluate
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss, scale_for_small_dataset
from aclnet.models import build_backbone
from aclnet.skeleton import Layout, get_layout

_NTU_PERFORMER = re.compile(r"P(\d{3})")


@dataclass
class ExperimentData:
    """The three splits of an experiment (validation may be empty with `select_on: last`), its layout
    and class names."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    layout: Layout
    classes: list[str]


SELECTION = {"val": "validation split", "test": "test split (labelled: chosen on the test data, as the release)",
             "last": "final epoch"}
"""How each `train.select_on` choice is labelled in test reports."""


def load_sample_set(config: ExperimentConfig) -> SampleSet:
    """Read the configured data (any format, or the generated data)."""
    data = config.data
    if data.format == "synthetic":
        syn = data.synthetic
        return make_action_dataset(
            num_classes=syn.num_classes, group_size=syn.group_size,
            samples_per_class=syn.samples_per_class, seed=syn.seed,
        )
    return read_format(data.format, data.path)


def _group_of(sample: Sample, key: str) -> str:
    """Hold-out group: a meta field, else the performer of an NTU-style name, else the sample."""
    if key in sample.meta:
        return str(sample.meta[key])
    match = _NTU_PERFORMER.search(sample.sample_id)
    return match.group(1) if match else sample.sample_id


def hold_out(samples: list[Sample], key: str, fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split training samples into (train, validation) by whole groups (subjects), seeded."""
    groups = sorted({_group_of(s, key) for s in samples})
    if len(groups) < 2:
        raise InputError(f"cannot hold out validation data: the training split has {len(groups)} '{key}' group(s)")
    rng = np.random.default_rng(seed)
    count = max(1, int(round(fraction * len(groups))))
    held = set(rng.permutation(groups)[:count].tolist())
    train = [s for s in samples if _group_of(s, key) not in held]
    val = [s for s in samples if _group_of(s, key) in held]
    return train, val


def split_data(config: ExperimentConfig, sample_set: SampleSet) -> ExperimentData:
    """Training, validation and test samples as the configuration says."""
    data = config.data
    layout = get_layout(data.layout or sample_set.layout)
    train = sample_set.split(data.train_split)
    test = sample_set.split(data.test_split)
    select_on = config.train.select_on
    if select_on == "test":
        val = test
    elif data.val_split is not None:
        val = sample_set.split(data.val_split)
    elif select_on == "last":
        val = []
    else:
        train, val = hold_out(train, data.holdout_key, data.holdout_fraction, config.train.seed)
    parts = [("training", data.train_split, train), ("test", data.test_split, test)]
    if val or select_on != "last":
        parts.append(("validation", data.val_split, val))
    for role, name, part in parts:
        if not part:
            raise InputError(f"the {role} data (split '{name or data.train_split}') has no samples")
    classes = sample_set.classes or [str(i) for i in range(sample_set.num_classes)]
    return ExperimentData(train, val, test, layout, classes)


def pipeline_steps(config: ExperimentConfig) -> list:
    """The configured steps; `data.modality`, `clip_len` and `num_persons` set their steps' parameters."""
    data = config.data
    steps = PRESETS[data.pipeline](data.modality) if isinstance(data.pipeline, str) else copy.deepcopy(data.pipeline)
    overrides = {"modality": {"name": data.modality}, "uniform_sample": {"clip_len": data.clip_len},
                 "pad_persons": {"num_persons": data.num_persons}}
    resolved = []
    for step in steps:
        if isinstance(step, str):
            step = {step: {}}
        if isinstance(step, dict) and len(step) == 1:
            name, params = next(iter(step.items()))
            update = {k: v for k, v in overrides.get(name, {}).items() if v is not None}
            if update and isinstance(params or {}, dict):
                step = {name: {**(params or {}), **update}}
        resolved.append(step)  # anything malformed is named by build_pipeline
    return resolved


def make_pipeline(config: ExperimentConfig, layout: Layout, *, test_mode: bool, clips: int = 1) -> Pipeline:
    """The configured pipeline for training or testing."""
    return build_pipeline(pipeline_steps(config), layout, test_mode=test_mode, num_clips=clips)


def build_model(config: ExperimentConfig, data: ExperimentData, pipeline: Pipeline) -> Recognizer:
    """Backbone, heads and losses for the pipeline's output; the small-dataset rule rescales the loss constants."""
    loss = config.loss
    inter_cfg, intra_cfg = loss.inter, loss.intra
    k, threshold, memory, start = inter_cfg.k, inter_cfg.overlap_threshold, intra_cfg.memory_size, inter_cfg.start_epoch
    num_classes = len(data.classes)
    if loss.small_dataset_scaling:
        scaled = scale_for_small_dataset(num_classes, len(data.train), config.optim.batch_size, config.optim.epochs,
                                         default_memory_size=intra_cfg.memory_size)
        k, threshold, memory, start = (scaled[key] for key in ("k", "overlap_threshold", "memory_size", "start_epoch"))
    elif inter_cfg.enabled and start >= config.optim.epochs:
        warnings.warn(f"loss.inter.start_epoch {start} >= optim.epochs {config.optim.epochs}: "
                      "the inter-class loss never switches on", stacklevel=2)
    dim = config.model.embedding_dim
    inter = InterClassAffinityLoss(
        num_classes, dim, k=k, overlap_threshold=threshold, momentum=inter_cfg.momentum, start_epoch=start,
        family_mode=inter_cfg.family_mode, temperatures=inter_cfg.temperatures, fat=inter_cfg.fat,
        fixed_tau=inter_cfg.fixed_tau,
    ) if inter_cfg.enabled else None
    intra = IntraClassMarginLoss(
        memory, dim, tau=intra_cfg.tau, epsilon=intra_cfg.epsilon, gather_distributed=intra_cfg.gather_distributed
    ) if intra_cfg.enabled else None
    in_channels = int(pipeline(data.train[0], np.random.default_rng(0)).shape[-1])
    layout = pipeline.output_layout  # e.g. coco_new after the COCO conversion
    backbone = build_backbone(config.model.backbone, layout=layout, in_channels=in_channels,
                              preset=config.model.preset)
    return Recognizer(
        backbone, num_classes, embedding_input=config.model.embedding_input,
        embedding_dim=dim, dropout=config.model.dropout, inter_loss=inter, intra_loss=intra,
        inter_weight=inter_cfg.weight, intra_weight=intra_cfg.weight,
    )


def _loader(config: ExperimentConfig, samples: list[Sample], pipeline: Pipeline, *, train: bool,
            dist_info: DistInfo | None = None):
    dataset = SkeletonDataset(samples, pipeline, seed=config.train.seed)
    return make_loader(
        dataset, config.optim.batch_size, shuffle=train, balanced=train and config.data.balanced_sampling,
        seed=config.train.seed, num_workers=config.data.num_workers,
        distributed=train and dist_info is not None and dist_info.enabled, drop_last=train,
        pin_memory=torch.cuda.is_available() and config.train.device != "cpu",
    )


def prepare_work_dir(work_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to overwrite an earlier run unless --resume or --force says what to do with it."""
    if work_dir.exists() and any(work_dir.iterdir()) and not (resume or force):
        raise InputError(f"{work_dir}: holds an earlier run; pass --resume to continue it or --force to replace it")
    if force and not resume and work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)


def build_trainer(config: ExperimentConfig, work_dir: Path, dist_info: DistInfo,
                  device: torch.device) -> tuple[Trainer, ExperimentData]:
    """Data, pipelines, model and loaders of an experiment, ready to `fit`."""
    data = split_data(config, load_sample_set(config))
    train_pipe = make_pipeline(config, data.layout, test_mode=False)
    val_pipe = make_pipeline(config, data.layout, test_mode=True)
    model = build_model(config, data, val_pipe)
    embed_loader = _loader(config, data.test, val_pipe, train=False) if config.train.save_embeddings_at else None
    trainer = Trainer(
        config, model, _loader(config, data.train, train_pipe, train=True, dist_info=dist_info),
        _loader(config, data.val, val_pipe, train=False) if data.val else None, work_dir, device, dist_info,
        class_names=data.classes, embedding_loader=embed_loader,
    )
    return trainer, data


def train(config: ExperimentConfig, work_dir: Path, *, resume: bool = False, force: bool = False) -> dict:
    """Train (one process, or one rank under torchrun), then test the chosen checkpoint; returns the report."""
    seed_everything(config)
    device_kind = "cuda" if config.train.device.startswith("cuda") or (
        config.train.device == "auto" and torch.cuda.is_available()) else "cpu"
    dist_info = init_distributed(device_kind)
    device = resolve_device(config.train.device, dist_info)
    if dist_info.is_main:
        prepare_work_dir(work_dir, resume=resume, force=force)
        (work_dir / "config.yaml").write_text(dump_config(config))
    trainer, data = build_trainer(config, work_dir, dist_info, device)
    if resume:
        latest = work_dir / "latest.pt"
        if not latest.exists():
            raise InputError(f"{work_dir}: nothing to resume (no latest.pt)")
        trainer.resume(latest)
    state = trainer.fit()
    if not dist_info.is_main:
        return {}
    checkpoint = work_dir / ("best.pt" if (work_dir / "best.pt").exists() else "latest.pt")
    report = test(config, checkpoint, out=work_dir / "test_scores.npz", data=data, force=True)
    report["selected_epoch"] = state.epoch if config.train.select_on == "last" else state.best_epoch
    (work_dir / "test_report.json").write_text(json.dumps(report, indent=2))
    return report


def seed_everything(config: ExperimentConfig) -> None:
    """Seed Python, NumPy and torch; deterministic algorithms when asked."""
    import random

    random.seed(config.train.seed)
    np.random.seed(config.train.seed)
    torch.manual_seed(config.train.seed)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def test(
    config: ExperimentConfig,
    checkpoint: Path,
    *,
    clips: int | None = None,
    out: Path | None = None,
    occlude: str | None = None,
    data: ExperimentData | None = None,
    force: bool = False,
) -> dict:
    """Test a checkpoint on the test split with several clips; optionally zero a body part."""
    if out is not None and out.exists() and not force:
        raise InputError(f"{out}: already exists; pass --force to replace it")
    data = data or split_data(config, load_sample_set(config))
    payload = load_checkpoint(checkpoint)
    device = resolve_device(config.train.device, DistInfo())
    clips = clips or config.data.test_clips
    pipeline = make_pipeline(config, data.layout, test_mode=True, clips=clips)
    samples = data.test if occlude is None else occluded(data.test, data.layout, occlude)
    model = build_model(config, data, pipeline)
    load_for_inference(model, payload["model"], checkpoint)
    model.to(device)
    amp = config.train.amp and device.type == "cuda"
    result: EvalResult = evaluate(model, _loader(config, samples, pipeline, train=False), device, amp)
    report = {
        "checkpoint": str(checkpoint),
        "split": config.data.test_split,
        "clips": clips,
        "samples": len(samples),
        **result.metrics,
        "selection": SELECTION[config.train.select_on],
        "confusion_matrix": confusion_matrix(result.scores.argmax(1), result.labels, len(data.classes)).tolist(),
    }
    if occlude is not None:
        report["occluded"] = occlude
    if out is not None:
        ids = [samples[i].sample_id for i in result.indices]
        save_scores(out, ids, result.labels, result.scores, data.classes)
    return report


def load_for_inference(model: Recognizer, state: dict, checkpoint: Path) -> None:
    """Load weights for testing: loss state and projections may be absent or extra (they do not predict)."""
    training_only = ("inter_loss.", "intra_loss.", "inter_projection.", "intra_projection.")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise InputError(f"{checkpoint}: does not fit this configuration's model: {exc}") from exc
    bad = [k for k in [*missing, *unexpected] if not k.startswith(training_only)]
    if bad:
        raise InputError(f"{checkpoint}: does not fit this configuration's model; mismatched keys: {bad[:10]}")


def occluded(samples: list[Sample], layout: Layout, part: str) -> list[Sample]:
    """Copies of `samples` with the joints of body part `part` zeroed in every frame."""
    if part not in layout.parts:
        raise InputError(f"unknown body part '{part}' for layout {layout.name}; parts: {sorted(layout.parts)}")
    joints = list(layout.parts[part])
    copies = []
    for s in samples:
        keypoint = s.keypoint.copy()
        keypoint[:, :, joints] = 0
        score = None if s.score is None else s.score.copy()
        if score is not None:
            score[:, :, joints] = 0
        copies.append(Sample(s.sample_id, keypoint, s.label, score, s.img_shape, dict(s.meta)))
    return copies


def occlusion_table(config: ExperimentConfig, checkpoint: Path, *, clips: int | None = None) -> str:
    """Top-1 accuracy with each body part of the layout zeroed, beside the unoccluded accuracy."""
    data = split_data(config, load_sample_set(config))
    rows = [("none", test(config, checkpoint, clips=clips, data=data)["top1"])]
    rows += [(part, test(config, checkpoint, clips=clips, data=data, occlude=part)["top1"])
             for part in data.layout.parts]
    width = max(len(name) for name, _ in [*rows, ("occluded part", 0)])
    lines = [f"{'occluded part'.ljust(width)}  top1", *(f"{name.ljust(width)}  {acc:6.2f}" for name, acc in rows)]
    return "\n".join(lines)
