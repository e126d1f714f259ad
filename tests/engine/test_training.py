"""End-to-end training on generated data: train/test/ensemble, exact resume, kill-and-resume, DDP."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from aclnet.cli import main
from aclnet.config import dump_config, load_config
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.distributed import DistInfo
from aclnet.engine.run import build_trainer, seed_everything
from aclnet.engine.run_folder import RunFolder
from aclnet.engine.trainer import Trainer
from aclnet.tasks.registry import make_task

# Small and quick: 3 epochs of a few steps on the CPU preset; the inter loss switches on at epoch 1.
QUICK = [
    "optim.epochs=3", "train.max_steps_per_epoch=4", "optim.batch_size=8", "data.clip_len=16",
    "data.test_clips=2", "data.synthetic.samples_per_class=12", "train.deterministic=true",
]
TESTS = Path(__file__).resolve().parent


def _run(args: list[str]) -> None:
    assert main(args) == 0


def test_train_test_ensemble_end_to_end(tmp_path, capsys):
    for modality in ("j", "b"):
        _run(["train", f"synthetic-{modality}", "--work-dir", str(tmp_path / modality), "--set", *QUICK])
        run = tmp_path / modality
        for name in ("latest.pt", "metrics.csv", "config.yaml", "test_scores.npz", "test_report.json"):
            assert (run / name).exists(), name
        report = json.loads((run / "test_report.json").read_text())
        assert report["clips"] == 2 and report["selection"] == "final epoch"  # the default rule
        with np.load(run / "test_scores.npz") as saved:  # the report's top-1 is that of the saved scores
            hits = saved["scores"].argmax(1) == saved["labels"]
        assert report["top1"] == pytest.approx(100 * hits.mean()) and report["samples"] == len(hits)
        assert list((run / "tensorboard").iterdir())
    out = tmp_path / "j3.npz"
    _run(["test", "synthetic-j", "--set", *QUICK, "--checkpoint", str(tmp_path / "j" / "latest.pt"),
          "--clips", "3", "--out", str(out)])
    assert "3 clips" in capsys.readouterr().out
    _run(["ensemble", str(tmp_path / "j" / "test_scores.npz"), str(tmp_path / "b" / "test_scores.npz"),
          "--weights", "1,1"])
    assert "ensemble: top1" in capsys.readouterr().out
    # An earlier run is never overwritten without --resume or --force.
    assert main(["train", "synthetic-j", "--work-dir", str(tmp_path / "j"), "--set", *QUICK]) == 2
    assert "--resume" in capsys.readouterr().err


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_two_epochs_equal_one_plus_resumed_one(tmp_path):
    settings = [*QUICK, "optim.epochs=2"]
    _run(["train", "synthetic-j", "--work-dir", str(tmp_path / "a"), "--set", *settings])
    # The same run stopped after epoch 1 (as `train` starts it), then resumed from the command line.
    run = tmp_path / "b"
    config = load_config("synthetic-j", settings)
    seed_everything(config)
    folder = RunFolder(run)
    folder.prepare(resume=False, force=False)
    folder.write_config(dump_config(config))  # as `train` writes it: a resume compares against it
    trainer, _ = build_trainer(make_task(config), folder, DistInfo(), torch.device("cpu"))
    trainer.fit(until_epoch=1)
    assert load_checkpoint(run / "latest.pt")["epoch"] == 1
    _run(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--set", *settings])
    _same_checkpoints(load_checkpoint(tmp_path / "a" / "latest.pt"), load_checkpoint(run / "latest.pt"))
    assert _history(tmp_path / "a") == _history(run)


def _same_checkpoints(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        same = torch.equal(value, b["model"][key]) if isinstance(value, torch.Tensor) else value == b["model"][key]
        assert same, key
    assert a["history"] == b["history"]


def _ctrl_c_during_step(monkeypatch: pytest.MonkeyPatch, step: int) -> Callable:
    """Send this process a real SIGINT during training step `step` (counted over the run); returns the original
    `Trainer.train_step`."""
    original = Trainer.train_step
    done = itertools.count(1)

    def train_step(self, data, labels):
        if next(done) == step:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, data, labels)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    return original


def test_ctrl_c_mid_epoch_saves_the_position_and_the_resumed_run_is_identical(tmp_path, monkeypatch, capsys):
    settings = [*QUICK, "optim.epochs=3"]
    _run(["train", "synthetic-j", "--work-dir", str(tmp_path / "a"), "--set", *settings])
    original = _ctrl_c_during_step(monkeypatch, 6)  # the 2nd step of epoch 2 (4 steps per epoch)
    run = tmp_path / "b"
    command = ["train", "synthetic-j", "--work-dir", str(run), "--set", *settings]
    assert main(command) == 130
    err = capsys.readouterr().err
    assert "stopped at epoch 2, step 2" in err
    assert "Continue with: aclnet train synthetic-j --work-dir " + str(run) in err and err.rstrip().endswith("--resume")
    saved = load_checkpoint(run / "latest.pt")
    assert saved["epoch"] == 1 and saved["position"]["epoch"] == 2 and saved["position"]["step"] == 2
    assert set(saved["position"]["sums"]) >= {"loss", "ce"}
    monkeypatch.setattr(Trainer, "train_step", original)
    _run([*command, "--resume"])
    a, b = load_checkpoint(tmp_path / "a" / "latest.pt"), load_checkpoint(run / "latest.pt")
    assert "position" not in b
    _same_checkpoints(a, b)
    assert _history(tmp_path / "a") == _history(run)


def test_ctrl_c_in_the_last_step_of_an_epoch_finishes_the_epoch(tmp_path, monkeypatch, capsys):
    _ctrl_c_during_step(monkeypatch, 4)
    run = tmp_path / "run"
    assert main(["train", "synthetic-j", "--work-dir", str(run), "--force", "--set", *QUICK]) == 130
    err = capsys.readouterr().err
    assert "stopped after epoch 1;" in err and "--force" not in err and err.rstrip().endswith("--resume")
    saved = load_checkpoint(run / "latest.pt")
    assert saved["epoch"] == 1 and "position" not in saved and len(_history(run)) == 1


@pytest.mark.slow
def test_ctrl_c_from_a_terminal_stops_once_with_workers_running(tmp_path):
    """A terminal sends SIGINT to the whole process group: the data workers leave it to the main process."""
    run = tmp_path / "run"
    settings = [*QUICK, "optim.epochs=30", "data.num_workers=2", "train.val_interval=100"]
    proc = subprocess.Popen([sys.executable, "-m", "aclnet.cli", "train", "synthetic-j", "--work-dir", str(run),
                             "--set", *settings], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (run / "latest.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("stopping after this step") == 1 and "Traceback" not in err
    assert "Continue with: aclnet train synthetic-j" in err
    _run(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--set", *settings])
    assert load_checkpoint(run / "latest.pt")["epoch"] == 30


@pytest.mark.slow
def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    run = tmp_path / "run"
    settings = [*QUICK, "optim.epochs=30", "train.max_steps_per_epoch=1", "train.val_interval=100"]
    proc = subprocess.Popen([sys.executable, "-m", "aclnet.cli", "train", "synthetic-j", "--work-dir", str(run),
                             "--set", *settings], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (run / "latest.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside a later epoch, possibly while a checkpoint is written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch = load_checkpoint(run / "latest.pt")["epoch"]
    assert 1 <= epoch < 30
    _run(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--set", *settings])
    assert load_checkpoint(run / "latest.pt")["epoch"] == 30


@pytest.mark.slow
def test_torchrun_two_processes_share_statistics(tmp_path):
    script = TESTS / "ddp_train.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", str(script),
         str(tmp_path)], env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert states[0]["confusion"].sum() > 0
    for key in ("confusion", "families", "prototypes"):
        assert torch.equal(states[0][key], states[1][key]), key
    assert (tmp_path / "run" / "latest.pt").exists()


def test_select_on_last_holds_nothing_out_and_tests_the_final_epoch(tmp_path):
    no_val_split = [*QUICK, "optim.epochs=2", "data.val_split=null"]
    config = load_config("synthetic-j", [*no_val_split, "train.select_on=last"])
    held = make_task(load_config("synthetic-j", [*no_val_split, "train.select_on=val"])).load_data()
    data = make_task(config).load_data()
    assert data.val == [] and len(data.train) == len(held.train) + len(held.val) and len(held.val) > 0
    for name, settings, validated in (("no-val", [*no_val_split, "train.select_on=last"], False),
                                      ("val", [*QUICK, "optim.epochs=2", "train.select_on=last"], True)):
        run = tmp_path / name
        _run(["train", "synthetic-j", "--work-dir", str(run), "--set", *settings])
        report = json.loads((run / "test_report.json").read_text())
        assert report["selection"] == "final epoch" and report["selected_epoch"] == 2
        assert report["checkpoint"] == str(run / "latest.pt") and not (run / "best.pt").exists()
        assert bool(_history(run)[-1].get("val_top1")) == validated  # the last epoch is always validated


@pytest.mark.parametrize("bad", [["data.path=/nonexistent.pkl", "data.format=pyskl"], ["data.format=avi"],
                                 ["model.backbone=stgcn", "model.embedding_input=topology"]])
def test_bad_experiments_exit_2(tmp_path, bad, capsys):
    assert main(["train", "synthetic-j", "--work-dir", str(tmp_path / "r"), "--set", *QUICK, *bad]) == 2
    assert capsys.readouterr().err.strip()


def test_the_onecycle_schedule_rises_peaks_and_falls_with_beta1_cycling(tmp_path):
    from aclnet.config import load_config
    from aclnet.engine.distributed import DistInfo
    from aclnet.engine.run import build_trainer
    from aclnet.engine.run_folder import RunFolder
    from aclnet.tasks.registry import make_task

    config = load_config("synthetic-j", [*QUICK, "optim.optimizer=adam", "optim.lr=0.01", "optim.schedule=onecycle",
                                         "optim.epochs=10", "optim.warmup_epochs=3", "data.num_workers=0"])
    trainer, _ = build_trainer(make_task(config), RunFolder(tmp_path / "run"), DistInfo(), torch.device("cpu"))
    total = 10 * trainer.steps_per_epoch  # 4 steps per epoch: 40 steps, 12 of them rising (3 of 10 epochs)
    group = trainer.optimizer.param_groups[0]
    seen = []
    for _ in range(total):
        seen.append((group["lr"], group["betas"][0]))
        trainer.optimizer.step()
        trainer.scheduler.step()
    lrs, betas = np.array(seen).T
    assert lrs[0] == pytest.approx(0.01 / 25) and betas[0] == pytest.approx(0.95)  # starts low, momentum high
    peak = int(np.argmax(lrs))
    assert peak == round(0.3 * total) - 1 and lrs[peak] == pytest.approx(0.01) and betas[peak] == pytest.approx(0.85)
    assert lrs[-1] == pytest.approx(0.01 / 25 / 1e4, rel=0.05) and betas[-1] == pytest.approx(0.95, abs=1e-3)
    assert (np.diff(lrs[:peak + 1]) > 0).all() and (np.diff(lrs[peak:]) < 0).all()


def test_init_weights_start_a_second_stage_from_a_runs_weights(tmp_path):
    first = tmp_path / "first"
    _run(["train", "synthetic-j", "--work-dir", str(first), "--set", *QUICK, "optim.epochs=1"])
    second = tmp_path / "second"  # lr 1e-12: one step moves nothing, so the weights are those it started from
    _run(["train", "synthetic-j", "--work-dir", str(second), "--set", *QUICK, "optim.epochs=1",
          "train.max_steps_per_epoch=1", "optim.lr=1e-12", f"train.init_weights={first}"])
    a = torch.load(first / "latest.pt", weights_only=True)["model"]
    b = torch.load(second / "latest.pt", weights_only=True)["model"]
    trained = [k for k in a if k.startswith("backbone.") and a[k].is_floating_point() and "running" not in k]
    assert trained and all(torch.allclose(a[k], b[k], atol=1e-6) for k in trained)


def test_resume_says_where_it_resumed_from(tmp_path, capsys):
    run = tmp_path / "run"
    _run(["train", "synthetic-j", "--work-dir", str(run), "--set", *QUICK, "optim.epochs=1"])
    capsys.readouterr()
    _run(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--allow-change", "optim.epochs",
          "--set", *QUICK, "optim.epochs=2"])
    assert f"resumed from {run / 'latest.pt'} at the end of epoch 1 of 2" in capsys.readouterr().out


def test_an_interrupted_command_other_than_training_says_nothing_half_written(tmp_path, monkeypatch, capsys):
    from aclnet.data import formats

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(formats, "read_format", interrupted)
    assert main(["prepare", "ntu", str(tmp_path), str(tmp_path / "out.pkl")]) == 130
    err = capsys.readouterr().err
    assert "aclnet prepare: interrupted; nothing was written that was not complete" in err and "--resume" not in err


@pytest.mark.slow
def test_warnings_are_one_plain_line_each(tmp_path):
    settings = [*QUICK, "optim.epochs=1", "train.deterministic=false"]  # epochs 1: the inter loss never switches on
    result = subprocess.run([sys.executable, "-m", "aclnet.cli", "train", "synthetic-j", "--work-dir",
                             str(tmp_path / "run"), "--set", *settings], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "never switches on" in line]
    assert len(lines) == 1 and lines[0].startswith("aclnet: warning: loss.inter.start_epoch")
    assert "warnings.warn" not in result.stderr and "UserWarning" not in result.stderr


def test_weak_runs_are_named_in_one_line_each():
    from aclnet.config import load_config
    from aclnet.engine.run import weak_run_warnings
    from aclnet.tasks.registry import make_task

    task = make_task(load_config("synthetic-j"))
    collapsed = {"train_score": {"metric": "top1", "value": 9.0, "chance": 100 / 12},
                 "confusion_matrix": [[5, 0, 0], [4, 0, 1], [5, 0, 0]]}  # 14 of 15 to class 0
    found = weak_run_warnings(task, collapsed, [{"train_ce": 2.3}], 12)
    assert len(found) == 3
    assert found[0].startswith("the final training cross-entropy 2.30 is near ln 12 = 2.48")
    assert found[1].startswith("training top1 9.0 % is under twice chance (8.3 %)")
    assert found[2].startswith("one class is predicted for 93 % of the test samples")
    fitted = {"train_score": {"metric": "top1", "value": 95.0, "chance": 100 / 12},
              "confusion_matrix": [[5, 0, 0], [0, 4, 1], [0, 0, 5]]}
    assert weak_run_warnings(task, fitted, [{"train_ce": 0.2}], 12) == []


def test_a_run_reports_its_training_score_and_says_when_it_barely_learned(tmp_path, capsys):
    run = tmp_path / "run"
    _run(["train", "synthetic-j", "--work-dir", str(run), "--set", *QUICK, "optim.epochs=1",
          "train.max_steps_per_epoch=1"])
    report = json.loads((run / "test_report.json").read_text())
    score = report["train_score"]
    assert score["metric"] == "top1" and score["chance"] == pytest.approx(100 / 12) and score["samples"] == 96
    assert 0 <= score["value"] <= 100 and any("near ln 12" in w for w in report["warnings"])
    out = capsys.readouterr().out
    assert "warning: the final training cross-entropy" in out
    assert f"on 96 training samples: top1 {score['value']:.2f} (chance 8.33)" in out
