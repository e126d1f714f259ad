"""The run folder: one process at a time, nothing lost or half written, resumes that fit, runs that stop."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aclnet.cli import main
from aclnet.engine.checkpoint import load_checkpoint, save_checkpoint
from aclnet.engine.run_folder import RunFolder

QUICK = ["optim.epochs=2", "train.max_steps_per_epoch=2", "optim.batch_size=8", "data.clip_len=16",
         "data.test_clips=1", "data.synthetic.samples_per_class=12"]


def _train(run: Path, *extra: str) -> int:
    return main(["train", "synthetic-j", "--work-dir", str(run), "--threads", "1", "--set", *QUICK, *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "done"
    assert _train(run) == 0
    return run


def test_a_second_process_is_refused_while_a_run_holds_the_folder(tmp_path: Path, capsys) -> None:
    lock = tmp_path / ".run.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; h = open(sys.argv[1], 'a');"
                               "h.write('process 4242'); h.flush(); fcntl.flock(h, fcntl.LOCK_EX);"
                               "print('held', flush=True); time.sleep(60)", str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert _train(tmp_path / "run") == 2
        assert "in use by process 4242; one process per run folder" in capsys.readouterr().err
        assert not (tmp_path / "run").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _train(tmp_path / "run") == 0  # the holder was killed: no stale lock is left
    with RunFolder(tmp_path / "run").lock(), RunFolder(tmp_path / "run").lock():
        pass  # the process that holds the folder may take it again (a suite around `train`)


def test_resume_refuses_a_changed_configuration_unless_allowed(finished: Path, tmp_path: Path, capsys) -> None:
    finished = Path(shutil.copytree(finished, tmp_path / "copy"))
    before = finished.joinpath("config.yaml").read_text()
    code = main(["train", "synthetic-j", "--work-dir", str(finished), "--resume", "--threads", "1",
                 "--set", *QUICK, "optim.lr=0.5"])
    err = capsys.readouterr().err
    assert code == 2 and "optim.lr: 0.05 -> 0.5" in err and "--allow-change optim.lr" in err
    assert finished.joinpath("config.yaml").read_text() == before  # nothing written
    code = main(["train", "synthetic-j", "--work-dir", str(finished), "--resume", "--threads", "1",
                 "--allow-change", "train.val_interval", "--set", *QUICK, "train.val_interval=2"])
    assert code == 0 and "val_interval: 2" in finished.joinpath("config.yaml").read_text()


def test_resume_refuses_another_model_or_weights_only(finished: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "copy"
    run.mkdir()
    payload = load_checkpoint(finished / "latest.pt")
    (run / "config.yaml").write_text(finished.joinpath("config.yaml").read_text())
    save_checkpoint(run / "latest.pt", {"model": payload["model"]})
    assert _train(run, "--resume") == 2
    assert "weights only (no optimizer" in capsys.readouterr().err
    save_checkpoint(run / "latest.pt", payload)
    code = main(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--threads", "1",
                 "--allow-change", "data.synthetic.num_classes", "--set", *QUICK, "data.synthetic.num_classes=15"])
    assert code == 2 and "the checkpoint has 12 classes, this configuration has 15" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "latest.pt"]


def test_leftovers_of_a_killed_write_or_a_failed_start_do_not_block(tmp_path: Path, finished: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("a run that failed before its first checkpoint")
    (run / "notes.txt").write_text("the user's own file")
    assert _train(run) == 0  # no checkpoint there: not an earlier run
    assert (run / "notes.txt").read_text() == "the user's own file"
    stale = run / ".latest.pt.abc123.tmp"
    stale.write_bytes(b"a checkpoint killed before its rename")
    code = main(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--threads", "1",
                 "--allow-change", "optim.epochs", "--set", *QUICK, "optim.epochs=3"])
    assert code == 0 and not stale.exists() and load_checkpoint(run / "latest.pt")["epoch"] == 3


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert _train(run, "optim.lr=1e6") == 1
    err = capsys.readouterr().err
    found = re.search(r"epoch (\d+), step \d+: loss term\(s\) .*not finite", err)
    assert found and "lower optim.lr" in err.lower() and not (run / "test_report.json").exists()
    if int(found.group(1)) > 1:  # the checkpoint kept is the last good epoch's, with finite weights
        kept = load_checkpoint(run / "latest.pt")
        assert kept["epoch"] == int(found.group(1)) - 1
        assert all(torch.isfinite(v).all() for v in kept["model"].values()
                   if isinstance(v, torch.Tensor) and v.is_floating_point())
    else:
        assert not (run / "latest.pt").exists()
    state = {"w": torch.tensor([1.0, float("nan")])}
    save_checkpoint(tmp_path / "nan.pt", {"model": state, "config": "", "class_names": []})
    assert main(["test", "synthetic-j", "--threads", "1", "--checkpoint", str(tmp_path / "nan.pt"),
                 "--set", *QUICK]) == 2
    assert "not finite (NaN or infinite values in 'w')" in capsys.readouterr().err


def test_a_batch_larger_than_the_training_data_is_named(tmp_path: Path, capsys) -> None:
    assert _train(tmp_path / "run", "optim.batch_size=512") == 2
    assert "fewer than one batch (optim.batch_size 512)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_failed_checkpoint_write_stops_with_the_previous_one_intact(tmp_path: Path, monkeypatch, capsys) -> None:
    import errno

    from aclnet.engine import trainer as trainer_module

    real = trainer_module.save_checkpoint
    calls = []

    def full_disk(path: Path, payload: dict) -> None:
        calls.append(payload["epoch"])
        if payload["epoch"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(trainer_module, "save_checkpoint", full_disk)
    assert _train(tmp_path / "run") == 1
    err = capsys.readouterr().err
    assert "cannot write the checkpoint of epoch 2" in err and "No space left on device" in err
    assert "previous checkpoint is intact (epoch 1" in err
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["epoch"] == 1


def test_truncated_scores_and_a_closed_pipe_end_without_traceback(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "j.npz"
    broken.write_bytes(b"PK\x03\x04truncated")
    assert main(["ensemble", str(broken)]) == 2
    assert f"{broken}: not a readable scores file" in capsys.readouterr().err
    result = subprocess.run(f"{sys.executable} -m aclnet.cli configs | head -1", shell=True, capture_output=True,
                            text=True)
    assert result.stdout.strip() == "casia-b-gait-j" and "Traceback" not in result.stderr


def test_force_never_deletes_what_is_not_a_run(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    (mine / "notes" / "a.txt").write_text("more")
    assert main(["train", "synthetic-j", "--work-dir", str(mine), "--force", "--set", *QUICK]) == 2
    err = capsys.readouterr().err
    assert "holds no run" in err and "2 other entries (notes/, thesis.tex)" in err
    assert (mine / "thesis.tex").read_text() == "years of work" and (mine / "notes" / "a.txt").exists()
    assert sorted(p.name for p in mine.iterdir()) == ["notes", "thesis.tex"]


def test_force_replaces_the_run_files_and_leaves_other_files(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert main(["train", "synthetic-j", "--work-dir", str(run.path), "--set", *QUICK]) == 0
    (run.path / "train.log").write_text("a log kept beside the run")
    first = run.latest.read_bytes()
    assert main(["train", "synthetic-j", "--work-dir", str(run.path), "--force", "--set", *QUICK,
                 "train.seed=1"]) == 0
    assert (run.path / "train.log").read_text() == "a log kept beside the run"
    assert run.latest.read_bytes() != first and run.finished
    linked = tmp_path / "linked"  # through a symbolic link: the run is replaced, the link stays a link
    linked.symlink_to(run.path)
    assert main(["train", "synthetic-j", "--work-dir", str(linked), "--force", "--set", *QUICK]) == 0
    assert linked.is_symlink() and RunFolder(linked).finished


@pytest.mark.parametrize("name", ["..", ".", "../..", "a/b", ""])
def test_names_that_leave_work_dirs_are_refused(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("kept")
    assert main(["train", "synthetic-j", "--force", "--set", *QUICK, f"name={name!r}"]) == 2
    err = capsys.readouterr().err
    assert "name: Value error" in err and "is not a folder name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_one_lock_per_folder_whichever_link_names_it(tmp_path):
    real = RunFolder(tmp_path / "real")
    link = tmp_path / "link"
    real.path.mkdir()
    link.symlink_to(real.path)
    with real.lock():  # a second process that names the folder through the link is refused
        other = subprocess.run([sys.executable, "-c", "from aclnet.engine.run_folder import RunFolder\n"
                                f"with RunFolder({str(link)!r}).lock(): pass"], capture_output=True, text=True)
    assert other.returncode != 0 and "in use by process" in other.stderr


def test_a_damaged_latest_pt_refuses_to_resume_with_a_message(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "optim.epochs=1") == 0
    payload = load_checkpoint(run / "latest.pt")
    payload["optimizer"] = {"state": "tampered", "param_groups": 7}
    save_checkpoint(run / "latest.pt", payload)
    assert main(["train", "synthetic-j", "--work-dir", str(run), "--resume", "--set", *QUICK, "optim.epochs=1"]) == 2
    assert "latest.pt: cannot resume from it: its training state is damaged" in capsys.readouterr().err


def test_a_failed_write_of_embeddings_or_test_scores_stops_with_a_message(tmp_path, monkeypatch, capsys):
    import errno

    from aclnet.engine import run as run_module
    from aclnet.engine import trainer as trainer_module

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer_module, "atomic_write_bytes", full_disk)
    assert _train(tmp_path / "a", "train.save_embeddings_at=[1]") == 1
    err = capsys.readouterr().err
    assert "cannot write the embeddings of epoch 1 to" in err and "No space left on device" in err
    monkeypatch.undo()
    real_save = trainer_module.save_checkpoint

    def best_fails(path, payload):
        return full_disk(None, None) if path.name == "best.pt" else real_save(path, payload)

    monkeypatch.setattr(trainer_module, "save_checkpoint", best_fails)
    assert _train(tmp_path / "c", "train.select_on=val") == 1
    assert re.search(r"cannot write the best checkpoint \(epoch \d\) to .*best.pt \(No space left on device\)",
                     capsys.readouterr().err)
    monkeypatch.undo()
    monkeypatch.setattr(run_module, "save_scores", lambda *args: full_disk(None, None))
    assert _train(tmp_path / "b") == 1
    assert "cannot write the test scores to" in capsys.readouterr().err
    assert (tmp_path / "b" / "latest.pt").is_file()


def test_an_all_zero_training_set_is_refused(tmp_path, capsys):
    from aclnet.data.annotations import write_annotations
    from aclnet.data.sample import Sample, SampleSet

    samples = [Sample(f"s{i}", np.zeros((1, 20, 25, 3), np.float32), i % 2) for i in range(20)]
    path = tmp_path / "zeros.pkl"
    write_annotations(SampleSet(samples, {"train": [s.sample_id for s in samples[:16]],
                                          "test": [s.sample_id for s in samples[16:]]}, "nturgb+d"), path)
    assert main(["train", "ntu60-xsub-j", "--work-dir", str(tmp_path / "run"), "--set", f"data.path={path}",
                 "data.train_split=train", "data.test_split=test", "train.device=cpu", "optim.epochs=1"]) == 2
    assert "every one of the 16 training samples has all-zero keypoints" in capsys.readouterr().err


def test_the_lock_file_goes_when_the_run_ends_and_a_killed_runs_file_is_taken_over(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    lock = tmp_path / ".run.lock"
    with run.lock():
        assert lock.read_text() == f"process {os.getpid()}"
    assert not lock.exists()
    lock.write_text("process 4242")  # left by a killed run: no process holds its lock
    with run.lock():
        assert lock.read_text() == f"process {os.getpid()}"
    assert not lock.exists()


def test_a_lock_file_removed_by_its_holder_before_our_lock_is_not_taken(tmp_path: Path, monkeypatch) -> None:
    import aclnet.engine.run_folder as module

    lock = tmp_path / ".run.lock"
    real_flock, calls = module.fcntl.flock, []

    def flock(handle, operation) -> None:  # noqa: ANN001
        calls.append(operation)
        if len(calls) == 1:  # the holder ends between our open and our lock: its file is gone
            lock.unlink()
        real_flock(handle, operation)

    monkeypatch.setattr(module.fcntl, "flock", flock)
    with RunFolder(tmp_path / "run").lock():
        assert lock.exists() and lock.read_text() == f"process {os.getpid()}"  # the new file, not the old inode
    assert len(calls) == 3  # the stale inode, the new file, the unlock
