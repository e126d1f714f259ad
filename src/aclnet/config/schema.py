"""The experiment schema: typed sections whose unknown keys, wrong types and unknown component names fail
at load time (`aclnet.config.loading` names the key and the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from aclnet.config.tasks import DEFAULT_TASK, registered_tasks
from aclnet.data.formats import FORMATS
from aclnet.data.pipeline import PRESETS
from aclnet.data.transforms import MODALITIES
from aclnet.errors import InputError
from aclnet.losses.affinity import MOMENTUM_RANGE
from aclnet.losses.families import FAMILY_MODES
from aclnet.losses.scaling import RELEASED_CONSTANTS, RELEASED_MEMORY_SIZE
from aclnet.models.backbones import BACKBONES, backbone_options
from aclnet.models.heads import PROJECTION_SOURCES


class Section(BaseModel):
    """Base of every configuration section (a task's own sections too): unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SyntheticConfig(Section):
    """Options of the generated data (used when `data.format` is `synthetic`)."""

    kind: Literal["action", "gait"] = Field(
        "action", description="action classes with confusable groups, or CASIA-B-style walks of subjects"
    )
    num_classes: int = Field(12, ge=2, le=1000, description="action: number of classes")
    group_size: int = Field(3, ge=1, le=1000, description="action: classes per confusable group")
    samples_per_class: int = Field(40, ge=4, le=10_000, description="action: sequences generated per class")
    num_subjects: int = Field(20, ge=2, le=1000, description="gait: number of walkers")
    split_subjects: list[Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: [6, 2, 2], min_length=3, max_length=3,
        description="action: subjects in the train, val and test splits (samples cycle through all of them)",
    )
    views: list[int] = Field(
        default_factory=lambda: list(range(0, 181, 18)), description="gait: camera views in degrees"
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="generator seed")

    @field_validator("split_subjects")
    @classmethod
    def _one_training_subject(cls, value: list[int]) -> list[int]:
        if value[0] < 1:
            raise ValueError("the training split needs at least one subject (the first number)")
        return value


class DataConfig(Section):
    """Where the samples come from, which splits to use and how to turn them into tensors."""

    format: str = Field("pyskl", description="reader of `path` (see `aclnet prepare --help`), or `synthetic`")
    path: Path | None = Field(None, description="annotation file or dataset folder (required unless synthetic)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="reader options, as `aclnet prepare --option` (e.g. name_pattern)"
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig, description="generated data options")
    layout: str | None = Field(None, description="layout name or file; default: the one the data names")
    train_split: str = Field("train", description="split to train on")
    val_split: str | None = Field(
        None, description="split to choose checkpoints on; None holds out part of the training subjects"
    )
    test_split: str = Field("test", description="split for the final test (never used for choosing)")
    holdout_fraction: float = Field(
        0.1, gt=0, lt=1, description="fraction of training subjects held out for validation"
    )
    holdout_key: str = Field(
        "subject", description="meta field grouping samples for the hold-out (subject, performer)"
    )
    pipeline: str | list[Any] = Field(
        "ntu", description="a preset (ntu, pku-mmd, kinetics, finegym, plain) or a list of steps {name: {params}}"
    )
    modality: str = Field(
        "j", description="j, b, k, jm, bm, km or a '+' concatenation such as j+b (sets the modality step)"
    )
    clip_len: int | None = Field(
        None, ge=1, le=10_000, description="frames per clip (sets uniform_sample; None keeps the pipeline's)"
    )
    num_persons: int | None = Field(
        None, ge=1, le=100, description="persons per sample (sets pad_persons; None keeps the pipeline's)"
    )
    train_clips: int = Field(
        1, ge=1, le=16, description="independently augmented views of each training sample per step (2 for SupCon)"
    )
    test_clips: int = Field(10, ge=1, le=100, description="clips averaged at the final test")
    test_windows: Literal["centre", "spread"] | None = Field(
        None, description="sets temporal_window's test windows: 'centre' (every test clip the centre window) or "
        "'spread' (the test clips spread from the first frames to the last, covering the sequence); None keeps "
        "the pipeline's")
    num_workers: int = Field(2, ge=0, le=64, description="DataLoader worker processes")
    balanced_sampling: bool = Field(False, description="draw classes equally often during training")
    sequences_per_identity: int | None = Field(
        None, ge=1, description="identity-balanced batches: K sequences of each of batch_size / K identities"
    )

    @field_validator("modality")
    @classmethod
    def _known_modality(cls, value: str) -> str:
        bad = [m for m in value.split("+") if m not in MODALITIES]
        if bad:
            raise ValueError(f"unknown modality {bad}; valid: {', '.join(MODALITIES)} joined by '+'")
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != "synthetic" and value not in FORMATS:
            raise ValueError(f"unknown format '{value}'; valid: synthetic, {', '.join(FORMATS)}")
        return value

    @field_validator("pipeline")
    @classmethod
    def _known_preset(cls, value: str | list[Any]) -> str | list[Any]:
        if isinstance(value, str) and value not in PRESETS:
            raise ValueError(f"unknown pipeline preset '{value}'; valid: {', '.join(PRESETS)}, or a list of steps")
        return value

    @model_validator(mode="after")
    def _path_needed(self) -> DataConfig:
        if self.format != "synthetic" and self.path is None:
            raise ValueError("data.path is required unless data.format is 'synthetic'")
        return self


class ModelConfig(Section):
    """Backbone and heads."""

    backbone: str = Field("aclnet_gcn", description=f"one of {', '.join(BACKBONES)}")
    preset: str | None = Field(None, description="backbone size preset: None (published) or 'small' (CPU)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="further backbone options (e.g. branches: true for resgcn)"
    )
    embedding_input: str | None = Field(
        None, description="input of the contrastive projections: topology (released) or pooled (paper); None: "
        "topology where the backbone learns one, else pooled"
    )
    embedding_dim: int = Field(256, ge=1, le=65_536, description="dimension of each contrastive projection")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout before the classifier")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value not in BACKBONES:
            raise ValueError(f"unknown backbone '{value}'; valid: {', '.join(BACKBONES)}")
        return value

    @model_validator(mode="after")
    def _known_options(self) -> ModelConfig:
        """Backbone options are the backbone constructor's keywords (checked here, not when the model is built)."""
        valid = set(backbone_options(self.backbone)) - {"layout", "in_channels", "preset"}
        unknown = sorted(set(self.options) - valid)
        if unknown:
            raise ValueError(f"options {unknown} are not options of backbone '{self.backbone}'; "
                             f"valid: {sorted(valid)}")
        return self

    @field_validator("embedding_input")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is not None and value not in PROJECTION_SOURCES:
            raise ValueError(f"unknown projection input '{value}'; valid: {', '.join(PROJECTION_SOURCES)}")
        return value


class InterLossConfig(Section):
    """Inter-class affinity contrastive loss (Motion Families, EMA prototypes, FAT)."""

    enabled: bool = Field(True, description="use the inter-class loss (ablation switch)")
    weight: float = Field(0.1, ge=0, description="lambda1")
    k: int | None = Field(
        None, ge=1, description=f"neighbours per class, K (unset: {RELEASED_CONSTANTS['k']}, or the small-data rule)"
    )
    overlap_threshold: int | None = Field(
        None, ge=0, description="n_tau: shared neighbours needed to join a family (unset: "
        f"{RELEASED_CONSTANTS['overlap_threshold']}, or the small-data rule)"
    )
    momentum: float = Field(0.9, ge=MOMENTUM_RANGE[0], lt=MOMENTUM_RANGE[1], description="prototype EMA momentum gamma")
    start_epoch: int | None = Field(
        None, ge=0, description="epoch from which statistics are gathered, 1-based (unset: "
        f"{RELEASED_CONSTANTS['start_epoch']}, or the small-data rule)"
    )
    family_mode: str = Field("released", description=f"family rules: {' or '.join(FAMILY_MODES)}")
    fat: bool = Field(True, description="family-aware temperature (ablation switch)")
    temperatures: tuple[float, float, float] = Field((0.1, 0.5, 1.0), description="FAT temperatures")
    fixed_tau: float = Field(0.1, gt=0, description="temperature when FAT is off")


    @field_validator("family_mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in FAMILY_MODES:
            raise ValueError(f"unknown family mode '{value}'; valid: {', '.join(FAMILY_MODES)}")
        return value


class IntraLossConfig(Section):
    """Intra-class marginal contrastive loss (memory of recent embeddings)."""

    enabled: bool = Field(True, description="use the intra-class loss (ablation switch)")
    weight: float = Field(0.1, ge=0, description="lambda2")
    memory_size: int | None = Field(
        None, ge=1,
        description=f"embeddings kept in the memory (unset: {RELEASED_MEMORY_SIZE}, or the small-data rule)",
    )
    tau: float = Field(0.1, gt=0, description="temperature")
    epsilon: float = Field(0.1, ge=0, description="margin on the logit scale")
    gather_distributed: bool = Field(False, description="fill the memory from all processes")


class SupConLossConfig(Section):
    """Supervised contrastive loss on the pooled embedding (GaitGraph's objective)."""

    enabled: bool = Field(False, description="use the supervised contrastive loss")
    weight: float = Field(1.0, ge=0, description="weight of the term")
    temperature: float = Field(0.01, gt=0, description="temperature")


class LossConfig(Section):
    """The objective: L = CE + lambda1 * inter + lambda2 * intra (+ w * SupCon)."""

    ce: bool = Field(True, description="train a classifier with cross-entropy (off for a metric-loss-only model)")
    inter: InterLossConfig = Field(default_factory=InterLossConfig)
    intra: IntraLossConfig = Field(default_factory=IntraLossConfig)
    supcon: SupConLossConfig = Field(default_factory=SupConLossConfig)
    small_dataset_scaling: bool = Field(
        False, description="derive K, n_tau, memory size and start epoch from the data (docs/method.md, section 5); "
        "values given explicitly win"
    )


class OptimConfig(Section):
    """SGD with Nesterov momentum (or Adam) and a per-iteration cosine schedule after a linear warm-up."""

    optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="sgd (the released ACLNet settings) or adam (GaitGraph's; momentum/nesterov unused)"
    )
    lr: float = Field(0.025, gt=0, description="learning rate for `batch_size` (scale linearly with total batch)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(True, description="Nesterov momentum")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay")
    batch_size: int = Field(16, ge=1, le=65_536, description="samples per step and process")
    epochs: int = Field(150, ge=1, le=100_000, description="training epochs")
    warmup_epochs: float = Field(0.0, ge=0, description="warm-up length in epochs (linear for cosine; the rising "
                                 "phase of onecycle, 0: its default 30 % of the schedule)")
    schedule: Literal["cosine", "onecycle"] = Field(
        "cosine", description="cosine: linear warm-up, then cosine down to 0 (the release); onecycle: PyTorch's "
        "OneCycleLR with its defaults, from lr/25 up to lr and down to lr/250000, the momentum (Adam's beta1) "
        "cycling 0.95 -> 0.85 -> 0.95 (GaitGraph's schedule)")
    clip_grad: float | None = Field(None, gt=0, description="max gradient norm (None: no clipping)")


class TrainConfig(Section):
    """Loop, evaluation and reproducibility settings."""

    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of every random number generator")
    deterministic: bool = Field(False, description="deterministic algorithms (slower; exact resume on CPU)")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:[0-9]{1,3})?)$", description="auto, cpu, cuda or cuda:N")
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    val_interval: int = Field(1, ge=1, le=100_000, description="validate every N epochs")
    select_on: Literal["val", "test", "last"] = Field(
        "last", description="what picks the tested checkpoint: 'last' the final epoch of the schedule (a rule "
        "fixed before training; nothing is held out of the training split, as the published protocols train; "
        "a data.val_split is still validated, for the log only), 'val' the best validation epoch (part of the "
        "training subjects is held out unless data.val_split names a split), 'test' the best test epoch "
        "(reproduces the release, labelled so in the report)"
    )
    save_embeddings_at: list[int] = Field(default_factory=list, description="epochs at which test embeddings are saved")
    init_weights: Path | None = Field(None, description="start from the model weights of this checkpoint (or run "
                                      "folder) instead of random ones: a second stage such as GaitGraph's fine-tune")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (quick runs)")


class ExperimentConfig(Section):
    """A whole experiment. The task's own sections (a retrieval task's `protocol:`) are validated by the task's
    models (`aclnet.config.tasks`) and read with `section`."""

    name: str = Field("experiment", description="experiment name (the default work dir is work_dirs/NAME)")
    task: str = Field(DEFAULT_TASK, description="what is trained and how it is evaluated: a registered task (the "
                      "built-in action, gait and reid, or one registered with aclnet.tasks.register_task)")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """A name is one folder under work_dirs/: no separators, not '.' or '..', no control characters."""
        if value in ("", ".", "..") or any(c in value for c in "/\\") or not value.isprintable():
            raise ValueError(f"{value!r} is not a folder name (the default work dir is work_dirs/NAME): use letters, "
                             "digits and . _ - without path separators")
        return value

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        tasks = registered_tasks()
        if value not in tasks:
            raise ValueError(f"unknown task '{value}'; valid: {', '.join(tasks)}")
        return value

    def section(self, key: str) -> BaseModel:
        """The task's own section `key`, validated by the task's model."""
        if key not in self._sections:
            raise InputError(f"the configuration has no '{key}' section (task '{self.task}' owns "
                             f"{sorted(self._sections) or 'none'}); load it with aclnet.config.validate_config")
        return self._sections[key]

    @property
    def sections(self) -> dict[str, BaseModel]:
        """Every section the task owns, by key (what `dump_config` writes beside the common ones)."""
        return dict(self._sections)
