"""Use a trained model from its checkpoint alone: `aclnet.load(checkpoint)`.

A checkpoint written by `aclnet train` carries its resolved configuration (task, test pipeline, clip
settings, model), the class names and what the input must look like (layout, coordinate channels,
scores), so nothing else is needed: no configuration file, no dataset.

    model = aclnet.load("work_dirs/ntu60-xsub-j")            # a run folder or a .pt file
    model.predict(array)                                     # top-5 classes with probabilities
    model.embed(["walk1.npy", "walk2.npy"])                  # (2, D) L2-normalised embeddings
    model.timeline(long_array, window=64, stride=16)         # classes of a sliding window

Inputs (`inputs` below) are anything `aclnet.inference.inputs.as_sequences` takes: an array (T, V, C) or (M, T, V, C),
a list of arrays of different lengths, a `Sample`, a path of any `prepare` format or a plain-array file
(`.npy`, `.npz`, `.csv`, `.txt`), or a list of these; the rules and the checks against the model are in
`aclnet.inference.inputs`. Every sequence goes through the test pipeline on its own (the same clips as `aclnet test`,
a generator seeded with `PIPELINE_SEED` for each, so results are deterministic), then they are batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aclnet.config import ExperimentConfig, config_from_text
from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.forward import run_model
from aclnet.engine.retrieval import normalised_rows
from aclnet.engine.run import load_for_inference
from aclnet.engine.run_folder import resolve_checkpoint
from aclnet.engine.seam import TaskOutput
from aclnet.errors import InputError
from aclnet.inference.inputs import InputSequence, as_sequences, check_sequence
from aclnet.inference.results import (
    ClassScore,
    Gallery,
    Prediction,
    Timeline,
    require_whole_number,
    window_starts,
)
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.progress import Progress
from aclnet.skeleton import Layout
from aclnet.skeleton.custom import layout_from_mapping
from aclnet.tasks.base import Task
from aclnet.tasks.components import build_inference_model
from aclnet.tasks.registry import make_task

PIPELINE_SEED = 0
"""Seed of the generator given to the test pipeline, fresh for every input sequence."""
BATCH_SIZE = 32
"""Sequences per forward pass."""


@dataclass
class LoadedModel:
    """A trained model with everything it needs to run on new sequences.

    Attributes:
        model: the network without its training-only parts, in eval mode.
        config: the run's resolved configuration.
        task: the run's task object (it says what the model's output is).
        pipeline: the test pipeline (`config.data.test_clips` clips per sequence).
        layout: the skeleton layout the input must follow.
        classes: names of the training classes (actions, or training identities).
        keypoint_channels: coordinates per joint the input must have (2 or 3).
        has_score: whether the input carries a confidence per joint (2D pose-estimator output).
        source: the checkpoint file.
    """

    model: SkeletonModel
    config: ExperimentConfig
    task: Task
    pipeline: Pipeline
    layout: Layout
    classes: list[str]
    keypoint_channels: int
    has_score: bool
    source: Path

    @property
    def output(self) -> TaskOutput:
        """What the run's task makes of the model: `class_scores` (it predicts classes) or `embeddings` (it
        embeds sequences, matched against a gallery)."""
        return self.task.output

    @property
    def clip_length(self) -> int | None:
        """Frames per clip of the test pipeline (None when it has no temporal step and keeps every frame)."""
        for name, params in self.pipeline.steps:
            if name == "uniform_sample":
                return int(params.clip_len)
            if name in ("temporal_window", "random_crop_resize"):
                return int(params.length)
        return None

    @property
    def short_sequence_rule(self) -> str:
        """What the test pipeline does with sequences shorter than its clip (any length >= 1 is accepted,
        except by a `temporal_window` step with `short: error`)."""
        for name, params in self.pipeline.steps:
            if name == "uniform_sample":
                start = ("from a start fixed by the test seed" if params.short_test_start == "random"
                         else "from starts spread over the sequence")
                return (f"uniform_sample: a sequence shorter than {params.clip_len} frames is looped (each clip "
                        f"takes {params.clip_len} consecutive frames cyclically {start}); longer ones are sampled "
                        f"uniformly down to {params.clip_len} frames")
            if name == "temporal_window":
                rule = {"loop": "repeated cyclically from its first frame",
                        "pad": "followed by zero frames",
                        "error": "refused (InputError)"}[params.short]
                return (f"temporal_window: the centre {params.length} frames; a shorter sequence is {rule}")
            if name == "random_crop_resize":
                return (f"random_crop_resize: the centred {params.test_ratio:g} share of the frames is resized "
                        f"by linear interpolation to {params.length} frames, whatever the length")
        return "the pipeline has no temporal step: every frame is used as it is"

    def sequences(self, inputs: Any, *, format: str | None = None) -> list[InputSequence]:
        """The input sequences, read and checked against the model (`aclnet.inference.inputs.check_sequence`).

        Args:
            inputs: arrays, a list of arrays of different lengths, `Sample`s, paths (see the module docstring).
            format: the format of paths (None: guessed from the suffix or the folder contents).

        Returns:
            One `InputSequence` per sequence, its sample ready for the pipeline.

        Raises:
            InputError: input that cannot be read or does not fit the model (names expected and given shapes).
        """
        read = as_sequences(inputs, format=format, num_joints=self.layout.num_joints, channels=self.keypoint_channels)
        return [InputSequence(s.name, check_sequence(s, self.layout, self.keypoint_channels, self.has_score),
                              s.identity) for s in read]

    def predict(self, inputs: Any, *, top_k: int = 5, format: str | None = None) -> list[Prediction]:
        """The most probable classes of every input sequence.

        Probabilities are the softmax of the classifier, averaged over the test pipeline's clips (what
        `aclnet test` scores).

        Args:
            inputs: an array (T, V, C) or (M, T, V, C), a list of such arrays (lengths may differ), a `Sample`,
                a path of a file or folder (any `prepare` format, `.npy`, `.npz`, `.csv`, `.txt`), or a list.
            top_k: classes per input (at most the number of classes).
            format: the format of paths (None: guessed).

        Returns:
            One `Prediction` per sequence, in input order (a path may hold several sequences).

        Raises:
            InputError: bad input, or a model without classifier (use `embed`).
        """
        require_whole_number("top_k", top_k)
        sequences = self.sequences(inputs, format=format)
        scores, _ = self._run([s.sample for s in sequences], need_scores=True)
        k = min(top_k, len(self.classes))
        return [self._prediction(s.name, p, k) for s, p in zip(sequences, scores)]

    def embed(self, inputs: Any, *, format: str | None = None, normalize: bool = True) -> np.ndarray:
        """Embeddings of the input sequences: the pooled backbone features that gait recognition and
        re-identification compare, averaged over the test clips (and over the time-reversed clips when the
        run's protocol sets `test_flip`), L2-normalised as the retrieval test does.

        Args:
            inputs: as for `predict`.
            format: the format of paths (None: guessed).
            normalize: L2-normalise each row (False: the raw averaged features).

        Returns:
            (N, D) float32, one row per sequence in input order.
        """
        features = self._run([s.sample for s in self.sequences(inputs, format=format)])[1]
        return (normalised_rows(features) if normalize else features).astype(np.float32)

    def gallery(self, inputs: Any, *, format: str | None = None) -> Gallery:
        """A gallery of the input sequences; identities are the samples' class names (sequences read from a
        dataset file) or else the sequence names.

        Args:
            inputs: as for `predict`.
            format: the format of paths (None: guessed).
        """
        sequences = self.sequences(inputs, format=format)
        features = self._run([s.sample for s in sequences])[1]
        names = [s.name for s in sequences]
        return Gallery(normalised_rows(features), [s.identity or s.name for s in sequences], names)

    def timeline(self, inputs: Any, *, window: int, stride: int, format: str | None = None) -> list[Timeline]:
        """Classify a sliding window over each input sequence (long recordings).

        Args:
            inputs: as for `predict`.
            window: frames per window (>= 1); each window goes through the test pipeline like a sequence.
            stride: frames between the starts of consecutive windows (>= 1).
            format: the format of paths (None: guessed).

        Returns:
            One `Timeline` per sequence: floor((T - window) / stride) + 1 windows starting at 0, stride, ...
            (one window, the whole sequence, when T < window).
        """
        for option, value in (("window", window), ("stride", stride)):
            require_whole_number(option, value)
        timelines = []
        for sequence in self.sequences(inputs, format=format):
            sample = sequence.sample
            t = sample.num_frames
            starts = window_starts(t, window, stride)
            pieces = [_frames(sample, int(a), min(int(a) + window, t)) for a in starts]
            scores, _ = self._run(pieces, need_scores=True)
            timelines.append(Timeline(sequence.name, t, int(window), int(stride), list(self.classes),
                                      starts.astype(np.int64), scores))
        return timelines

    def _prediction(self, name: str, probabilities: np.ndarray, k: int) -> Prediction:
        order = np.argsort(-probabilities, kind="stable")[:k]
        top = tuple(ClassScore(self.classes[i], int(i), float(probabilities[i])) for i in order)
        return Prediction(name, top, probabilities)

    @torch.no_grad()
    def _run(self, samples: Sequence[Sample], *, need_scores: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Clip-averaged probabilities (N, C) and features (N, D) of checked samples, in order."""
        if need_scores and self.model.cls_head is None:
            raise InputError(f"{self.source}: this model has no classifier (it was trained with a metric loss "
                             "only); it gives embeddings (`embed`), not classes")
        time_flip = self.task.time_flip
        device = next(self.model.parameters()).device
        self.model.eval()
        progress = Progress("sequences (or windows) prepared, then run", total=2 * len(samples))
        clips = []
        for sample in samples:
            clips.append(self.pipeline(sample, np.random.default_rng(PIPELINE_SEED)))
            progress.step()
        scores: list[np.ndarray | None] = [None] * len(clips)
        features: list[np.ndarray | None] = [None] * len(clips)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, array in enumerate(clips):  # without a temporal step lengths differ: batch equal shapes
            groups.setdefault(array.shape, []).append(i)
        for indices in groups.values():
            for chunk in range(0, len(indices), BATCH_SIZE):
                part = indices[chunk:chunk + BATCH_SIZE]
                batch = torch.from_numpy(np.stack([clips[i] for i in part]))
                labels = torch.zeros(len(part), dtype=torch.long)
                out = run_model(self.model, [(batch, labels, torch.tensor(part))], device, False, time_flip=time_flip)
                for row, i in enumerate(part):
                    features[i] = out.features[row]
                    if out.scores is not None:
                        scores[i] = out.scores[row]
                progress.step(len(part))
        progress.close()
        feature_array = np.stack(features).astype(np.float64)  # type: ignore[arg-type]
        score_array = np.stack(scores).astype(np.float64) if need_scores else np.zeros((len(clips), 0))  # type: ignore[arg-type]
        bad = ~(np.isfinite(feature_array).all(1) & np.isfinite(score_array).all(1))
        if bad.any():
            raise InputError(f"input '{samples[int(np.argmax(bad))].sample_id}': the model's output is not finite "
                             "(NaN or infinite): its coordinates are far outside what the model was trained on")
        return score_array, feature_array


def load(checkpoint: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint written by `aclnet train` (or a run folder: its tested checkpoint).

    Args:
        checkpoint: a `.pt` file, or a run folder.
        device: where the model runs.
    """
    path = resolve_checkpoint(checkpoint)
    payload = load_checkpoint(path)
    info = payload.get("inference")
    text = payload.get("config")
    classes = payload.get("class_names")
    if not isinstance(info, dict) or not isinstance(text, str) or not isinstance(classes, list):
        raise InputError(f"{path}: this checkpoint does not carry what inference needs (configuration, class names, "
                         "input layout); it was not written by `aclnet train` of this version")
    config = config_from_text(text, str(path))
    layout = layout_from_mapping(info.get("layout"), f"{path} (saved layout)")
    channels, has_score = info.get("keypoint_channels"), info.get("has_score")
    if not isinstance(channels, int) or isinstance(channels, bool) or not isinstance(has_score, bool):
        raise InputError(f"{path}: the saved input description {info!r} is not valid")
    task = make_task(config)
    pipeline = task.pipeline(layout, test_mode=True, clips=config.data.test_clips)
    model = build_inference_model(config, len(classes), pipeline, channels, has_score)
    load_for_inference(model, payload["model"], path)
    model.to(device).eval()
    return LoadedModel(model, config, task, pipeline, layout, [str(c) for c in classes], channels, has_score, path)


def _frames(sample: Sample, start: int, stop: int) -> Sample:
    """Frames start..stop-1 of a sample as a sample of its own."""
    score = None if sample.score is None else sample.score[:, start:stop]
    return Sample(f"{sample.sample_id}[{start}:{stop}]", sample.keypoint[:, start:stop], sample.label, score,
                  sample.img_shape, dict(sample.meta))
