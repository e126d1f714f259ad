"""`aclnet export`: a trained model's inference graph as an ONNX or TorchScript file, with its metadata.

What is exported is `InferenceGraph`: the backbone and the classifier of the checkpoint's model, nothing of
training (no auxiliary projections, no loss state). It takes one float32 batch (N, M, T, V, C) -- sequences,
persons, frames, joints, channels -- and returns, by name:

* `logits` (N, classes): the classifier's raw scores. No softmax is in the graph: `aclnet test` takes the
  softmax of each clip's logits and averages the clips of a sequence; apply it yourself if you need
  probabilities (the arg-max is the same either way).
* `embedding` (N, D): the pooled features, L2-normalised (`pooled / (||pooled|| + 1e-12)`), what gait
  recognition and re-identification match by Euclidean distance. When the checkpoint's protocol has
  `test_flip`, the graph averages the features of the clip and of its time reversal first, as `aclnet test`.
* `features` (N, D): the same features before the normalisation. `aclnet test` averages these over the clips of
  a sequence and then normalises; with one test clip per sequence that is `embedding` itself.

By default the graph returns the task's output: `logits` for action recognition, `embedding` for gait and
re-identification (their test matches embeddings, never the classifier over training identities);
`outputs=("logits", "embedding")` gives both, in that order. Batch (N), persons (M) and frames (T) are dynamic
axes; V and C are fixed by the model.

The graph takes the *output of the test pipeline*, not raw skeletons: `aclnet.load(CHECKPOINT).pipeline(sample,
numpy.random.default_rng(0))` turns an `aclnet.data.sample.Sample` into float32 (clips, M, T, V, C) -- joint
normalisation, the modality's features (joints, bones, motion), temporal sampling, person padding. The
metadata written beside the file (`OUT.json`, also stored in the file: ONNX metadata property `aclnet`,
TorchScript extra file `aclnet.json`) lists those steps, the classes, the joint names and the channels.

Exporters: TorchScript files are made with `torch.jit.trace` (one trace; every size is read from the input,
so batch, persons and frames stay dynamic; torch 2.13 marks TorchScript as deprecated). ONNX files are made
by default with torch's TorchScript-based exporter (`onnx_exporter="legacy"`, opset 17: seconds per model,
runs on any ONNX runtime of the last years, needs no onnxscript) or, on request, with the torch.export-based
one (`"dynamo"`, needs onnxscript, opset 18+, several times slower to export small models, the same
numbers). Both keep N, M and T dynamic on every backbone. (The TorchScript-based ONNX exporter is deprecated
by torch; should a torch release drop it, `"dynamo"` is the path.)

Every export is checked before it is written: the file is run (onnxruntime or torch) on inputs of other batch
sizes, person counts and lengths than the traced one and compared with the PyTorch model; a difference above
`tolerance` refuses the export.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes
from aclnet.losses.common import l2_normalise
from aclnet.models.skeleton_model import SkeletonModel

if TYPE_CHECKING:
    from aclnet.inference.loading import LoadedModel

FORMATS = ("onnx", "torchscript")
ONNX_EXPORTERS = ("legacy", "dynamo")
OUTPUT_NAMES = ("logits", "embedding", "features")
INPUT_NAME = "input"
LEGACY_OPSET = 17
METADATA_KEY = "aclnet"
TORCHSCRIPT_METADATA_FILE = "aclnet.json"
METADATA_SCHEMA = "aclnet-export/1"
EXTRA_HINT = 'pip install "aclnet[export]"'
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
POSTPROCESSING = {
    "class_scores": "softmax of each clip's logits, mean over the clips of a sequence, arg-max",
    "embeddings": "one test clip: the embedding as it is; several: the mean of the clips' features, L2-normalised; "
                  "matched by Euclidean distance",
}
"""What follows the graph, by what the task's model outputs."""

CHANNEL_KINDS = {
    "j": "joint position", "b": "bone: joint minus its parent joint (layout.parents)",
    "k": "two-hop bone: joint minus its parent's parent", "jm": "joint motion: next frame minus this frame (last 0)",
    "bm": "bone motion: next frame minus this frame (last 0)", "km": "two-hop bone motion (last frame 0)",
}


class InferenceGraph(nn.Module):
    """What is exported: (N, M, T, V, C) -> the named outputs (one tensor, or a tuple in `outputs` order).

    Args:
        model: the inference model (`aclnet.load(...).model`); it is put in eval mode.
        outputs: names among `OUTPUT_NAMES`, in the order returned.
        time_flip: average the features of the input and of its time reversal (`embedding`, `features`; the
            retrieval tasks' `protocol.test_flip`); the logits never use it, as in `aclnet test`.
    """

    def __init__(self, model: SkeletonModel, outputs: Sequence[str], *, time_flip: bool = False) -> None:
        super().__init__()
        outputs = tuple(outputs)
        bad = [name for name in outputs if name not in OUTPUT_NAMES]
        if not outputs or bad or len(set(outputs)) != len(outputs):
            raise InputError(f"outputs {list(outputs)}: give one or more of {list(OUTPUT_NAMES)}, each once")
        if "logits" in outputs and model.cls_head is None:
            raise InputError("this model has no classifier (it was trained with loss.ce off): it has no 'logits'; "
                             "export its 'embedding'")
        self.model = model
        self.outputs = outputs
        self.time_flip = bool(time_flip)
        self.eval()  # the wrapper too: exporters restore the wrapper's mode onto every submodule afterwards

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        out = self.model.predict(x)
        pooled = out.pooled
        if self.time_flip and ("embedding" in self.outputs or "features" in self.outputs):
            pooled = (pooled + self.model.predict(x.flip(2)).pooled) / 2  # (N, M, T, V, C): time is dimension 2
        values = {"logits": out.logits, "features": pooled}
        if "embedding" in self.outputs:
            values["embedding"] = l2_normalise(pooled)
        results = tuple(values[name] for name in self.outputs)
        return results[0] if len(results) == 1 else results


@dataclass
class ExportResult:
    """An export: the file, its metadata file, the metadata and the measured differences to PyTorch
    (max abs difference per output over the checked inputs; empty when not checked)."""

    path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    max_abs_diff: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# choices
# ------------------------------------------------------------------------------------------------


def resolve_format(fmt: str | None, out: Path) -> str:
    """The format given, or the one OUT's suffix names (.onnx; .pt, .ts, .torchscript)."""
    if fmt is None:
        if out.suffix.lower() not in SUFFIXES:
            raise InputError(f"{out}: cannot tell the format from the file name; pass --format "
                             f"({' or '.join(FORMATS)})")
        return SUFFIXES[out.suffix.lower()]
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; valid formats are {', '.join(FORMATS)}")
    return fmt


def default_outputs(loaded: LoadedModel) -> tuple[str, ...]:
    """The task's output: `logits` for a task that predicts classes (with a classifier), else `embedding`."""
    if loaded.output == "class_scores" and loaded.model.cls_head is not None:
        return ("logits",)
    return ("embedding",)


def parse_outputs(text: str | None, loaded: LoadedModel) -> tuple[str, ...]:
    """'logits,embedding' -> ('logits', 'embedding'); None -> `default_outputs`."""
    if text is None:
        return default_outputs(loaded)
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [name for name in names if name not in OUTPUT_NAMES]
    if not names or bad or len(set(names)) != len(names):
        raise InputError(f"--outputs {text!r}: expected one or more of {', '.join(OUTPUT_NAMES)} separated by "
                         "commas, each once")
    return names


def require_modules(fmt: str, onnx_exporter: str = "legacy", *, verify: bool = True) -> None:
    """Refuse early, naming the extra, when a package the export needs is missing."""
    if fmt != "onnx":
        return
    if onnx_exporter not in ONNX_EXPORTERS:
        raise InputError(f"unknown ONNX exporter {onnx_exporter!r}; valid exporters are {', '.join(ONNX_EXPORTERS)}")
    needed = ["onnx"] + (["onnxruntime"] if verify else []) + (["onnxscript"] if onnx_exporter == "dynamo" else [])
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise InputError(f"ONNX export needs the '{name}' package, which is not installed ({exc}); "
                             f"install the export extra: {EXTRA_HINT}") from None


# ------------------------------------------------------------------------------------------------
# shapes and metadata
# ------------------------------------------------------------------------------------------------


def _step_params(loaded: LoadedModel, name: str) -> Any:
    return next((params for step, params in loaded.pipeline.steps if step == name), None)


def input_shape(loaded: LoadedModel) -> tuple[int | None, int | None, int, int]:
    """(persons, frames, joints, channels) of the pipeline's output; persons / frames None when the
    pipeline does not fix them."""
    pad = _step_params(loaded, "pad_persons")
    frames = None
    for step, key in (("uniform_sample", "clip_len"), ("temporal_window", "length"), ("random_crop_resize", "length")):
        params = _step_params(loaded, step)
        if params is not None:
            frames = int(getattr(params, key))
            break
    backbone = loaded.model.backbone
    return (None if pad is None else int(pad.num_persons), frames, backbone.num_joints, backbone.in_channels)


def channel_names(loaded: LoadedModel) -> list[str]:
    """One name per input channel, e.g. ['j.x', 'j.y', 'j.z'] or ['j.x', 'j.y', 'j.score', 'b.x', ...]."""
    from aclnet.data.transforms import parse_modality

    modality = _step_params(loaded, "modality")
    parts = parse_modality(modality.name if modality is not None else "j")
    coords = ["x", "y", "z"][: loaded.keypoint_channels] + (["score"] if loaded.has_score else [])
    return [f"{part}.{coord}" for part in parts for coord in coords]


def _steps(loaded: LoadedModel) -> list[dict[str, Any]]:
    """The test pipeline's steps with their parameters and whether they run at test time (random
    augmentations are validated but left out)."""
    run = getattr(loaded.pipeline, "_run", None)
    ran = None if run is None else {name for name, _ in run}
    steps = []
    for name, params in loaded.pipeline.steps:
        entry: dict[str, Any] = {"step": name, "params": params.model_dump(mode="json")}
        if ran is not None:
            entry["runs_at_test"] = name in ran
        steps.append(entry)
    return steps


def build_metadata(loaded: LoadedModel, fmt: str, outputs: Sequence[str], *, time_flip: bool,
                   exporter: str, opset: int | None, out: Path) -> dict[str, Any]:
    """The metadata of an export (written as `OUT.json` and stored in the file)."""
    from aclnet import __version__

    persons, frames, joints, channels = input_shape(loaded)
    layout = loaded.pipeline.output_layout
    names = channel_names(loaded)
    modality = _step_params(loaded, "modality")
    parts = dict.fromkeys(name.split(".")[0] for name in names)
    num_classes = loaded.model.num_classes
    described = {
        "logits": {"name": "logits", "shape": ["batch", num_classes], "dtype": "float32",
                   "meaning": "raw classifier scores, one per class in `classes` order; no softmax in the graph "
                              "(aclnet test: softmax per clip, then the mean over a sequence's clips)"},
        "embedding": {"name": "embedding", "shape": ["batch", loaded.model.backbone.out_channels], "dtype": "float32",
                      "meaning": "L2-normalised pooled features (pooled / (||pooled|| + 1e-12))"
                                 + ("; the mean of the clip's and its time reversal's features before normalising "
                                    "(protocol.test_flip)" if time_flip else "")
                                 + "; match by Euclidean distance"},
        "features": {"name": "features", "shape": ["batch", loaded.model.backbone.out_channels], "dtype": "float32",
                     "meaning": "the pooled features before normalisation"
                                + (" (the mean of the clip's and its time reversal's)" if time_flip else "")
                                + "; aclnet test averages them over a sequence's clips, then L2-normalises"},
    }
    return {
        "schema": METADATA_SCHEMA,
        "file": out.name,
        "format": fmt,
        "exporter": exporter,
        "opset": opset,
        "aclnet_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "checkpoint": str(loaded.source),
        "task": loaded.task.name,
        "experiment": loaded.config.name,
        "backbone": loaded.config.model.backbone,
        "classes": list(loaded.classes),
        "classes_meaning": loaded.task.classes_meaning,
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "convention": "(N, M, T, V, C): sequences (or clips), persons, frames, joints, channels",
            "shape": ["batch", "persons", "frames", joints, channels],
            "dynamic_axes": {"0": "batch", "1": "persons", "2": "frames"},
            "persons": persons,
            "frames": frames,
            "layout": layout.name,
            "joints": list(layout.joint_names),
            "channels": names,
            "channel_kinds": {part: CHANNEL_KINDS[part] for part in parts},
            "score_mode": None if modality is None or not loaded.has_score else modality.score_mode,
        },
        "outputs": [described[name] for name in outputs],
        "time_flip": time_flip,
        "preprocessing": {
            "note": "The graph takes the OUTPUT of the test pipeline, not raw skeletons. Run every sequence "
                    "through the checkpoint's test pipeline first; its steps are listed here.",
            "function": "aclnet.load(CHECKPOINT).pipeline(sample, numpy.random.default_rng(0)) "
                        "(aclnet.data.pipeline.Pipeline.__call__) with an aclnet.data.sample.Sample; any generator "
                        "will do: the test pipeline is deterministic",
            "returns": "float32 (clips, M, T, V, C): feed the clips as the batch axis",
            "raw_input": {"layout": loaded.layout.name, "joints": list(loaded.layout.joint_names),
                          "keypoint": "float32 (M, T, V, keypoint_channels)",
                          "keypoint_channels": loaded.keypoint_channels, "has_score": loaded.has_score,
                          "score": "float32 (M, T, V) confidences" if loaded.has_score else None},
            "steps": _steps(loaded),
            "test_clips": loaded.config.data.test_clips,
        },
        "postprocessing": POSTPROCESSING[loaded.output],
    }


# ------------------------------------------------------------------------------------------------
# export
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence what torch says while exporting that does not apply here: the shape checks the tracer cannot
    record (joints and channels are fixed by the model) and torch's own deprecation notices (TorchScript, the
    TorchScript-based ONNX exporter, pytree internals; the dynamo exporter's notes on torchvision's operators)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = registration.level
    registration.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        try:
            yield
        finally:
            registration.setLevel(level)


def example_input(joints: int, channels: int, *, batch: int = 2, persons: int = 2, frames: int = 32,
                  seed: int = 0) -> Tensor:
    """A float32 (batch, persons, frames, joints, channels) batch of normal noise."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, persons, frames, joints, channels, generator=generator)


def _trace(graph: InferenceGraph, example: Tensor) -> torch.jit.ScriptModule:
    with _quiet_torch(), torch.no_grad():
        return torch.jit.trace(graph, (example,), check_trace=False)


def _torchscript_bytes(module: torch.jit.ScriptModule, metadata: dict[str, Any] | None) -> bytes:
    """The TorchScript file, with the metadata as its extra file `aclnet.json`."""
    extra = {} if metadata is None else {TORCHSCRIPT_METADATA_FILE: json.dumps(metadata, indent=1)}
    buffer = io.BytesIO()
    with _quiet_torch():
        torch.jit.save(module, buffer, _extra_files=extra)
    return buffer.getvalue()


def _onnx_export(graph: InferenceGraph, example: Tensor, exporter: str) -> tuple[bytes, int]:
    """The ONNX file of the graph (input `input`, outputs by name; batch, persons and frames dynamic) and its
    opset."""
    import onnx

    outputs = list(graph.outputs)
    with _quiet_torch(), torch.no_grad():
        if exporter == "legacy":
            buffer = io.BytesIO()
            torch.onnx.export(graph, (example,), buffer, dynamo=False, input_names=[INPUT_NAME], output_names=outputs,
                              dynamic_axes={INPUT_NAME: {0: "batch", 1: "persons", 2: "frames"},
                                            **{name: {0: "batch"} for name in outputs}},
                              opset_version=LEGACY_OPSET, do_constant_folding=True)
            proto = onnx.load_from_string(buffer.getvalue())
        else:
            dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("persons"), 2: torch.export.Dim("frames")}
            program = torch.onnx.export(graph, (example,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=outputs, dynamic_shapes=(dims,), external_data=False,
                                        verbose=False)
            proto = program.model_proto
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return proto.SerializeToString(), int(opset)


def _onnx_with_metadata(data: bytes, metadata: dict[str, Any]) -> bytes:
    """The ONNX file with the metadata as its `aclnet` property (checked by onnx's checker)."""
    import onnx

    proto = onnx.load_from_string(data)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    proto.producer_name = "aclnet"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def exported_runner(data: bytes | str | Path, fmt: str) -> Callable[[np.ndarray | Tensor], list[np.ndarray]]:
    """A function running an exported file (its bytes or its path) on a batch (N, M, T, V, C): its outputs
    in the graph's order, as NumPy arrays. ONNX files run in onnxruntime (CPU), TorchScript files in torch."""
    if isinstance(data, str | Path):
        data = Path(data).read_bytes()
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError as exc:
            raise InputError(f"running ONNX files needs onnxruntime ({exc}); install the export extra: "
                             f"{EXTRA_HINT}") from None
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnx(x: np.ndarray | Tensor) -> list[np.ndarray]:
            return list(session.run(None, {name: _as_numpy(x)}))

        return run_onnx
    with _quiet_torch():
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")

    def run_torchscript(x: np.ndarray | Tensor) -> list[np.ndarray]:
        # Without the profiling executor's optimisation passes: the same operators, none of its seconds of
        # re-optimising for every new input shape.
        with _quiet_torch(), torch.no_grad(), torch.jit.optimized_execution(False):
            out = module(torch.from_numpy(_as_numpy(x)))
        return [t.numpy() for t in (out if isinstance(out, tuple | list) else (out,))]

    return run_torchscript


def _as_numpy(x: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().float().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def check_export(graph: InferenceGraph, data: bytes, fmt: str, shapes: Sequence[tuple[int, ...]], *,
                 tolerance: float = 1e-4) -> dict[str, float]:
    """Run the exported bytes and the PyTorch graph on noise batches of `shapes` (N, M, T, V, C); the max abs
    difference per output. Raises InputError above `tolerance` (absolute, scaled up for outputs above 1)."""
    graph.eval()
    run = exported_runner(data, fmt)
    worst = {name: 0.0 for name in graph.outputs}
    for index, shape in enumerate(shapes):
        x = example_input(*shape[3:], batch=shape[0], persons=shape[1], frames=shape[2], seed=index + 1)
        with torch.no_grad():
            expected = graph(x)
        expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
        got = run(x)
        for name, want, have in zip(graph.outputs, expected, got):
            if have.shape != want.shape:
                raise InputError(f"the exported {fmt} graph gives {name} of shape {have.shape} for input {shape}, "
                                 f"the model {want.shape}: not written")
            diff = float(np.abs(have - want).max())
            worst[name] = max(worst[name], diff)
            if not diff <= tolerance * max(1.0, float(np.abs(want).max())):
                raise InputError(f"the exported {fmt} graph differs from the model by {diff:.3g} in {name} for input "
                                 f"{shape} (tolerance {tolerance:g}): not written")
    return worst


def _check_targets(out: Path, fmt: str, force: bool, onnx_exporter: str, verify: bool) -> Path:
    """Refuse an existing OUT or OUT.json without `force` and a missing optional package; returns OUT.json."""
    meta_path = out.with_name(out.name + ".json")
    for path in (out, meta_path):
        if path.exists() and not force:
            raise InputError(f"{path}: already exists; pass --force to replace it")
    require_modules(fmt, onnx_exporter, verify=verify)
    return meta_path


def export_model(loaded: LoadedModel, out: str | Path, fmt: str | None = None, *,
                 outputs: Sequence[str] | None = None, onnx_exporter: str = "legacy", force: bool = False,
                 verify: bool = True, tolerance: float = 1e-4) -> ExportResult:
    """Export a loaded model's inference graph to `out` and write its metadata to `out` + '.json'.

    Args:
        loaded: `aclnet.load(checkpoint)` (its model is moved to the CPU).
        out: the file to write.
        fmt: "onnx" or "torchscript"; None: from `out`'s suffix.
        outputs: names among `OUTPUT_NAMES`; None: `default_outputs(loaded)`.
        onnx_exporter: "legacy" (torch's TorchScript-based exporter, opset 17) or "dynamo" (torch.export-based).
        force: replace `out` and its metadata file if they exist.
        verify: before writing, run the file on batches of other sizes, person counts and lengths than the
            traced one and compare with the model (ONNX: with onnxruntime).
        tolerance: the largest accepted difference (absolute; relative for outputs above 1).
    """
    out = Path(out)
    fmt = resolve_format(fmt, out)
    meta_path = _check_targets(out, fmt, force, onnx_exporter, verify)
    outputs = default_outputs(loaded) if outputs is None else tuple(outputs)
    time_flip = loaded.task.time_flip and ("embedding" in outputs or "features" in outputs)
    graph = InferenceGraph(loaded.model.cpu(), outputs, time_flip=time_flip)

    persons, frames, joints, channels = input_shape(loaded)
    persons, frames = persons or 2, frames or 32
    # Traced with 2 sequences of 2 persons: no axis is 0 or 1, which torch.export would specialise.
    example = example_input(joints, channels, batch=2, persons=2, frames=frames)
    if fmt == "onnx":
        data, opset = _onnx_export(graph, example, onnx_exporter)
        exporter = f"torch.onnx.export ({'TorchScript-based' if onnx_exporter == 'legacy' else 'dynamo'})"
    else:
        traced = _trace(graph, example)
        data, opset, exporter = _torchscript_bytes(traced, None), None, "torch.jit.trace"
    metadata = build_metadata(loaded, fmt, outputs, time_flip=time_flip, exporter=exporter, opset=opset, out=out)

    diffs: dict[str, float] = {}
    if verify:
        longer = frames + max(1, frames // 2)
        shapes = [(1, persons, frames, joints, channels), (3, persons, longer, joints, channels),
                  (2, 1 if persons > 1 else 2, max(1, frames // 2 + 1), joints, channels)]
        diffs = check_export(graph, data, fmt, shapes, tolerance=tolerance)
        metadata["check"] = {"runtime": "onnxruntime" if fmt == "onnx" else "torch.jit.load",
                             "inputs": [list(s) for s in shapes], "max_abs_diff": diffs}
    data = _onnx_with_metadata(data, metadata) if fmt == "onnx" else _torchscript_bytes(traced, metadata)
    atomic_write_bytes(out, data)
    atomic_write_bytes(meta_path, (json.dumps(metadata, indent=2) + "\n").encode())
    return ExportResult(out, meta_path, metadata, diffs)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata stored in an exported file (ONNX property `aclnet`, TorchScript extra file `aclnet.json`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found")
    if path.suffix.lower() == ".onnx":
        try:
            import onnx
        except ImportError as exc:
            raise InputError(f"reading ONNX files needs onnx ({exc}); install the export extra: {EXTRA_HINT}") from None
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if METADATA_KEY not in props:
            raise InputError(f"{path}: no '{METADATA_KEY}' metadata; not written by `aclnet export`")
        return json.loads(props[METADATA_KEY])
    extra = {TORCHSCRIPT_METADATA_FILE: ""}
    with _quiet_torch():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    if not extra[TORCHSCRIPT_METADATA_FILE]:
        raise InputError(f"{path}: no '{TORCHSCRIPT_METADATA_FILE}' extra file; not written by `aclnet export`")
    return json.loads(extra[TORCHSCRIPT_METADATA_FILE])


def export_checkpoint(checkpoint: str | Path, out: str | Path, fmt: str | None = None, **options: Any) -> ExportResult:
    """`aclnet.load(checkpoint)` then `export_model`; the format and the optional packages are checked first."""
    from aclnet.inference.loading import load

    out = Path(out)
    fmt = resolve_format(fmt, out)
    _check_targets(out, fmt, options.get("force", False), options.get("onnx_exporter", "legacy"),
                   options.get("verify", True))
    return export_model(load(checkpoint), out, fmt, **options)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> None:
    """Export a checkpoint's inference graph and print what was written."""
    from aclnet.inference.loading import load

    out = Path(args.out)
    fmt = resolve_format(args.format, out)
    _check_targets(out, fmt, args.force, args.onnx_exporter, not args.no_verify)
    loaded = load(args.checkpoint)
    result = export_model(loaded, out, fmt, outputs=parse_outputs(args.outputs, loaded),
                          onnx_exporter=args.onnx_exporter, force=args.force, verify=not args.no_verify)
    meta = result.metadata
    shape = ", ".join(str(d) for d in meta["input"]["shape"])
    outs = ", ".join(f"{o['name']} ({', '.join(str(d) for d in o['shape'])})" for o in meta["outputs"])
    print(f"wrote {result.path} ({fmt}, {meta['exporter']}): input {INPUT_NAME} ({shape}) -> {outs}")
    if result.max_abs_diff:
        checked = "; ".join(f"{name} {value:.2g}" for name, value in result.max_abs_diff.items())
        print(f"checked against PyTorch on {len(meta['check']['inputs'])} other input shapes: max abs diff {checked}")
    print(f"wrote {result.metadata_path}: classes, joints, channels and the test pipeline the input must go through "
          f"(aclnet.load(CHECKPOINT).pipeline)")


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `export` to the main parser's subcommands; returns its parser."""
    p = subparsers.add_parser(
        "export", help="export a checkpoint's inference graph to ONNX or TorchScript",
        description="Export the inference graph of a checkpoint (backbone and classifier, no training parts) to "
                    "ONNX or TorchScript, with its metadata in OUT.json. The graph takes the test pipeline's output "
                    "(N, M, T, V, C) float32, batch, persons and frames dynamic, and returns logits (action) or the "
                    "L2-normalised embedding (gait, re-ID). ONNX needs the export extra: " + EXTRA_HINT,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint written by `aclnet train`, or a run folder")
    p.add_argument("out", metavar="OUT",
                   help="file to write (.onnx; .pt or .ts for TorchScript); the metadata goes to OUT.json")
    p.add_argument("--format", metavar="FORMAT", help="onnx or torchscript (default: from OUT's suffix)")
    p.add_argument("--outputs", metavar="NAMES",
                   help="comma-separated outputs among logits, embedding (L2-normalised features) and features "
                        "(default: logits for action, embedding for gait and re-ID)")
    p.add_argument("--onnx-exporter", default="legacy", metavar="EXPORTER",
                   help="legacy (torch's TorchScript-based exporter, opset 17; default) or dynamo "
                        "(torch.export-based, needs onnxscript)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip running the exported file against the PyTorch model on other input shapes")
    p.add_argument("--force", action="store_true", help="replace OUT and OUT.json if they exist")
    p.set_defaults(run=cmd_export)
    return p
