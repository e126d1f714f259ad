"""What every task builds from an experiment's configuration: its samples, pipelines, model and loaders.

A task (action, gait, reid) decides which samples train and how the model is judged; the parts here are
the same for all of them.
"""

from __future__ import annotations

import copy
import warnings

from aclnet.config import ExperimentConfig
from aclnet.data.formats import read_format, reader_options
from aclnet.data.pipeline import PRESETS, Pipeline, build_pipeline
from aclnet.data.sample import Sample, SampleSet
from aclnet.data.synthetic import make_action_dataset, make_gait_dataset
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss, IntraClassMarginLoss, scale_for_small_dataset
from aclnet.losses.metric import SupConLoss
from aclnet.losses.scaling import RELEASED_CONSTANTS, RELEASED_MEMORY_SIZE
from aclnet.models import build_backbone
from aclnet.models.backbones import SkeletonBackbone
from aclnet.models.skeleton_model import AuxiliaryLoss, SkeletonModel, projected_loss
from aclnet.skeleton import Layout


def load_sample_set(config: ExperimentConfig) -> SampleSet:
    """Read the configured data (any format, or the generated data)."""
    data = config.data
    if data.format == "synthetic":
        syn = data.synthetic
        if syn.kind == "gait":
            return make_gait_dataset(num_subjects=syn.num_subjects, views=syn.views, seed=syn.seed)
        subjects = sum(syn.split_subjects)
        return make_action_dataset(num_classes=syn.num_classes, group_size=syn.group_size,
                                   samples_per_class=syn.samples_per_class, num_subjects=subjects,
                                   split_fractions=tuple(n / subjects for n in syn.split_subjects), seed=syn.seed)
    options = dict(data.options)
    if data.layout is not None and "layout" in reader_options(data.format):
        options.setdefault("layout", data.layout)  # readers that check joint counts check them against it
    return read_format(data.format, data.path, **options)


def pipeline_steps(config: ExperimentConfig) -> list:
    """The configured steps; `data.modality`, `clip_len` and `num_persons` set their steps' parameters."""
    data = config.data
    steps = PRESETS[data.pipeline](data.modality) if isinstance(data.pipeline, str) else copy.deepcopy(data.pipeline)
    overrides = {"modality": {"name": data.modality}, "uniform_sample": {"clip_len": data.clip_len},
                 "temporal_window": {"length": data.clip_len, "test_windows": data.test_windows},
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


def build_model(config: ExperimentConfig, num_classes: int, train: list[Sample], pipeline: Pipeline,
                constants: dict[str, int]) -> SkeletonModel:
    """Backbone, classifier and the configured auxiliary losses for the pipeline's output.

    Args:
        config: the experiment.
        num_classes: training classes (identities for gait and re-identification).
        train: the training samples (the first fixes the input's channels).
        pipeline: the test pipeline; its output fixes the backbone's layout and input channels.
        constants: the losses' resolved constants (`loss_constants`).
    """
    loss = config.loss
    inter_cfg, intra_cfg = loss.inter, loss.intra
    k, threshold, memory, start = (constants[key] for key in ("k", "overlap_threshold", "memory_size", "start_epoch"))
    sample = train[0]
    backbone = build_pipeline_backbone(config, pipeline, int(sample.keypoint.shape[-1]), sample.score is not None)
    dim = config.model.embedding_dim
    source = config.model.embedding_input or ("topology" if backbone.has_topology else "pooled")
    aux: dict[str, AuxiliaryLoss] = {}
    if inter_cfg.enabled:
        inter = InterClassAffinityLoss(
            num_classes, dim, k=k, overlap_threshold=threshold, momentum=inter_cfg.momentum, start_epoch=start,
            family_mode=inter_cfg.family_mode, temperatures=inter_cfg.temperatures, fat=inter_cfg.fat,
            fixed_tau=inter_cfg.fixed_tau,
        )
        aux["inter"] = projected_loss(backbone, inter, weight=inter_cfg.weight, source=source, dim=dim)
    if intra_cfg.enabled:
        intra = IntraClassMarginLoss(memory, dim, tau=intra_cfg.tau, epsilon=intra_cfg.epsilon,
                                     gather_distributed=intra_cfg.gather_distributed)
        aux["intra"] = projected_loss(backbone, intra, weight=intra_cfg.weight, source=source, dim=dim)
    if loss.supcon.enabled:
        supcon = SupConLoss(temperature=loss.supcon.temperature)
        aux["supcon"] = projected_loss(backbone, supcon, weight=loss.supcon.weight, source="pooled", dim=None)
    if not loss.ce and not aux:
        raise InputError("loss: the classifier (loss.ce) and every auxiliary loss are off; nothing would train")
    return SkeletonModel(backbone, num_classes if loss.ce else None, aux_losses=aux, dropout=config.model.dropout)


def loss_constants(config: ExperimentConfig, num_classes: int, num_train: int) -> dict[str, int]:
    """K, the overlap threshold, the start epoch and the memory size the losses use: a value the configuration
    gives wins; the others come from the small-data rule when it is on, else the released constants."""
    inter, intra = config.loss.inter, config.loss.intra
    given = {"k": inter.k, "overlap_threshold": inter.overlap_threshold, "start_epoch": inter.start_epoch,
             "memory_size": intra.memory_size}
    derived = RELEASED_CONSTANTS
    if config.loss.small_dataset_scaling:
        derived = scale_for_small_dataset(num_classes, num_train, config.optim.batch_size, config.optim.epochs,
                                          default_memory_size=given["memory_size"] or RELEASED_MEMORY_SIZE)
    constants = {key: value if value is not None else derived[key] for key, value in given.items()}
    if inter.enabled and constants["start_epoch"] >= config.optim.epochs:
        warnings.warn(f"loss.inter.start_epoch {constants['start_epoch']} >= optim.epochs {config.optim.epochs}: "
                      "the inter-class loss never switches on", stacklevel=2)
    return constants


def build_pipeline_backbone(config: ExperimentConfig, pipeline: Pipeline, keypoint_channels: int,
                            has_score: bool) -> SkeletonBackbone:
    """The configured backbone for the pipeline's output layout and channels, from the input's coordinate
    channels and whether it has scores."""
    in_channels = pipeline.out_channels(keypoint_channels, has_score)
    return build_backbone(config.model.backbone, layout=pipeline.output_layout, in_channels=in_channels,
                          preset=config.model.preset, **config.model.options)


def build_inference_model(config: ExperimentConfig, num_classes: int, pipeline: Pipeline, keypoint_channels: int,
                          has_score: bool) -> SkeletonModel:
    """The model without its training-only parts (auxiliary projections and loss state): what predicts,
    embeds and is exported."""
    backbone = build_pipeline_backbone(config, pipeline, keypoint_channels, has_score)
    return SkeletonModel(backbone, num_classes if config.loss.ce else None, dropout=config.model.dropout)
