"""The run loop every task shares: train in a run folder, then test the chosen checkpoint.

It receives a task object (`aclnet.tasks`) and never imports a task module: the task builds the data,
the model and the evaluation, the loop does the rest (seeding, processes, run folder, trainer, test).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from aclnet import plain_yaml
from aclnet.config import ExperimentConfig, absolute_paths, config_as_dict, dump_config
from aclnet.data.sample import Sample
from aclnet.engine.checkpoint import check_finite_weights, check_model_fits, load_checkpoint
from aclnet.engine.distributed import DistInfo, init_distributed, resolve_device
from aclnet.engine.evaluation import save_scores
from aclnet.engine.run_folder import RunFolder, resolve_checkpoint, stop_on_write_error
from aclnet.engine.seam import RunnableTask, TaskData
from aclnet.engine.trainer import Trainer
from aclnet.errors import InputError
from aclnet.models.skeleton_model import TRAINING_ONLY_PREFIX, SkeletonModel
from aclnet.skeleton.custom import layout_to_mapping

SELECTION = {"val": "validation split", "test": "test split (labelled: chosen on the test data, as the release)",
             "last": "final epoch"}
"""How each `train.select_on` choice is labelled in test reports."""

SampleTransform = Callable[[list[Sample]], list[Sample]]

TRAIN_CHECK_SAMPLES = 256
"""Training samples scored beside the test (enough to tell a model that fits from one that does not)."""


def weak_run_warnings(task: RunnableTask, report: dict[str, Any], history: list[dict[str, Any]],
                      num_classes: int) -> list[str]:
    """One line for each sign that a run did not learn: a final training cross-entropy near ln C (what
    guessing gives), a training score near chance, or one class predicted for nearly every test sample."""
    found = []
    chance_ce = math.log(max(num_classes, 2))
    final_ce = history[-1].get("train_ce") if history else None
    if final_ce is not None and final_ce > 0.8 * chance_ce:
        found.append(f"the final training cross-entropy {final_ce:.2f} is near ln {num_classes} = {chance_ce:.2f}, "
                     "what guessing gives: the model has barely learned (more epochs or a higher learning rate?)")
    fitted = report.get("train_score")
    if fitted is not None and fitted["value"] < 2 * fitted["chance"]:
        found.append(f"training {fitted['metric']} {fitted['value']:.1f} % is under twice chance "
                     f"({fitted['chance']:.1f} %): the model does not fit its own training data")
    matrix = report.get("confusion_matrix")
    if matrix is not None and num_classes >= 3:
        predicted = np.asarray(matrix).sum(axis=0)
        if predicted.sum() and predicted.max() >= 0.9 * predicted.sum():
            found.append(f"one class is predicted for {100 * predicted.max() / predicted.sum():.0f} % of the test "
                         "samples: the model collapsed to it")
    return found


def seed_everything(config: ExperimentConfig) -> None:
    """Seed Python, NumPy and torch; deterministic algorithms when asked."""
    random.seed(config.train.seed)
    np.random.seed(config.train.seed)
    torch.manual_seed(config.train.seed)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def train(task: RunnableTask, work_dir: str | Path, *, resume: bool = False, force: bool = False,
          allow_changes: tuple[str, ...] = (), log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (one process, or one rank under torchrun), then test the chosen checkpoint; returns the report
    (empty on ranks other than the main one).

    Everything that can be checked (data, model, the checkpoint and configuration to resume from) is checked
    before the run folder is touched, and one process at a time holds the folder.

    Args:
        task: the experiment's task.
        work_dir: the run folder.
        resume: continue from the folder's `latest.pt`.
        force: replace an earlier run in the folder.
        allow_changes: configuration keys (dotted prefixes) that may differ from the run's when resuming.
        log: where the progress lines go (one per epoch; also when output is piped).
    """
    config = task.config
    seed_everything(config)
    device_kind = "cuda" if config.train.device.startswith("cuda") or (
        config.train.device == "auto" and torch.cuda.is_available()) else "cpu"
    dist_info = init_distributed(device_kind)
    device = resolve_device(config.train.device, dist_info)
    run = RunFolder(work_dir)
    with run.lock() if dist_info.is_main else nullcontext():
        if dist_info.is_main:
            run.check_start(resume=resume, force=force)
            log(f"run folder {run.path}; {describe_device(device)}")
        if resume:
            check_resumed_config(run, config, allow_changes)
        trainer, data = build_trainer(task, run, dist_info, device)
        if resume:
            trainer.resume(run.latest)
            if dist_info.is_main:
                where = (f"epoch {trainer.position.epoch}, step {trainer.position.step}" if trainer.position
                         else f"the end of epoch {trainer.state.epoch}")
                log(f"resumed from {run.latest} at {where} of {config.optim.epochs}")
        if dist_info.is_main:
            run.prepare(resume=resume, force=force)
            run.write_config(dump_config(config))
            for line in describe_run(trainer, data):
                log(line)
        trainer.log_progress = log if dist_info.is_main else None
        state = trainer.fit()
        if not dist_info.is_main:
            return {}
        report = test(task, run.tested_checkpoint(), scores_out=run.test_scores, data=data, force=True,
                      train_samples=TRAIN_CHECK_SAMPLES)
        report["selected_epoch"] = state.epoch if config.train.select_on == "last" else state.best_epoch
        report["loss_constants"] = trainer.loss_constants
        report["warnings"] = weak_run_warnings(task, report, state.history, len(data.classes))
        for warning in report["warnings"]:
            log(f"warning: {warning}")
        with stop_on_write_error("the test report", run.test_report):
            run.write_report(report)
    return report


def describe_device(device: torch.device) -> str:
    """The device and, on a CPU, the threads in use and how busy the cores are."""
    if device.type == "cuda":
        return f"device {torch.cuda.get_device_name(device)} ({device})"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"device cpu, {torch.get_num_threads()} thread(s) on {os.cpu_count()} core(s), load {load:.1f} "
            "(set --threads)")


def describe_run(trainer: Trainer, data: TaskData) -> list[str]:
    """What the run will do: samples, steps, epochs, and the loss constants actually in use."""
    config = trainer.config
    lines = [f"data: {len(data.train)} training, {len(data.val)} validation, {len(data.test)} test samples, "
             f"{len(data.classes)} classes; {trainer.steps_per_epoch} steps of {config.optim.batch_size} per epoch, "
             f"{config.optim.epochs} epochs; tested checkpoint: {SELECTION[config.train.select_on]}"]
    for name, entry in trainer.model.aux.items():
        lines.append(f"loss {name} (weight {entry.weight:g}): {entry.loss.extra_repr()}")
    return lines


def check_resumed_config(run: RunFolder, config: ExperimentConfig, allow_changes: tuple[str, ...]) -> None:
    """Refuse to resume with another configuration than the run's, naming the keys, unless allowed."""
    try:
        saved = plain_yaml.load(run.config.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{run.config}: cannot read the run's configuration to compare ({exc})") from exc
    # Runs saved before paths were stored absolutely name them relative to the folder they were started from.
    saved = absolute_paths(saved, Path.cwd()) if isinstance(saved, dict) else {}
    differences = [(key, old, new) for key, old, new in _differences(saved, config_as_dict(config))
                   if not any(key == p or key.startswith(p + ".") for p in allow_changes)]
    if differences:
        shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in differences[:5])
        keys = " ".join(k for k, _, _ in differences)
        raise InputError(f"{run.path}: the configuration differs from the run's ({shown}); resume with the run's "
                         f"settings, or pass --allow-change {keys} to continue with the new ones")


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys whose values differ between two nested mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def build_trainer(task: RunnableTask, run: RunFolder, dist_info: DistInfo,
                  device: torch.device) -> tuple[Trainer, TaskData]:
    """The task's data, pipelines, model, loaders and validation in a trainer, ready to `fit`."""
    config = task.config
    data = task.load_data()
    if not any(sample.keypoint.any() for sample in data.train):
        raise InputError(f"every one of the {len(data.train)} training samples has all-zero keypoints: there is "
                         "nothing to learn from (missing joints are zeros; are the coordinates in other columns?)")
    if len(data.train) < config.optim.batch_size:
        raise InputError(f"the training data has {len(data.train)} sample(s), fewer than one batch "
                         f"(optim.batch_size {config.optim.batch_size}): lower optim.batch_size or give more data")
    train_pipe = task.pipeline(data.layout, test_mode=False)
    val_pipe = task.pipeline(data.layout, test_mode=True)
    model = task.build_model(data, val_pipe)
    if config.train.init_weights is not None:  # resuming then loads the run's own weights over these
        source = resolve_checkpoint(config.train.init_weights)
        load_for_inference(model, load_checkpoint(source)["model"], source)
    validator = (lambda m: task.validate(m, data, val_pipe, device)) if data.val else None
    embed_loader = task.loader(data.test, val_pipe, train=False) if config.train.save_embeddings_at else None
    trainer = Trainer(config, model, task.loader(data.train, train_pipe, train=True, dist_info=dist_info), validator,
                      run, device, dist_info, primary_metric=task.primary_metric, class_names=data.classes,
                      embedding_loader=embed_loader, inference=inference_info(task, data),
                      loss_constants=task.loss_constants(data))
    return trainer, data


def inference_info(task: RunnableTask, data: TaskData) -> dict[str, Any]:
    """What a checkpoint carries so that it can be used alone: the task, the input layout (as a layout
    file's mapping) and the input's coordinate channels and whether it has scores."""
    sample = data.train[0]
    return {"task": task.name, "layout": layout_to_mapping(data.layout),
            "keypoint_channels": int(sample.keypoint.shape[-1]), "has_score": sample.score is not None}


def test(task: RunnableTask, checkpoint: Path, *, clips: int | None = None, scores_out: Path | None = None,
         data: TaskData | None = None, transform: SampleTransform | None = None,
         force: bool = False, train_samples: int = 0) -> dict[str, Any]:
    """Test a checkpoint on the task's test data with several clips.

    Args:
        task: the experiment's task.
        checkpoint: the checkpoint file.
        clips: clips averaged per sample (default `data.test_clips`).
        scores_out: where to write per-sample scores (tasks with a classifier's scores).
        data: the task's data when already loaded.
        transform: applied to the test samples first (e.g. occluding a body part).
        force: replace `scores_out` if it exists.
        train_samples: also score the model on up to this many training samples, spread over the training
            data (`report["train_score"]`: the task's `training_score`): the test result beside what it fits.
    """
    config = task.config
    if scores_out is not None and scores_out.exists() and not force:
        raise InputError(f"{scores_out}: already exists; pass --force to replace it")
    data = data or task.load_data(for_training=False)
    payload = load_checkpoint(checkpoint)
    device = resolve_device(config.train.device, DistInfo())
    clips = clips or config.data.test_clips
    pipeline = task.pipeline(data.layout, test_mode=True, clips=clips)
    model = task.build_model(data, pipeline)
    load_for_inference(model, payload["model"], checkpoint)
    model.to(device)
    samples = data.test if transform is None else transform(data.test)
    evaluation = task.evaluate(model, samples, pipeline, device)
    report = {"task": task.name, "checkpoint": str(checkpoint), "clips": clips, "samples": len(samples),
              **evaluation.metrics, **evaluation.details, "selection": SELECTION[config.train.select_on]}
    if train_samples:
        chosen = data.train[:: max(1, len(data.train) // train_samples)][:train_samples]
        fitted = task.training_score(model, chosen, pipeline, device)
        if fitted is not None:
            report["train_score"] = {**dataclasses.asdict(fitted), "samples": len(chosen)}
    if scores_out is not None and evaluation.scores is not None:
        with stop_on_write_error("the test scores", scores_out):
            save_scores(scores_out, evaluation.sample_ids, evaluation.labels, evaluation.scores, data.classes)
    return report


def load_for_inference(model: SkeletonModel, state: dict, checkpoint: Path) -> None:
    """Load weights for testing: what serves training only (under `aux.`) may be absent or extra."""
    check_finite_weights(state, checkpoint)
    own = model.state_dict()
    wanted = {k: v for k, v in own.items() if not k.startswith(TRAINING_ONLY_PREFIX)}
    given = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIX)}
    check_model_fits(wanted, given, checkpoint)
    # Training-only parts load where the model has them with the same shape (analyses read their state).
    same = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == getattr(own[k], "shape", None)}
    model.load_state_dict({**same, **given}, strict=False)

