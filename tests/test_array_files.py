"""`aclnet.array_files`: NumPy files and zip archives from outside are checked before they are read."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from aclnet.array_files import read_npy, read_npz
from aclnet.engine.checkpoint import read_torch_file
from aclnet.errors import InputError


def _bomb(path: Path, member: str, size: int) -> Path:
    """A zip archive whose one member is `size` zero bytes behind an `.npy` header, deflated (about 1000:1)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (size,)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w") as handle:
            handle.write(header.getvalue())
            for _ in range(size // 2**20):
                handle.write(bytes(2**20))
    return path


def test_arrays_read_back(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(read_npy(tmp_path / "a.npy"), np.arange(12.0).reshape(3, 4))
    np.savez_compressed(tmp_path / "b.npz", x=np.ones(1000), names=np.array(["a", "b"]))
    arrays = read_npz(tmp_path / "b.npz")
    assert sorted(arrays) == ["names", "x"] and arrays["x"].sum() == 1000


def test_a_zip_bomb_archive_is_refused(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "bomb.npz", "x.npy", 256 * 2**20)
    assert path.stat().st_size < 2**20  # 256 MB behind a few hundred kB
    with pytest.raises(InputError, match=r"bomb.npz: its members expand to 268,435,\d+ bytes from .* \(more than "
                                         r"100-fold: a zip bomb\?\)"):
        read_npz(path)


def test_a_header_declaring_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    (tmp_path / "big.npy").write_bytes(header.getvalue() + bytes(64))
    with pytest.raises(InputError, match=r"big.npy: its header declares 4,000,000,000,000 bytes of data, the file "
                                         r"holds 64"):
        read_npy(tmp_path / "big.npy")
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(64))
    with pytest.raises(InputError, match=r"big.npz: x.npy declares 4,000,000,000,000 bytes of data"):
        read_npz(tmp_path / "big.npz")


def test_truncated_archives_fifos_and_devices_are_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones(100))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:200])
    with pytest.raises(InputError, match=r"cut.npz: not a readable NumPy .npz archive"):
        read_npz(tmp_path / "cut.npz")
    os.mkfifo(tmp_path / "pipe.npy")
    with pytest.raises(InputError, match=r"pipe.npy: not a regular file"):
        read_npy(tmp_path / "pipe.npy")
    with pytest.raises(InputError, match=r"/dev/zero: not a regular file"):
        read_npz(Path("/dev/zero"))


def test_a_checkpoint_that_is_a_zip_bomb_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"bomb.pt: not a readable checkpoint: its members expand"):
        read_torch_file(_bomb(tmp_path / "bomb.pt", "archive/data/0", 256 * 2**20))
    torch.save({"w": torch.ones(3)}, tmp_path / "good.pt")
    assert read_torch_file(tmp_path / "good.pt")["w"].sum() == 3


def test_fifos_and_devices_are_refused_by_every_reader_of_paths(tmp_path: Path, capsys) -> None:
    from aclnet.cli import main

    fifo = tmp_path / "pipe.pkl"
    os.mkfifo(fifo)
    for argv in (["prepare", "pyskl", str(fifo), str(tmp_path / "out.pkl")], ["inspect", str(fifo)],
                 ["prepare", "pyskl", "/dev/zero", str(tmp_path / "out.pkl")], ["train", str(tmp_path / "c.yaml")]):
        if argv[0] == "train":
            os.mkfifo(tmp_path / "c.yaml")
        assert main(argv) == 2
        assert "not a regular file" in capsys.readouterr().err
