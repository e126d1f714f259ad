"""`aclnet export`: ONNX and TorchScript files of tiny checkpoints (ACLNet GCN, CTR-GCN, ST-GCN; a GaitGraph
ResGCN without classifier) run on other batch sizes and lengths than the traced ones and match the PyTorch model;
metadata, refusals and the missing-extra message.

The checkpoints are written here from models built as `aclnet train` builds them (no training: every weight and
normalisation statistic is perturbed instead, so that the zero-initialised parts -- the learned topologies'
alpha and beta, the temporal unit's joint coefficients -- take part), and loaded back with `aclnet.load`.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import aclnet
from aclnet.config import dump_config, load_config
from aclnet.engine.checkpoint import save_checkpoint
from aclnet.errors import InputError
from aclnet.inference.export import add_export_parser, export_checkpoint, export_model, read_metadata
from aclnet.skeleton import get_layout
from aclnet.skeleton.custom import layout_to_mapping
from aclnet.tasks.components import build_inference_model
from aclnet.tasks.registry import make_task

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


HAS_ONNX = _importable("onnx") and _importable("onnxruntime")
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason='onnx / onnxruntime not installed: pip install "aclnet[export]"')

TOLERANCE = 1e-4
CLASSES = ["wave", "clap", "kick", "jump", "sit"]
# The CPU preset (5 blocks, stride 2 at block 4: odd lengths meet the strided convolutions), traced with 32 frames.
TINY = ["model.preset=small", "data.clip_len=32", "data.num_persons=2"]
BATCHES, LENGTHS = (1, 3), (32, 48)  # run with 48 frames what was traced with 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two threads wait for each other on every small operator
    (a 100-fold slowdown of these tiny models); the numbers do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Every parameter and BN statistic moved off its initial value, outputs kept O(1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.mul_(1 + 0.1 * noise).add_(0.05 * torch.randn(param.shape, generator=generator))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)


def _checkpoint(path: Path, experiment: str, overrides: list[str], layout: str, channels: int, has_score: bool,
                seed: int) -> Path:
    """A checkpoint as `aclnet train` writes it (the parts `aclnet.load` reads), of an untrained model."""
    config = load_config(experiment, overrides)
    task = make_task(config)
    skeleton = get_layout(layout)
    pipeline = task.pipeline(skeleton, test_mode=True, clips=config.data.test_clips)
    torch.manual_seed(seed)
    model = build_inference_model(config, len(CLASSES), pipeline, channels, has_score)
    _perturb(model, seed)
    save_checkpoint(path, {
        "model": model.state_dict(), "config": dump_config(config), "class_names": CLASSES,
        "inference": {"task": task.name, "layout": layout_to_mapping(skeleton), "keypoint_channels": channels,
                      "has_score": has_score},
    })
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    made = {backbone: _checkpoint(folder / f"{backbone}.pt", "synthetic-j", [f"model.backbone={backbone}", *TINY],
                                  "nturgb+d", 3, False, seed)
            for seed, backbone in enumerate(("aclnet_gcn", "ctrgcn", "stgcn"))}
    gait = ["model.backbone=resgcn", "model.preset=small", "loss.ce=false", "loss.inter.enabled=false",
            "loss.intra.enabled=false", "loss.supcon.enabled=true", "protocol.test_flip=true", "data.clip_len=32"]
    made["gait"] = _checkpoint(folder / "gait.pt", "synthetic-gait-j", gait, "coco", 2, True, 7)
    return made


def _export(args: list[str]) -> None:
    """`aclnet export ARGS` through a parser built as the main one adds it."""
    parser = argparse.ArgumentParser(prog="aclnet")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["export", *args])
    parsed.run(parsed)


def _run_file(path: Path, fmt: str, x: torch.Tensor) -> list[np.ndarray]:
    """Run an exported file with its own runtime (not through aclnet.inference.export)."""
    if fmt == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return session.run(None, {"input": x.numpy()})
    module = torch.jit.load(str(path))
    with torch.no_grad(), torch.jit.optimized_execution(False):  # no seconds of re-optimising per input shape
        out = module(x)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _inputs(joints: int, channels: int, persons: int):
    generator = torch.Generator().manual_seed(11)
    for batch in BATCHES:
        for frames in LENGTHS:
            yield torch.randn(batch, persons, frames, joints, channels, generator=generator)


@pytest.mark.parametrize("backbone", ["aclnet_gcn", "ctrgcn", "stgcn"])
def test_exported_action_model_matches_pytorch(checkpoints, tmp_path, capsys, backbone):
    loaded = aclnet.load(checkpoints[backbone])
    expected = []
    for x in _inputs(25, 3, persons=2):
        with torch.no_grad():
            logits, pooled = loaded.model.predict(x)
        expected.append((x, logits.numpy(), (pooled / (pooled.norm(dim=1, keepdim=True) + 1e-12)).numpy()))
    assert max(float(np.abs(e[1]).max()) for e in expected) > 0.1  # not a trivially small output

    measured = []
    for fmt in ["torchscript"] + (["onnx"] if HAS_ONNX else []):
        out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
        _export([str(checkpoints[backbone]), str(out), "--format", fmt, "--outputs", "logits,embedding"])
        printed = capsys.readouterr().out
        assert f"wrote {out}" in printed and "max abs diff" in printed  # the export's own check
        worst = {"logits": 0.0, "embedding": 0.0}
        for x, *wanted in expected:
            got = _run_file(out, fmt, x)
            assert [g.shape for g in got] == [w.shape for w in wanted]
            for name, want, have in zip(worst, wanted, got):
                worst[name] = max(worst[name], float(np.abs(want - have).max()))
        measured.append(f"{backbone} {fmt}: max abs diff {worst}")
        assert max(worst.values()) <= TOLERANCE, (fmt, worst)

        meta = json.loads(out.with_name(out.name + ".json").read_text())
        assert meta == read_metadata(out)  # the same metadata inside the file
        assert meta["format"] == fmt and meta["task"] == "action" and meta["backbone"] == backbone
        assert meta["classes"] == CLASSES
        assert meta["input"]["shape"] == ["batch", "persons", "frames", 25, 3]
        assert meta["input"]["joints"] == list(get_layout("nturgb+d").joint_names)
        assert meta["input"]["channels"] == ["j.x", "j.y", "j.z"]
        assert [o["name"] for o in meta["outputs"]] == ["logits", "embedding"]
        assert "OUTPUT of the test pipeline" in meta["preprocessing"]["note"]
        assert "aclnet.load(CHECKPOINT).pipeline" in meta["preprocessing"]["function"]
        steps = {s["step"]: s for s in meta["preprocessing"]["steps"]}
        assert steps["uniform_sample"]["params"]["clip_len"] == 32
        assert steps["pad_persons"]["params"]["num_persons"] == 2
        assert steps["random_rotate"]["runs_at_test"] is False and steps["modality"]["runs_at_test"] is True
    print("\n".join(measured))  # shown with -s


@needs_onnx
def test_onnx_graph_names_dynamic_axes_and_metadata(checkpoints, tmp_path):
    import onnx

    out = tmp_path / "stgcn.onnx"
    result = export_model(aclnet.load(checkpoints["stgcn"]), out)  # format from the suffix, default outputs
    assert result.max_abs_diff["logits"] <= TOLERANCE  # the export's own check: other batches, persons, lengths
    assert result.metadata["check"]["inputs"][1][2] == 48  # traced with 32 frames, run with 48
    proto = onnx.load(str(out))
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]  # action: logits only by default
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "persons", "frames", 25, 3]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["aclnet"]) == result.metadata
    assert result.metadata["opset"] == 17 and result.metadata["format"] == "onnx"


def test_gait_checkpoint_without_classifier_exports_its_embedding(checkpoints, tmp_path, capsys):
    loaded = aclnet.load(checkpoints["gait"])
    assert loaded.model.cls_head is None and loaded.has_score
    expected = []
    for x in _inputs(17, 3, persons=1):
        with torch.no_grad():  # as the gait test: features of the clip and of its reversal averaged, normalised
            features = ((loaded.model.predict(x).pooled + loaded.model.predict(x.flip(2)).pooled) / 2).numpy()
        expected.append((x, features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12), features))
    measured = []
    # TorchScript with the default output (the embedding), ONNX with the un-normalised features as well.
    for fmt, extra in [("torchscript", []), *([("onnx", ["--outputs", "embedding,features"])] if HAS_ONNX else [])]:
        out = tmp_path / f"gait.{'onnx' if fmt == 'onnx' else 'pt'}"
        _export([str(checkpoints["gait"]), str(out), *extra])
        meta = json.loads(out.with_name(out.name + ".json").read_text())
        names = [o["name"] for o in meta["outputs"]]
        assert names == (["embedding", "features"] if extra else ["embedding"]) and meta["time_flip"] is True
        assert meta["input"]["channels"] == ["j.x", "j.y", "j.score"] and meta["task"] == "gait"
        worst = 0.0
        for x, embedding, features in expected:
            got = _run_file(out, fmt, x)
            assert len(got) == len(names)
            for have, want in zip(got, (embedding, features)):
                worst = max(worst, float(np.abs(have - want).max()))
        measured.append(f"gait resgcn {fmt}: max abs diff {worst:.3g}")
        assert worst <= TOLERANCE
    print("\n".join(measured))
    with pytest.raises(InputError, match="no classifier"):
        _export([str(checkpoints["gait"]), str(tmp_path / "logits.pt"), "--outputs", "logits"])


def test_existing_output_is_refused_unless_forced(checkpoints, tmp_path, capsys):
    out = tmp_path / "model.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match="already exists; pass --force"):
        _export([str(checkpoints["stgcn"]), str(out)])
    assert out.read_bytes() == b"keep me"
    other = tmp_path / "other.pt"
    other.with_name("other.pt.json").write_text("{}")  # the metadata file counts too
    with pytest.raises(InputError, match="other.pt.json: already exists"):
        _export([str(checkpoints["stgcn"]), str(other)])
    assert not other.exists()
    _export([str(checkpoints["stgcn"]), str(out), "--force", "--no-verify"])
    assert out.read_bytes() != b"keep me" and json.loads(out.with_name("model.pt.json").read_text())["classes"]


def test_bad_format_and_outputs_are_named(checkpoints, tmp_path):
    with pytest.raises(InputError, match="unknown export format 'tflite'; valid formats are onnx, torchscript"):
        _export([str(checkpoints["stgcn"]), str(tmp_path / "m.tflite"), "--format", "tflite"])
    with pytest.raises(InputError, match="cannot tell the format"):
        _export([str(checkpoints["stgcn"]), str(tmp_path / "m.bin")])
    with pytest.raises(InputError, match="--outputs 'scores'"):
        _export([str(checkpoints["stgcn"]), str(tmp_path / "m.pt"), "--outputs", "scores"])
    with pytest.raises(InputError, match="unknown ONNX exporter 'fast'"):
        _export([str(checkpoints["stgcn"]), str(tmp_path / "m.onnx"), "--onnx-exporter", "fast"])
    with pytest.raises(InputError, match="checkpoint not found"):
        _export([str(tmp_path / "missing.pt"), str(tmp_path / "m.pt")])
    assert not list(tmp_path.iterdir())


def test_missing_onnx_packages_name_the_extra(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as when not installed
    # (where onnx itself is missing, it is named first)
    with pytest.raises(InputError, match=r"'onnx(runtime)?' package.*pip install \"aclnet\[export\]\""):
        _export([str(checkpoints["stgcn"]), str(tmp_path / "m.onnx")])
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(InputError, match=r"'onnx(script)?' package"):
        _export([str(checkpoints["stgcn"]), str(tmp_path / "m.onnx"), "--onnx-exporter", "dynamo", "--no-verify"])
    assert not list(tmp_path.iterdir())


def test_torchscript_export_checks_itself_and_carries_its_metadata(checkpoints, tmp_path):
    out = tmp_path / "m.ts"
    result = export_checkpoint(checkpoints["stgcn"], out)  # format from the suffix
    assert result.max_abs_diff["logits"] <= TOLERANCE and result.metadata["check"]["runtime"] == "torch.jit.load"
    extra = {"aclnet.json": ""}
    torch.jit.load(io.BytesIO(out.read_bytes()), _extra_files=extra)
    assert json.loads(extra["aclnet.json"]) == result.metadata


@pytest.mark.slow
@needs_onnx
@pytest.mark.skipif(not _importable("onnxscript"), reason='onnxscript not installed: pip install "aclnet[export]"')
def test_dynamo_onnx_exporter_keeps_batch_persons_and_frames_dynamic(checkpoints, tmp_path):
    out = tmp_path / "dynamo.onnx"
    result = export_model(aclnet.load(checkpoints["stgcn"]), out, onnx_exporter="dynamo")
    assert result.metadata["opset"] >= 18 and "dynamo" in result.metadata["exporter"]
    assert result.max_abs_diff["logits"] <= TOLERANCE  # run with 1 and 3 sequences, 1 and 2 persons, 17 to 48 frames
