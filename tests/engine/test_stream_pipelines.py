"""The shipped NTU experiments expand to the release's per-stream training pipelines; `stream_steps`
errors name the template and the stream; `aclnet configs NAME` prints the expanded experiment."""

from __future__ import annotations

import pytest
import yaml

from aclnet.cli import main
from aclnet.config import list_configs, load_config, validate_config
from aclnet.config import loading as config_module
from aclnet.data.pipeline import build_pipeline
from aclnet.errors import InputError
from aclnet.skeleton import get_layout
from aclnet.tasks.components import pipeline_steps

FLIP = {"swap_left_right": {"p": 0.5}}  # the release's Spatial_Flip(p=0.5): joints exchanged, not mirrored
DROP = {"part_drop": {"p": 0.2}}  # the release's Part_Drop (p=0.2)

# The release's configs/<dataset>/<stream>.py: the steps between RandomRot(theta=0.2) and GenSkeFeat.
RELEASED_EXTRA_STEPS = {
    "ntu60-xsub-j": [],
    "ntu60-xsub-b": [FLIP],
    "ntu60-xsub-k": [FLIP],
    "ntu60-xsub-jm": [],
    "ntu60-xsub-bm": [FLIP],
    "ntu60-xsub-km": [FLIP],
    "ntu60-xview-j": [],
    "ntu60-xview-b": [],
    "ntu60-xview-k": [DROP],
    "ntu60-xview-jm": [],
    "ntu60-xview-bm": [],
    "ntu60-xview-km": [DROP],
    "ntu120-xsub-j": [FLIP],
    "ntu120-xsub-b": [FLIP],
    "ntu120-xsub-k": [DROP],
    "ntu120-xsub-jm": [FLIP],
    "ntu120-xsub-bm": [FLIP],
    "ntu120-xsub-km": [DROP],
    "ntu120-xset-j": [],
    "ntu120-xset-b": [FLIP],
    "ntu120-xset-k": [FLIP],
    "ntu120-xset-jm": [],
    "ntu120-xset-bm": [FLIP],
    "ntu120-xset-km": [FLIP],
}


def released_steps(stream: str, extra: list[dict]) -> list[dict]:
    """The release's NTU training pipeline: PreNormalize3D(align_spine=False), RandomRot(0.2), the
    stream's extra steps, GenSkeFeat, UniformSampleDecode(100), two persons."""
    return [
        {"pre_normalize_3d": {"align_spine": False}},
        {"random_rotate": {"max_angle": 0.2}},
        *extra,
        {"modality": {"name": stream}},
        {"uniform_sample": {"clip_len": 100, "short_test_start": "random"}},
        {"pad_persons": {"num_persons": 2}},
    ]


def test_the_table_covers_every_shipped_ntu_experiment():
    shipped = {n for n in list_configs() if n.startswith("ntu")}
    assert shipped == set(RELEASED_EXTRA_STEPS) and len(shipped) == 24


@pytest.mark.parametrize(("name", "extra"), list(RELEASED_EXTRA_STEPS.items()))
def test_ntu_experiment_expands_to_the_released_pipeline(name, extra):
    stream = name.rpartition("-")[2]
    config = load_config(name)
    assert config.data.modality == stream
    assert config.data.pipeline == released_steps(stream, extra)  # the explicit list is what runs save
    assert pipeline_steps(config) == released_steps(stream, extra)
    train = build_pipeline(pipeline_steps(config), get_layout("nturgb+d"), test_mode=False)
    names = [n for n, _ in train.steps]
    assert ("swap_left_right" in names) == (FLIP in extra)
    assert ("part_drop" in names) == (DROP in extra)
    assert "random_flip" not in names  # the release never mirrors coordinates on NTU


def test_templates_without_stream_steps_are_unchanged():
    assert load_config("kinetics-j").data.pipeline == "kinetics"
    assert load_config("pku-xsub-b").data.pipeline == "pku-mmd"


def test_configs_prints_the_expanded_experiment(capsys):
    assert main(["configs", "ntu120-xsub-k"]) == 0
    text = capsys.readouterr().out
    printed = yaml.safe_load(text)
    assert printed["data"]["pipeline"] == released_steps("k", [DROP])
    assert printed["loss"]["inter"]["fat"] is True and printed["train"]["seed"] == 0  # defaults included
    assert validate_config(printed, "printed") == load_config("ntu120-xsub-k")
    assert main(["configs"]) == 0
    assert "ntu120-xsub-k" in capsys.readouterr().out.split()
    assert main(["configs", "ntu61-xsub-k"]) == 2
    assert "unknown configuration 'ntu61-xsub-k'" in capsys.readouterr().err


TEMPLATE = """\
data:
  format: pyskl
  path: data.pkl
  pipeline: {pipeline}
modalities: [j, b]
stream_steps: {table}
"""


def write_template(tmp_path, monkeypatch, table: str, pipeline: str = "ntu") -> None:
    (tmp_path / "mini.yaml").write_text(TEMPLATE.format(pipeline=pipeline, table=table))
    monkeypatch.setattr(config_module, "CONFIG_DIR", tmp_path)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("{b: [{swap_left_right: {p: 2}}]}", r"mini.yaml: stream_steps.b: .*'swap_left_right': parameter 'p'"),
        ("{b: [{swap_left_right: {q: 1}}]}", r"mini.yaml: stream_steps.b: .*unknown parameter 'q'"),
        ("{b: [mirror]}", r"mini.yaml: stream_steps.b: .*unknown step 'mirror'"),
        ("{b: [uniform_sample]}", r"mini.yaml: stream_steps.b: step #1 'uniform_sample' is not a training augm"),
        ("{b: {swap_left_right: {}}}", r"mini.yaml: stream_steps.b: expected a list of steps"),
        ("{k: [swap_left_right]}", r"mini.yaml: stream_steps: 'k' is not a stream of this template"),
        ("[swap_left_right]", r"mini.yaml: stream_steps must map streams to lists of steps"),
    ],
)
def test_bad_stream_steps_are_named(tmp_path, monkeypatch, table, message):
    write_template(tmp_path, monkeypatch, table)
    for name in ("mini-j", "mini-b"):  # checked whichever stream is loaded
        with pytest.raises(InputError, match=message):
            load_config(name)


def test_stream_steps_go_before_the_features(tmp_path, monkeypatch):
    write_template(tmp_path, monkeypatch, "{b: [{part_drop: {p: 0.3}}, swap_left_right]}",
                   pipeline="[pre_normalize_3d, random_rotate, {uniform_sample: {clip_len: 8}}]")
    b = load_config("mini-b").data.pipeline
    assert b == ["pre_normalize_3d", "random_rotate", {"part_drop": {"p": 0.3}}, "swap_left_right",
                 {"uniform_sample": {"clip_len": 8}}]
    j = load_config("mini-j").data.pipeline
    assert j == ["pre_normalize_3d", "random_rotate", {"uniform_sample": {"clip_len": 8}}]
    sample_steps = build_pipeline(b, get_layout("nturgb+d"), test_mode=False).steps
    assert [n for n, _ in sample_steps][-1] == "modality"
    assert load_config("mini-b", ["data.pipeline=plain"]).data.pipeline == "plain"  # --set still wins
