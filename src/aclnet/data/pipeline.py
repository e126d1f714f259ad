"""Pipelines declared in configuration: a list of named steps with validated parameters.

A step is written `"name"` (default parameters) or `{"name": {parameter: value}}`. Every step's
parameters and its function are one class (`Step`, registered in `STEPS`); unknown steps, unknown
parameters, wrong types and impossible orders are `InputError`s at build time. `Pipeline(sample, rng)` returns float32
(clips, M, T, V, C') for the model.

Order rules: joint-space steps (normalisation, augmentation, COCO -> coco_new) come before
`modality`; `pre_normalize_3d` comes before the temporal step (`uniform_sample`,
`random_crop_resize` or `temporal_window`, at most one); without a `modality` step the joints
('j') are output. In test mode the random augmentations are left out and sampling is
deterministic per sample. For how `num_clips` makes clips see `Pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from aclnet.data import transforms as tf
from aclnet.data.sample import Sample
from aclnet.errors import InputError
from aclnet.skeleton import BUILTIN_LAYOUTS, Layout

StepKind = Literal["joints", "augment", "temporal", "features", "persons"]


@dataclass
class _State:
    """Arrays in flight: keypoint (clips, M, T, V, C), score (clips, M, T, V) or None."""

    keypoint: np.ndarray
    score: np.ndarray | None
    img_shape: tuple[int, int] | None
    clip: int = 0
    """Which of the clips this pass makes (pipelines that run once per clip)."""


Apply = Callable[[_State, np.random.Generator], None]


@dataclass(frozen=True)
class _Context:
    """What a step needs at build time: the layout of its input, the mode and the clip count."""

    layout: Layout
    test_mode: bool
    num_clips: int
    where: str


class Step(BaseModel):
    """A pipeline step, one declared unit: its parameters (the fields, validated) and what it does (`bind`).

    A subclass names itself (`step`) and its kind, and registers in `STEPS` by being defined: adding a step,
    augmentation or otherwise, is one class. `bind` checks the parameters against the layout of the step's
    input at build time and returns the function that runs the step on the arrays in flight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: ClassVar[str]
    kind: ClassVar[StepKind]
    next_layout: ClassVar[str | None] = None
    """The layout of the step's output, when it changes the joints (else its input's)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            STEPS[cls.step] = cls

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        """Refuse true/false where a number is meant (pydantic would read them as 1/0)."""
        if isinstance(value, bool) and cls.model_fields[str(info.field_name)].annotation is not bool:
            raise ValueError("expected a number, got a boolean")
        return value

    def bind(self, ctx: _Context) -> Apply:
        """The function that runs the step (in place on `_State`), its parameters checked against `ctx`."""
        raise NotImplementedError


STEPS: dict[str, type[Step]] = {}
"""Every step by name (for configurations, documentation and schemas); filled by the `Step` subclasses."""


class PreNormalize3D(Step):
    """PYSKL's PreNormalize3D: drop empty frames, center on the main person, optionally align the spine."""

    step: ClassVar[str] = "pre_normalize_3d"
    kind: ClassVar[StepKind] = "joints"

    align_spine: bool = Field(
        True, description="Rotate so that the zaxis vector lies on +z, then the xaxis vector on +x."
    )
    center_joint: int | None = Field(
        None, ge=0,
        description="Joint subtracted as origin; None: joint 1 for 25 joints (PYSKL), else the layout's center.",
    )
    zaxis: tuple[int, int] = Field(
        (0, 1), description="(a, b): the vector from joint a to joint b is turned onto +z (NTU: spine base -> mid)."
    )
    xaxis: tuple[int, int] = Field(
        (8, 4),
        description="(a, b): the vector from joint b to joint a is turned onto +x (NTU: left -> right shoulder).",
    )

    def bind(self, ctx: _Context) -> Apply:
        joints = [self.center_joint] if self.center_joint is not None else []
        joints += [*self.zaxis, *self.xaxis] if self.align_spine else []
        bad = [j for j in joints if not 0 <= j < ctx.layout.num_joints]
        if bad:
            last = ctx.layout.num_joints - 1
            raise InputError(f"{ctx.where}: joints {bad} are outside 0..{last} of layout '{ctx.layout.name}'")
        options = self.model_dump()
        if self.center_joint is None and ctx.layout.num_joints != 25:
            options["center_joint"] = ctx.layout.center  # PYSKL's "last joint" fits no layout but its own

        def apply(state: _State, rng: np.random.Generator) -> None:
            score = None if state.score is None else state.score[0]
            kp, score = tf.pre_normalize_3d(state.keypoint[0], score, **options)
            state.keypoint, state.score = kp[None], None if score is None else score[None]

        return apply


class Normalize2D(Step):
    """PYSKL's PreNormalize2D: pixel coordinates to [-1, 1], low-score joints zeroed."""

    step: ClassVar[str] = "normalize_2d"
    kind: ClassVar[StepKind] = "joints"

    mode: Literal["fix", "auto"] = Field(
        "fix", description="'fix': scale by the image size; 'auto': by the box of confident joints."
    )
    threshold: float = Field(0.01, description="Joints with score <= threshold get x = y = 0.")
    default_img_shape: tuple[int, int] = Field(
        (1080, 1920), description="(height, width) used when a sample has no img_shape (PYSKL's default)."
    )

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            shape = state.img_shape or self.default_img_shape
            state.keypoint, state.score = tf.normalize_2d(
                state.keypoint, state.score, shape, mode=self.mode, threshold=self.threshold
            )

        return apply


class CocoToCocoNew(Step):
    """COCO-17 to the release's 20-joint coco_new layout: mid-hip, mid-spine and mid-shoulder added."""

    step: ClassVar[str] = "coco_to_coco_new"
    kind: ClassVar[StepKind] = "joints"
    next_layout: ClassVar[str | None] = "coco_new"

    def bind(self, ctx: _Context) -> Apply:
        if ctx.layout.name != "coco":
            raise InputError(f"{ctx.where}: needs data in the 'coco' layout, the data here is in '{ctx.layout.name}'")

        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.coco_to_coco_new(state.keypoint, state.score)

        return apply


class RandomRotate(Step):
    """Random rotation (training only)."""

    step: ClassVar[str] = "random_rotate"
    kind: ClassVar[StepKind] = "augment"

    max_angle: float = Field(0.3, ge=0, description="Largest rotation angle in radians, per axis.")

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint = tf.random_rotate(state.keypoint, rng, self.max_angle)

        return apply


class RandomScale(Step):
    """Random per-channel scaling (training only)."""

    step: ClassVar[str] = "random_scale"
    kind: ClassVar[StepKind] = "augment"

    scale: float | tuple[float, ...] = Field(0.2, description="Each channel times 1 + u * scale, u uniform in [-1, 1].")

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            channels = state.keypoint.shape[-1]
            if isinstance(self.scale, tuple) and len(self.scale) != channels:
                raise InputError(f"random_scale: {len(self.scale)} scales for {channels} channels")
            state.keypoint = tf.random_scale(state.keypoint, rng, self.scale)

        return apply


class RandomShear(Step):
    """Random shear (training only)."""

    step: ClassVar[str] = "random_shear"
    kind: ClassVar[StepKind] = "augment"

    shear: float = Field(0.3, ge=0, description="Off-diagonal shear coefficients uniform in [-shear, shear].")

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint = tf.random_shear(state.keypoint, rng, self.shear)

        return apply


class RandomFlip(Step):
    """Random left/right mirroring with the layout's flip pairs (training only)."""

    step: ClassVar[str] = "random_flip"
    kind: ClassVar[StepKind] = "augment"

    p: float = Field(0.5, ge=0, le=1, description="Probability of mirroring a sample.")
    use_image_width: bool = Field(
        False, description="Mirror pixel coordinates as width - x (needs img_shape); else x -> -x."
    )

    def bind(self, ctx: _Context) -> Apply:
        layout = ctx.layout

        def apply(state: _State, rng: np.random.Generator) -> None:
            width = None
            if self.use_image_width:
                if state.img_shape is None:
                    raise InputError("random_flip: use_image_width is set but the sample has no img_shape")
                width = float(state.img_shape[1])
            state.keypoint, state.score = tf.random_flip(state.keypoint, state.score, layout, width, rng, self.p)

        return apply


class SwapLeftRight(Step):
    """Exchange the layout's left and right joints, coordinates unchanged (the release's Spatial_Flip;
    training only)."""

    step: ClassVar[str] = "swap_left_right"
    kind: ClassVar[StepKind] = "augment"

    p: float = Field(0.5, ge=0, le=1, allow_inf_nan=False, description="Probability of swapping a sample.")

    def bind(self, ctx: _Context) -> Apply:
        if not ctx.layout.flip_pairs:
            raise InputError(f"{ctx.where}: layout '{ctx.layout.name}' has no left/right joint pairs to swap")
        order = ctx.layout.flip_index

        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.swap_left_right(state.keypoint, state.score, order, rng, self.p)

        return apply


class PartDrop(Step):
    """Zero one limb group with probability p (training only)."""

    step: ClassVar[str] = "part_drop"
    kind: ClassVar[StepKind] = "augment"

    p: float = Field(0.2, ge=0, le=1, description="Probability of zeroing one of the four limb groups.")

    def bind(self, ctx: _Context) -> Apply:
        try:
            groups = tf.limb_groups(ctx.layout)
        except InputError as err:
            raise InputError(f"{ctx.where}: {err}") from None

        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.part_drop(state.keypoint, state.score, groups, rng, self.p)

        return apply


class MirrorAboutCenter(Step):
    """GaitGraph's MirrorPoses: x -> 2c - x about each pose's mean x, joints not swapped (training only)."""

    step: ClassVar[str] = "mirror_about_center"
    kind: ClassVar[StepKind] = "augment"

    p: float = Field(0.5, ge=0, le=1, allow_inf_nan=False, description="Probability of mirroring a sample.")

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint = tf.random_mirror_about_center(state.keypoint, rng, self.p)

        return apply


class ReverseTime(Step):
    """GaitGraph's FlipSequence: the frames in reverse order (training only)."""

    step: ClassVar[str] = "reverse_time"
    kind: ClassVar[StepKind] = "augment"

    p: float = Field(0.5, ge=0, le=1, allow_inf_nan=False, description="Probability of reversing a sample.")

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.random_reverse_time(state.keypoint, state.score, rng, self.p)

        return apply


class PointNoise(Step):
    """GaitGraph's PointNoise: Gaussian noise on every coordinate in every frame (training only)."""

    step: ClassVar[str] = "point_noise"
    kind: ClassVar[StepKind] = "augment"

    std: float = Field(
        0.05, ge=0, allow_inf_nan=False,
        description="Standard deviation in the units of the coordinates (GaitGraph: pixels, 0.05).",
    )
    noise_score: bool = Field(
        False, description="Noise the score too (GaitGraph does: its score is the third channel)."
    )

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.point_noise(
                state.keypoint, state.score, rng, self.std, noise_score=self.noise_score
            )

        return apply


class JointNoise(Step):
    """GaitGraph's JointNoise: one Gaussian offset per joint, the same in every frame (training only)."""

    step: ClassVar[str] = "joint_noise"
    kind: ClassVar[StepKind] = "augment"

    std: float = Field(
        0.25, ge=0, allow_inf_nan=False,
        description="Standard deviation in the units of the coordinates (GaitGraph's code: 0.25 pixels).",
    )

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint = tf.joint_noise(state.keypoint, rng, self.std)

        return apply


class UniformSample(Step):
    """PYSKL's uniform sampling into clips; deterministic per sample at test time."""

    step: ClassVar[str] = "uniform_sample"
    kind: ClassVar[StepKind] = "temporal"

    clip_len: int = Field(100, ge=1, description="Frames per clip.")
    p_interval: tuple[float, float] = Field(
        (1.0, 1.0), description="Share of the frames each clip is drawn from (random in this range)."
    )
    seed: int = Field(tf.PYSKL_TEST_SEED, description="Random seed reset before every sample at test time.")
    short_test_start: tf.ShortTestStart = Field(
        "random",
        description="Test-time start of clips from sequences shorter than clip_len: "
        "'random' (NTU) or 'spread' (Kinetics).",
    )

    def bind(self, ctx: _Context) -> Apply:
        low, high = self.p_interval
        if not 0 < low <= high <= 1:
            raise InputError(f"{ctx.where}: p_interval {self.p_interval} must satisfy 0 < low <= high <= 1")

        def apply(state: _State, rng: np.random.Generator) -> None:
            indices = tf.uniform_sample_indices(
                state.keypoint.shape[2], self.clip_len, ctx.num_clips, rng,
                test_mode=ctx.test_mode, p_interval=self.p_interval, seed=self.seed,
                short_test_start=self.short_test_start,
            )
            state.keypoint = tf.take_frames(state.keypoint[0], indices, frame_axis=1)
            if state.score is not None:
                state.score = tf.take_frames(state.score[0], indices, frame_axis=1)

        return apply


class RandomCropResize(Step):
    """Temporal crop resized by linear interpolation (centred at test time)."""

    step: ClassVar[str] = "random_crop_resize"
    kind: ClassVar[StepKind] = "temporal"

    ratio: tuple[float, float] = Field((0.5, 1.0), description="Share of the frames kept by the random crop.")
    test_ratio: float = Field(0.95, gt=0, le=1, description="Share kept by the centred crop at test time.")
    length: int = Field(64, ge=1, description="Frames after resizing.")
    min_length: int = Field(1, ge=1, description="Shortest crop in frames.")

    def bind(self, ctx: _Context) -> Apply:
        low, high = self.ratio
        if not 0 < low <= high <= 1:
            raise InputError(f"{ctx.where}: ratio {self.ratio} must satisfy 0 < low <= high <= 1")
        ratio = (self.test_ratio, self.test_ratio) if ctx.test_mode else self.ratio

        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.random_crop_resize(
                state.keypoint, state.score, None if ctx.test_mode else rng,
                ratio=ratio, length=self.length, min_length=self.min_length,
            )

        return apply


class TemporalWindow(Step):
    """A contiguous window of frames: random in training; at test time the centre window, or windows spread
    from the first frames to the last that together cover the sequence."""

    step: ClassVar[str] = "temporal_window"
    kind: ClassVar[StepKind] = "temporal"

    length: int = Field(60, ge=1, description="Frames in the window.")
    short: tf.ShortWindow = Field(
        "loop",
        description="Sequences shorter than length: 'loop' (repeat from a random start, 0 at test), "
        "'pad' (zeros after the last frame) or 'error'.",
    )
    test_windows: Literal["centre", "spread"] = Field(
        "centre", description="At test time: 'centre' (every clip the centre window, GaitGraph's) or 'spread' "
        "(clip k of n starts at k / (n - 1) of the way: the first and last windows reach both ends, and n "
        "windows cover a sequence of up to n x length frames; their embeddings are averaged).",
    )

    def bind(self, ctx: _Context) -> Apply:
        spread = ctx.test_mode and self.test_windows == "spread" and ctx.num_clips > 1

        def apply(state: _State, rng: np.random.Generator) -> None:
            position = state.clip / (ctx.num_clips - 1) if spread else None
            state.keypoint, state.score = tf.temporal_window(
                state.keypoint, state.score, None if ctx.test_mode else rng, length=self.length, short=self.short,
                position=position,
            )

        return apply


class Modality(Step):
    """The features given to the model; 2D scores become each feature's last channel."""

    step: ClassVar[str] = "modality"
    kind: ClassVar[StepKind] = "features"

    name: str = Field("j", description="Features j, b, k, jm, bm, km or a '+' concatenation such as 'j+b'.")
    score_mode: tf.ScoreMode = Field(
        "released", description="2D scores: 'released' (bones mean, others difference) or 'mean' (all means)."
    )

    def bind(self, ctx: _Context) -> Apply:
        try:
            tf.parse_modality(self.name)
        except InputError as err:
            raise InputError(f"{ctx.where}: {err}") from None
        layout = ctx.layout

        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint = tf.modality(state.keypoint, state.score, layout, self.name, score_mode=self.score_mode)
            state.score = None

        return apply


class PadPersons(Step):
    """Fixed number of persons so that samples stack into batches."""

    step: ClassVar[str] = "pad_persons"
    kind: ClassVar[StepKind] = "persons"

    num_persons: int = Field(2, ge=1, description="Persons per sample after zero padding or truncation.")

    def bind(self, ctx: _Context) -> Apply:
        def apply(state: _State, rng: np.random.Generator) -> None:
            state.keypoint, state.score = tf.pad_persons(state.keypoint, state.score, self.num_persons)

        return apply


def _parse_step(spec: object, position: int) -> tuple[str, Step]:
    """Turn one configuration entry into (name, validated parameters)."""
    where = f"pipeline step #{position}"
    if isinstance(spec, str):
        name, raw = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, raw = next(iter(spec.items()))
        raw = {} if raw is None else raw
    else:
        raise InputError(f"{where}: expected a step name or a one-key mapping {{name: {{parameters}}}}, got {spec!r}")
    if name not in STEPS:
        raise InputError(f"{where}: unknown step {name!r}; valid steps are {sorted(STEPS)}")
    where = f"{where} '{name}'"
    model = STEPS[name]
    if not isinstance(raw, dict):
        valid = sorted(model.model_fields)
        raise InputError(f"{where}: parameters must be a mapping, got {raw!r}; valid parameters are {valid}")
    try:
        return name, model.model_validate(raw)
    except ValidationError as err:
        raise InputError(f"{where}: {_describe(err, model)}") from None


def _describe(err: ValidationError, model: type[Step]) -> str:
    """One line per pydantic error, naming the parameter and listing the valid ones."""
    valid = sorted(model.model_fields)
    lines = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "<parameters>"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown parameter '{field}'; valid parameters are {valid}")
        else:
            lines.append(f"parameter '{field}': {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def _check_order(names: list[str], num_clips: int) -> None:
    """Joint-space steps before `modality`, `pre_normalize_3d` before sampling, one temporal step."""
    kinds = [STEPS[n].kind for n in names]
    if kinds.count("features") > 1:
        raise InputError(
            f"pipeline has {kinds.count('features')} 'modality' steps; concatenate features in one, e.g. 'j+b'"
        )
    if kinds.count("temporal") > 1:
        raise InputError(
            "pipeline has more than one temporal step (uniform_sample, random_crop_resize, temporal_window)"
        )
    for position, (name, kind) in enumerate(zip(names, kinds), start=1):
        before = names[: position - 1]
        if kind in ("joints", "augment") and "modality" in before:
            raise InputError(f"pipeline step #{position} '{name}' works on joints and must come before 'modality'")
        if name == "pre_normalize_3d" and any(STEPS[n].kind == "temporal" for n in before):
            raise InputError(f"pipeline step #{position} 'pre_normalize_3d' must come before temporal sampling")
    if num_clips > 1 and "temporal" not in kinds:
        raise InputError(
            f"num_clips={num_clips} needs a temporal step: 'uniform_sample' (draws the clips) or "
            "'temporal_window' / 'random_crop_resize' (the pipeline runs once per clip)"
        )


def _step_name(spec: object) -> str | None:
    """The name of a step entry (`"name"` or `{name: {...}}`), None for anything else."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and len(spec) == 1:
        name = next(iter(spec))
        return name if isinstance(name, str) else None
    return None


def check_augmentation_steps(steps: object, where: str) -> None:
    """Validate a list of extra training augmentations (a template's `stream_steps` entry).

    Each entry must be a valid step of kind 'augment' (random, training only, on joints); errors
    start with `where` and name the step.
    """
    if not isinstance(steps, list):
        raise InputError(f"{where}: expected a list of steps, e.g. [{{swap_left_right: {{p: 0.5}}}}], got {steps!r}")
    augmentations = sorted(n for n, step in STEPS.items() if step.kind == "augment")
    for position, spec in enumerate(steps, start=1):
        try:
            name, _ = _parse_step(spec, position)
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
        if STEPS[name].kind != "augment":
            raise InputError(
                f"{where}: step #{position} '{name}' is not a training augmentation; extra stream steps "
                f"go before 'modality' and must be one of {augmentations}"
            )


def insert_augmentations(steps: list, extra: list) -> list:
    """`steps` with `extra` inserted just before the `modality` step, i.e. after the normalisation
    and the other joint-space augmentations (where the release puts Spatial_Flip and Part_Drop);
    without a `modality` step, after the last joint-space step. Neither list is modified."""
    names = [_step_name(spec) for spec in steps]
    if "modality" in names:
        at = names.index("modality")
    else:
        joint_space = [i for i, n in enumerate(names) if n in STEPS and STEPS[n].kind in ("joints", "augment")]
        at = joint_space[-1] + 1 if joint_space else 0
    return [*steps[:at], *extra, *steps[at:]]


class Pipeline:
    """A built pipeline: call it with a sample and a generator for float32 (clips, M, T, V, C').

    Clips: with `uniform_sample` the sampling step draws all `num_clips` clips from one pass of
    the steps (the augmentations before it are shared by the clips). Without it (a
    `temporal_window` or `random_crop_resize` step) the steps run once per clip, one after the
    other on the same generator: in training the clips are independently augmented views of
    the sample (GaitGraph's two SupCon views), the first the same as with num_clips=1; at test
    time the steps are deterministic and the one view is repeated.
    """

    def __init__(
        self,
        steps: list[tuple[str, Step, Apply | None]],
        layout: Layout,
        output_layout: Layout,
        *,
        test_mode: bool,
        num_clips: int,
    ) -> None:
        self.steps = [(name, params) for name, params, _ in steps]
        self._run = [(name, apply) for name, _, apply in steps if apply is not None]
        self.layout = layout
        self.output_layout = output_layout
        self.test_mode = test_mode
        self.num_clips = num_clips
        self._per_view = num_clips > 1 and "uniform_sample" not in [name for name, _ in self.steps]
        self._spread = any(getattr(params, "test_windows", "centre") == "spread" for _, params in self.steps)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> np.ndarray:
        """Run the steps on one sample; the sample's arrays are not modified."""
        if sample.keypoint.ndim != 4 or sample.keypoint.shape[2] != self.layout.num_joints:
            raise InputError(
                f"sample '{sample.sample_id}': keypoint has shape {sample.keypoint.shape}, the pipeline's layout "
                f"'{self.layout.name}' needs (M, T, {self.layout.num_joints}, C)"
            )
        if not self._per_view:
            return self._run_once(sample, rng)
        if self.test_mode and not self._spread:
            return np.repeat(self._run_once(sample, rng), self.num_clips, axis=0)
        return np.concatenate([self._run_once(sample, rng, k) for k in range(self.num_clips)], axis=0)

    def _run_once(self, sample: Sample, rng: np.random.Generator, clip: int = 0) -> np.ndarray:
        """One pass of the steps over the sample (for clip `clip` of pipelines that run once per clip)."""
        score = None if sample.score is None else sample.score[None]
        state = _State(sample.keypoint[None], score, sample.img_shape, clip)
        for name, apply in self._run:
            try:
                apply(state, rng)
            except InputError as err:
                raise InputError(f"sample '{sample.sample_id}': step '{name}': {err}") from None
        return np.ascontiguousarray(state.keypoint, dtype=np.float32)

    def out_channels(self, in_channels: int, has_score: bool) -> int:
        """Channels C' of the output for inputs with `in_channels` coordinates (plus a score)."""
        name = next((p.name for n, p in self.steps if isinstance(p, Modality)), "j")
        return len(tf.parse_modality(name)) * (in_channels + int(has_score))

    def __repr__(self) -> str:
        steps = ", ".join(f"{n}({p.model_dump()})" for n, p in self.steps)
        mode = f"test_mode={self.test_mode}, num_clips={self.num_clips}"
        return f"Pipeline([{steps}], layout={self.layout.name!r}, {mode})"


MAX_OUTPUT_JOINTS = 2**25
"""Most joints (clips x persons x frames x joints) one sample may become: about 400 MB of float32 with three
channels, where the released settings give 50,000 (a configuration, also one inside a checkpoint, that
multiplies clips, persons and frames beyond this is refused before anything is allocated)."""


def _check_output_size(parsed: list[tuple[str, Step]], layout: Layout, num_clips: int) -> None:
    """Refuse a pipeline whose fixed output sizes multiply beyond `MAX_OUTPUT_JOINTS`."""
    sizes = {name: step for name, step in parsed}
    frames = next((getattr(sizes[n], "clip_len" if n == "uniform_sample" else "length") for n in
                   ("uniform_sample", "temporal_window", "random_crop_resize") if n in sizes), 1)
    persons = getattr(sizes.get("pad_persons"), "num_persons", 1)
    joints = num_clips * persons * frames * layout.num_joints
    if joints > MAX_OUTPUT_JOINTS:
        raise InputError(f"the pipeline would make {num_clips} clip(s) x {persons} person(s) x {frames} frames x "
                         f"{layout.num_joints} joints = {joints:,} joints per sample, more than {MAX_OUTPUT_JOINTS:,}; "
                         "lower the clips, persons or frames")


def build_pipeline(steps: list, layout: Layout, *, test_mode: bool, num_clips: int = 1) -> Pipeline:
    """Validate a step list against a layout and build the pipeline.

    Raises `InputError` for an unknown step or parameter (listing the valid ones), a wrong
    type, a layout the step cannot use, or an impossible order. In test mode the random
    augmentations (kind 'augment') are validated but not run.
    """
    if not isinstance(steps, list | tuple):
        raise InputError(f"a pipeline is a list of steps, got {type(steps).__name__}")
    if num_clips < 1:
        raise InputError(f"num_clips must be >= 1, got {num_clips}")
    parsed = [_parse_step(spec, i) for i, spec in enumerate(steps, start=1)]
    names = [n for n, _ in parsed]
    _check_order(names, num_clips)
    _check_output_size(parsed, layout, num_clips)
    if "modality" not in names:
        parsed.append(("modality", Modality()))
    built: list[tuple[str, Step, Apply | None]] = []
    current = layout
    for position, (name, params) in enumerate(parsed, start=1):
        ctx = _Context(current, test_mode, num_clips, f"pipeline step #{position} '{name}'")
        apply = params.bind(ctx)
        built.append((name, params, None if test_mode and params.kind == "augment" else apply))
        current = BUILTIN_LAYOUTS[params.next_layout] if params.next_layout else current
    return Pipeline(built, layout, current, test_mode=test_mode, num_clips=num_clips)


# --------------------------------------------------------------------------------------------
# Released configurations (docs/method.md, section 8)
# --------------------------------------------------------------------------------------------


def ntu_steps(modality: str = "j") -> list[dict]:
    """NTU RGB+D 60/120: 3D normalisation (no spine alignment), rotation 0.2 rad (training),
    features, uniform sampling of 100 frames (random start for short clips at test), 2 persons."""
    return [
        {"pre_normalize_3d": {"align_spine": False}},
        {"random_rotate": {"max_angle": 0.2}},
        {"modality": {"name": modality}},
        {"uniform_sample": {"clip_len": 100, "short_test_start": "random"}},
        {"pad_persons": {"num_persons": 2}},
    ]


def pku_mmd_steps(modality: str = "j") -> list[dict]:
    """PKU-MMD: as NTU plus part drop (p = 0.2, training) and 50 frames."""
    return [
        {"pre_normalize_3d": {"align_spine": False}},
        {"random_rotate": {"max_angle": 0.2}},
        {"part_drop": {"p": 0.2}},
        {"modality": {"name": modality}},
        {"uniform_sample": {"clip_len": 50, "short_test_start": "random"}},
        {"pad_persons": {"num_persons": 2}},
    ]


def kinetics_steps(modality: str = "j") -> list[dict]:
    """Kinetics-Skeleton and FineGYM (2D COCO with scores): COCO -> coco_new, 100 frames
    (short clips spread at test), random flip in pixels by the image width (training), features
    with the score as the third channel, 2 persons. The flip runs before the features so that
    it mirrors joint positions, not bone vectors."""
    return [
        "coco_to_coco_new",
        {"uniform_sample": {"clip_len": 100, "short_test_start": "spread"}},
        {"random_flip": {"p": 0.5, "use_image_width": True}},
        {"modality": {"name": modality}},
        {"pad_persons": {"num_persons": 2}},
    ]


def plain_steps(modality: str = "j") -> list[dict]:
    """Data already centred and scaled (generated data, custom data): features, 64 frames, 1 person."""
    return [
        {"modality": {"name": modality}},
        {"uniform_sample": {"clip_len": 64}},
        {"pad_persons": {"num_persons": 1}},
    ]


def gaitgraph_steps(modality: str = "j") -> list[dict]:
    """GaitGraph (tteepe/GaitGraph, src/train.py) on 2D COCO-17 poses in pixels with the score as
    the third channel: mirror about the pose centre (p 0.5), reversed time (p 0.5), a random
    60-frame window (the centre window at test), point noise 0.05 on x, y and the score, joint
    noise 0.25 on x, y (the value its code uses; its --joint_noise_std 0.1 is ignored), 1 person.
    No normalisation: the noise is in pixels, as in GaitGraph. For its two SupCon views build
    the training pipeline with num_clips=2."""
    return [
        {"mirror_about_center": {"p": 0.5}},
        {"reverse_time": {"p": 0.5}},
        {"temporal_window": {"length": 60, "short": "loop"}},
        {"point_noise": {"std": 0.05, "noise_score": True}},
        {"joint_noise": {"std": 0.25}},
        {"modality": {"name": modality}},
        {"pad_persons": {"num_persons": 1}},
    ]


PRESETS: dict[str, Callable[[str], list[dict]]] = {
    "ntu": ntu_steps,
    "pku-mmd": pku_mmd_steps,
    "kinetics": kinetics_steps,
    "finegym": kinetics_steps,
    "plain": plain_steps,
    "gaitgraph": gaitgraph_steps,
}
"""Step lists by name (the released configurations' and `plain`); call with a modality name."""
