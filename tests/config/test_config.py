"""Configuration: shipped experiments, overrides, named errors (and exit status 2 from the CLI)."""

from __future__ import annotations

import pytest

from aclnet.cli import main
from aclnet.config import config_as_dict, list_configs, load_config, parse_overrides, validate_config
from aclnet.data.transforms import MODALITIES
from aclnet.errors import InputError
from aclnet.tasks.components import loss_constants


def test_explicit_loss_constants_win_over_the_small_data_rule() -> None:
    derived = loss_constants(load_config("synthetic-j"), 12, 320)  # K = round(12 / 6), start 0.2 x 40 epochs
    assert derived == {"k": 2, "overlap_threshold": 1, "start_epoch": 8, "memory_size": 80}
    given = load_config("synthetic-j", ["loss.inter.start_epoch=5", "loss.intra.memory_size=32"])
    assert loss_constants(given, 12, 320) == {**derived, "start_epoch": 5, "memory_size": 32}
    # What a run saves (and a resumed or loaded run reads back) keeps the unset values unset.
    again = validate_config(config_as_dict(given), "saved")
    assert loss_constants(again, 12, 320) == loss_constants(given, 12, 320)


@pytest.mark.parametrize("rule", ["true", "false"])
def test_an_inter_loss_that_never_switches_on_is_warned_once_under_either_rule(rule: str) -> None:
    # the small-data rule starts at epoch max(1, round(0.2 x 1)) = 1, the released constant at 30: both >= 1 epoch
    config = load_config("synthetic-j", ["optim.epochs=1", f"loss.small_dataset_scaling={rule}"])
    with pytest.warns(UserWarning, match="loss.inter.start_epoch .* >= optim.epochs 1: the inter-class loss never "
                                         "switches on") as record:
        loss_constants(config, 12, 320)
    assert len(record) == 1


def test_shipped_experiments_expand_by_modality():
    names = list_configs()
    for template in ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "kinetics", "pku-xsub",
                     "pku-xview", "finegym"):
        for modality in MODALITIES:
            assert f"{template}-{modality}" in names
    config = load_config("ntu120-xset-bm")
    assert config.name == "ntu120-xset-bm"
    assert config.data.modality == "bm" and config.data.train_split == "xset_train"
    assert config.loss.intra.memory_size == 1024 and config.optim.batch_size == 16
    assert loss_constants(config, 120, 60000) == {"k": 10, "overlap_threshold": 4, "start_epoch": 30,
                                                  "memory_size": 1024}
    assert config.optim.epochs == 150
    kinetics = load_config("kinetics-j")
    assert kinetics.optim.lr == 0.1 and kinetics.optim.batch_size == 64 and kinetics.loss.intra.memory_size == 2048


def test_every_shipped_experiment_validates():
    for name in list_configs():
        load_config(name)


def test_overrides_are_dotted_yaml_values():
    assert parse_overrides(["optim.lr=0.05", "loss.inter.k=5", "train.save_embeddings_at=[1, 3]"]) == {
        "optim": {"lr": 0.05}, "loss": {"inter": {"k": 5}}, "train": {"save_embeddings_at": [1, 3]},
    }
    config = load_config("ntu60-xsub-j", ["optim.lr=0.05", "loss.inter.fat=false"])
    assert config.optim.lr == 0.05 and config.loss.inter.fat is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lrr=1"], r"optim.lrr: unknown key"),
        (["optim.lr=fast"], r"optim.lr: Input should be a valid number"),
        (["model.backbone=resnet"], r"unknown backbone 'resnet'; valid: aclnet_gcn, ctrgcn, resgcn, stgcn"),
        (["data.modality=j+x"], r"unknown modality \['x'\]"),
        (["loss.inter.family_mode=mine"], r"loss.inter.family_mode"),
        (["optim.lr"], r"expected KEY=VALUE"),
    ],
)
def test_bad_values_are_named(overrides, message):
    with pytest.raises(InputError, match=message):
        load_config("ntu60-xsub-j", overrides)


def test_yaml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  format: pyskl\n  path: x.pkl\n  colour: red\n")
    with pytest.raises(InputError, match=r"exp.yaml: invalid configuration:\n  data.colour: unknown key"):
        load_config(path)
    path.write_text("data:\n  format: pyskl\n")
    with pytest.raises(InputError, match="data.path is required"):
        load_config(path)
    with pytest.raises(InputError, match="cannot read configuration"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="unknown configuration 'ntu61-xsub-j'"):
        load_config("ntu61-xsub-j")


def test_cli_exits_2_on_bad_configuration(tmp_path, capsys):
    status = main(["train", "ntu60-xsub-j", "--set", "optim.momentum=2", "--work-dir", str(tmp_path / "run")])
    assert status == 2
    assert "optim.momentum" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was created for a refused run


@pytest.mark.parametrize(("override", "message"), [
    ("data.test_clips=20000", "data.test_clips: Input should be less than or equal to 100"),
    ("train.seed=-1", "train.seed: Input should be greater than or equal to 0"),
    ("train.device=bogus", "train.device: String should match pattern"),
    ("optim.lr=.inf", "optim.lr: Input should be a finite number"),
    ("loss.inter.weight=.nan", "loss.inter.weight: Input should be a finite number"),
    ("optim.batch_size=1000000", "optim.batch_size: Input should be less than or equal to 65536"),
])
def test_values_beyond_their_bounds_are_named(override: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config("synthetic-j", [override])


def test_a_config_file_that_is_not_text_is_named(tmp_path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(InputError, match=r"binary.yaml: not a text file \(not UTF-8 at byte 6\)"):
        load_config(str(path))


def test_unknown_backbone_options_are_named_at_load_time() -> None:
    with pytest.raises(InputError, match=r"model: Value error, options \['widht'\] are not options of backbone "
                                         r"'aclnet_gcn'; valid: \[.*'base_channels'"):
        load_config("synthetic-j", ["model.options.widht=3"])


@pytest.mark.parametrize("command", [["train", "synthetic-j"], ["test", "synthetic-j", "--checkpoint", "c.pt"],
                                     ["train-streams", "synthetic", "--streams", "j,b"]])
def test_every_set_flag_counts(command: list[str]) -> None:
    from aclnet.cli import build_parser

    args = build_parser().parse_args([*command, "--set", "optim.lr=0.1", "--set", "optim.epochs=3", "train.seed=2"])
    assert args.set == ["optim.lr=0.1", "optim.epochs=3", "train.seed=2"]


def test_an_experiment_files_paths_are_relative_to_the_file_and_stored_absolute(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "exp.yaml").write_text(
        "data: {format: pku-mmd, path: data/pku, layout: my_layout.yaml, train_split: train, test_split: test,\n"
        "       options: {label_file: labels/all.txt, num_person: 2}}\n"
        "train: {init_weights: ../weights/start.pt}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(str(folder / "exp.yaml"))
    assert config.data.path == folder / "data" / "pku"
    assert config.data.layout == str(folder / "my_layout.yaml")
    assert config.data.options == {"label_file": str(folder / "labels" / "all.txt"), "num_person": 2}
    assert config.train.init_weights == folder / ".." / "weights" / "start.pt"
    # --set values (typed in a shell) and the shipped experiments' paths are relative to the current folder.
    config = load_config(str(folder / "exp.yaml"), ["data.path=mine.pkl", "data.layout=coco"])
    assert config.data.path == elsewhere / "mine.pkl" and config.data.layout == "coco"
    assert load_config("ntu60-xsub-j").data.path == elsewhere / "data" / "nturgbd" / "ntu60_3danno.pkl"
    assert load_config("ntu60-xsub-j", ["data.path=/abs/ntu.pkl"]).data.path.as_posix() == "/abs/ntu.pkl"


def test_a_run_saved_with_relative_paths_resumes_from_its_folder(tmp_path, monkeypatch) -> None:
    import yaml

    from aclnet.engine.run import check_resumed_config
    from aclnet.engine.run_folder import RunFolder

    monkeypatch.chdir(tmp_path)
    config = load_config("ntu60-xsub-j")
    saved = config_as_dict(config)
    saved["data"]["path"] = "data/nturgbd/ntu60_3danno.pkl"  # as runs before absolute paths saved it
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_config(yaml.safe_dump(saved))
    check_resumed_config(run, config, ())
    saved["data"]["path"] = "data/other.pkl"
    run.write_config(yaml.safe_dump(saved))
    with pytest.raises(InputError, match="data.path"):
        check_resumed_config(run, config, ())
