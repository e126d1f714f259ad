"""`aclnet.data.formats.matlab`: a MATLAB file that crashes scipy's reader is a named error, not a dead process."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aclnet.data.formats.matlab import read_mat
from aclnet.errors import InputError


def _names_file(damage: dict[int, int]) -> bytes:
    """A compressed MATLAB v5 file of a cell of three strings, bytes of its decompressed element replaced."""
    names = np.empty((1, 3), dtype=object)
    names[0, :] = ["wave", "clap", "kick"]
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"action_names": names}, do_compression=True)
    data = buffer.getvalue()
    kind, size = struct.unpack("<II", data[128:136])
    assert kind == 15  # miCOMPRESSED: one compressed element follows the 128-byte header
    element = bytearray(zlib.decompress(data[136:136 + size]))
    for offset, value in damage.items():
        element[offset] = value
    packed = zlib.compress(bytes(element))
    return data[:128] + struct.pack("<II", 15, len(packed)) + packed


def test_a_good_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "names.mat"
    path.write_bytes(_names_file({}))
    cell = read_mat(path)["action_names"]
    assert [str(np.asarray(x).item()) for x in cell.ravel()] == ["wave", "clap", "kick"]


def test_a_file_that_crashes_scipy_is_named_and_the_next_file_reads(tmp_path: Path) -> None:
    crashing = tmp_path / "crash.mat"
    crashing.write_bytes(_names_file({23: 1, 224: 0}))  # found by fuzzing: loadmat dies with SIGSEGV on it
    with pytest.raises(InputError, match=r"crash\.mat: not a readable MATLAB file: it crashed the MATLAB reader"):
        read_mat(crashing)
    good = tmp_path / "good.mat"
    good.write_bytes(_names_file({}))
    assert "action_names" in read_mat(good)


def test_a_truncated_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cut.mat"
    path.write_bytes(_names_file({})[:150])
    with pytest.raises(InputError, match=r"cut\.mat: not a readable MATLAB file \(truncated or corrupt\)"):
        read_mat(path)


def test_a_zlib_bomb_is_refused_before_scipy_expands_it(tmp_path: Path) -> None:
    header = _names_file({})[:128]  # MATLAB's text header, little-endian ('IM')
    packer = zlib.compressobj(9)
    body = packer.compress(struct.pack("<II", 14, 256 * 2**20))  # a miMATRIX element of 256 MB of zeros
    for _ in range(256):
        body += packer.compress(bytes(2**20))
    body += packer.flush()
    path = tmp_path / "bomb.mat"
    path.write_bytes(header + struct.pack("<II", 15, len(body)) + body)
    assert path.stat().st_size < 2**20
    with pytest.raises(InputError, match=r"bomb.mat: not a readable MATLAB file \(truncated or corrupt\): its "
                                         r"compressed elements expand to more than 100 times"):
        read_mat(path)


def test_a_matlab_73_file_is_named(tmp_path: Path) -> None:
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    path = tmp_path / "v73.mat"
    path.write_bytes(header.ljust(124, b" ") + struct.pack("<H", 0x0200) + b"IM" + bytes(512))
    with pytest.raises(InputError, match=r"v73.mat: not a readable MATLAB file .*NotImplementedError.*v7.3"):
        read_mat(path)
