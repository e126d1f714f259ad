"""Readers refuse hostile or broken input with an `InputError` naming the file and the problem.

Each test is one defect found by a robustness probe: memory that a small file could make a reader
allocate, tracebacks where exit status 2 is due, and output that the tool itself would then refuse.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_formats_big import write_ntu  # the same folder

from aclnet.cli import main
from aclnet.data import annotations
from aclnet.data.annotations import read_annotations
from aclnet.data.formats import read_format
from aclnet.data.safe_pickle import UnsafePickleError, safe_load_pickle
from aclnet.data.sample import MAX_CLASSES, SampleError
from aclnet.errors import InputError

# ----------------------------------------------------------------------------------------------
# Helpers: files in each format


def ann(frame_dir: Any, keypoint: np.ndarray | None = None, label: Any = 0, **extra: Any) -> dict[str, Any]:
    keypoint = np.zeros((1, 4, 25, 3), np.float32) if keypoint is None else keypoint
    return {"frame_dir": frame_dir, "label": label, "keypoint": keypoint, **extra}


def dump(path: Path, payload: Any, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    return path


class Reduce:
    """Pickles as `func(*args)` (then BUILD with `state` when given): hand-made pickle streams."""

    def __init__(self, func: Any, args: tuple, state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple:
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ntu_body(seed: int = 0, frames: int = 3) -> list[list[tuple[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    return [[("72057594037931101", rng.uniform(-1, 1, (25, 3)))] for _ in range(frames)]


def kinetics_doc(frames: int = 3, label: Any = 4) -> dict[str, Any]:
    return {"data": [{"frame_index": t + 1, "skeleton": [{"pose": [0.5] * 36, "score": [0.9] * 18}]}
                     for t in range(frames)],
            "label": "x", "label_index": label}


def ucla_doc(name: str = "a01_s01_e00_v01", frames: int = 3) -> dict[str, Any]:
    return {"file_name": name, "skeletons": np.full((frames, 20, 3), 0.25).tolist(), "label": 1}


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# ----------------------------------------------------------------------------------------------
# 1. The restricted unpickler: only checked arrays, no NumPy constructors


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_arrays_and_scalars_load_at_every_protocol(tmp_path, protocol):
    rng = np.random.default_rng(0)
    arrays = {
        "f16": rng.normal(size=(2, 5, 25, 3)).astype(np.float16),
        "f32": rng.normal(size=(1, 4, 17, 2)).astype(np.float32),
        "fortran": np.asfortranarray(rng.normal(size=(3, 4))),
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
        "bool": np.array([True, False]),
        "empty": np.zeros((0, 17, 3), np.float32),
        "strided": rng.normal(size=(4, 6)).astype(np.float32)[:, ::2],  # pickled as a contiguous copy
    }
    payload = {**arrays, "i64": np.int64(7), "f32_scalar": np.float32(0.5), "set": {1, 2}, "t": (np.ones(2),)}
    loaded = safe_load_pickle(dump(tmp_path / "a.pkl", payload, protocol))
    for key, value in arrays.items():  # as NumPy unpickles them (it swaps non-native data to native order)
        expected = pickle.loads(pickle.dumps(value, protocol=protocol))
        assert type(loaded[key]) is np.ndarray and loaded[key].dtype == expected.dtype
        np.testing.assert_array_equal(loaded[key], value)
    assert loaded["fortran"].flags.f_contiguous and loaded["f16"].flags.writeable
    assert loaded["i64"] == 7 and type(loaded["i64"]) is np.int64 and loaded["f32_scalar"] == np.float32(0.5)
    assert loaded["set"] == {1, 2} and type(loaded["t"][0]) is np.ndarray


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_shared_and_cyclic_structures_keep_their_sharing(tmp_path, protocol):
    array = np.arange(3.0)
    pair = (array, 1)
    cycle: list = [array]
    cycle.append(cycle)
    loaded = safe_load_pickle(dump(tmp_path / "a.pkl", {"s": [pair, pair, {"x": pair}], "c": cycle}, protocol))
    first, second, third = loaded["s"]
    assert type(first[0]) is np.ndarray and first is second and third["x"] is first
    assert type(loaded["c"][0]) is np.ndarray and loaded["c"][1] is loaded["c"]


def test_ndarray_constructor_with_strides_or_without_buffer_is_refused(tmp_path):
    stride0 = Reduce(np.ndarray, ((2_000_000, 25, 3), np.dtype("f4"), b"\0" * 4, 0, (0, 0, 0)))
    for name, obj in [("stride0", stride0), ("nobuffer", Reduce(np.ndarray, ((1000,), np.dtype("f8"))))]:
        path = dump(tmp_path / f"{name}.pkl", {"split": {}, "annotations": [ann("a", obj)]})
        with pytest.raises(UnsafePickleError, match=rf"{name}.pkl: refused to load: numpy.ndarray is called directly"):
            read_format("pyskl", path)


def test_array_data_must_match_its_declared_shape(tmp_path):
    reconstruct = np.zeros(1).__reduce__()[0]
    big = Reduce(reconstruct, (np.ndarray, (0,), b"b"), (1, (2_000_000, 25, 3), np.dtype("f4"), False, b"\0" * 8))
    path = dump(tmp_path / "short.pkl", {"split": {}, "annotations": [ann("a", big)]})
    with pytest.raises(UnsafePickleError, match=r"short.pkl: refused to load: an array declares shape "
                                                r"\(2000000, 25, 3\) of float32 \(600000000 bytes\) but holds 8 bytes"):
        read_format("pyskl", path)
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    short = Reduce(frombuffer, (bytearray(8), np.dtype("f4"), (1000,), "C"))
    with pytest.raises(UnsafePickleError, match="holds 8 bytes"):
        safe_load_pickle(dump(tmp_path / "p5.pkl", short, 5))


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (np.array([1, "a"], dtype=object), "dtype 'O8' is not a number type"),
        (np.array(["ab", "c"]), "dtype 'U2' is not a number type"),
        (np.zeros(2, dtype=[("x", "f4"), ("y", "i4")]), "is not a number type"),
        (Reduce(__import__("codecs").encode, (b"x" * 100, "zlib")), "codecs.encode is used for something other"),
        (Reduce(slice, (1, 2)), "refers to 'builtins.slice'"),
        (Reduce(bytes, (10**12,)), "bytes is called with arguments"),
    ],
)
def test_object_string_structured_dtypes_and_other_calls_are_refused(tmp_path, obj, message):
    with pytest.raises(UnsafePickleError, match=message):
        safe_load_pickle(dump(tmp_path / "x.pkl", {"a": obj}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x04\x8e" + (1 << 62).to_bytes(8, "little") + b"xx.", "declares 4611686018427387904 bytes of data but "
                                                                    "only 3"),
        (b"\x80\x04\x96" + (1 << 40).to_bytes(8, "little") + b".", "declares 1099511627776 bytes"),
        (b"\x80\x02X" + (1 << 31).to_bytes(4, "little") + b"ab.", "declares 2147483648 bytes"),
        (b"\x80\x04Nr\xff\xff\xff\x7f.", "stores memo entry 2147483647 after only 0 values"),
        (b"\x80\x04Nr\x00\x00\x00\x08.", "stores memo entry 134217728"),
        (b"(Np99999999999\n.", "stores memo entry 99999999999"),
        (b"\x80\x04N", "ends without STOP"),
        (b"\x80\x04\x8c", "ends without STOP"),  # found by the fuzzer: a length byte beyond the end
        (b"\x80\x04\xff.", "unknown opcode 0xff"),
    ],
    ids=["binbytes8", "bytearray8", "binunicode", "long_binput", "long_binput2", "put", "no_stop", "cut_length",
         "opcode"],
)
def test_declared_sizes_beyond_the_file_are_refused_before_allocating(tmp_path, data, message):
    path = tmp_path / "bomb.pkl"
    path.write_bytes(data)
    start, rss = time.perf_counter(), max_rss_mb()
    with pytest.raises(InputError, match=message):
        read_format("pyskl", path)
    assert time.perf_counter() - start < 2 and max_rss_mb() - rss < 200


# ----------------------------------------------------------------------------------------------
# 2. Declared sizes a small file cannot hold


def test_ntu_frame_count_above_the_lines_present_or_the_maximum(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("9000\r\n0\r\n")
    start, rss = time.perf_counter(), max_rss_mb()
    with pytest.raises(InputError, match=r"S001C001P001R001A001.skeleton: truncated: .*9000 frames declared"):
        read_format("ntu", path)
    path.write_text("3000000\n" + "0\n" * 3_000_000)  # every frame present, all empty: 6 MB of input
    with pytest.raises(InputError, match=r"line 1: 3000000 frames declared; at most 10000 are accepted"):
        read_format("ntu", path)
    assert time.perf_counter() - start < 10 and max_rss_mb() - rss < 400
    path.write_text("2\n1000000\n0\n")
    with pytest.raises(InputError, match=r"frame 1 declares 1000000 bodies .*; 1 lines follow"):
        read_format("ntu", path)
    path.write_text("-3\n")
    with pytest.raises(InputError, match=r"line 1: expected the frame count \(a whole number >= 0\), found '-3'"):
        read_format("ntu", path)


def test_kinetics_frame_index_beyond_the_entries_present(tmp_path):
    doc = kinetics_doc(frames=3)
    doc["data"][1]["frame_index"] = 10**9
    path = write_json(tmp_path / "clip.json", doc)
    start, rss = time.perf_counter(), max_rss_mb()
    with pytest.raises(InputError, match=r"clip.json: data\[1\]: frame_index 1000000000 is beyond 300, the largest "
                                         r"accepted for 3 entries"):
        read_format("kinetics-json", path)
    assert time.perf_counter() - start < 2 and max_rss_mb() - rss < 200
    doc["data"][1]["frame_index"] = 300  # gaps within the bound are kept as zero frames
    assert read_format("kinetics-json", write_json(path, doc)).samples[0].num_frames == 300


def test_kinetics_num_person_is_bounded(tmp_path):
    path = write_json(tmp_path / "clip.json", kinetics_doc())
    with pytest.raises(InputError, match="num_person must be an integer from 1 to 100, got 1000000000"):
        read_format("kinetics-json", path, num_person=10**9)


# ----------------------------------------------------------------------------------------------
# 3. InputError where a traceback was


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"img_shape": "ab"}, r"sample 'a': img_shape is 'ab', expected \(height, width\)"),
        ({"img_shape": (480,)}, r"img_shape is a tuple, expected \(height, width\)"),
        ({"img_shape": (480.5, None)}, "img_shape is a tuple"),
        ({"keypoint_score": "high"}, r"sample 'a': keypoint_score is 'high', expected a NumPy array \(1, 4, 25\)"),
        ({"keypoint_score": {"x": 1}}, "keypoint_score is a dict"),
        ({"keypoint_score": np.zeros((1, 4, 25), bool)}, "keypoint_score has dtype bool, expected a number type"),
        ({"subject": [1, 2]}, "meta field 'subject' is a list, expected an integer or a string"),
    ],
)
def test_pyskl_fields_of_the_wrong_type(tmp_path, extra, message):
    path = dump(tmp_path / "a.pkl", {"split": {}, "annotations": [ann("a", **extra)]})
    with pytest.raises(SampleError, match=message):
        read_format("pyskl", path)


def test_pyskl_img_shape_and_meta_of_numpy_integers_are_kept(tmp_path):
    extra = {"img_shape": np.array([480, 640]), "subject": np.int64(3), "view": "left"}
    path = dump(tmp_path / "a.pkl", {"split": {}, "annotations": [ann("a", **extra)]})
    sample = read_format("pyskl", path).samples[0]
    assert sample.img_shape == (480, 640) and sample.meta == {"subject": 3, "view": "left"}
    assert type(sample.meta["subject"]) is int


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"train": [["a"]]}, r"split 'train': entry 0 is a list, expected a sample id"),
        ({"train": [{"a": 1}]}, "entry 0 is a dict"),
        ({("x",): ["a"]}, "a split name is a tuple, expected a string"),
    ],
)
def test_pyskl_unhashable_split_ids(tmp_path, split, message):
    path = dump(tmp_path / "a.pkl", {"split": split, "annotations": [ann("a")]})
    with pytest.raises(InputError, match=message):
        read_format("pyskl", path)


def nested_pickle(depth: int) -> bytes:
    """A protocol-2 annotation pickle whose frame_dir is a list nested `depth` deep (pickle.dumps would recurse)."""
    data = pickle.dumps({"split": {}, "annotations": [ann("PLACEHOLDER")]}, protocol=2)
    placeholder = b"X" + len("PLACEHOLDER").to_bytes(4, "little") + b"PLACEHOLDER"
    assert data.count(placeholder) == 1
    return data.replace(placeholder, b"]" * depth + b"a" * (depth - 1))


def test_pyskl_deeply_nested_frame_dir(tmp_path):
    path = tmp_path / "deep.pkl"
    path.write_bytes(nested_pickle(200_000))  # far beyond Python's recursion limit
    with pytest.raises(SampleError, match=r"deep.pkl: annotation #0: frame_dir is a list, expected a string"):
        read_format("pyskl", path)


def test_pyskl_huge_integers_are_described_not_printed(tmp_path):
    path = dump(tmp_path / "a.pkl", {"split": {}, "annotations": [ann("a", label=10**5000)]})
    with pytest.raises(SampleError, match=r"sample 'a': label an integer of about 5001 digits is too large"):
        read_format("pyskl", path)


@pytest.mark.parametrize("fmt", ["kinetics-json", "nw-ucla"])
def test_json_with_long_integers_or_deep_nesting(tmp_path, fmt):
    name = "a01_s01_e00_v01.json" if fmt == "nw-ucla" else "clip.json"
    doc = ucla_doc() if fmt == "nw-ucla" else kinetics_doc()
    if fmt == "nw-ucla":
        doc["skeletons"][0][0][0] = 10**400
    else:
        doc["data"][0]["skeleton"][0]["pose"][0] = 10**400
    path = write_json(tmp_path / name, doc)
    with pytest.raises(InputError, match=rf"{name}: .*integer (is )?too large for a number"):
        read_format(fmt, path)
    write_json(path, json.dumps(doc).replace("1" + "0" * 400, "1" + "0" * 5000))
    with pytest.raises(InputError, match=rf"{name}: not valid JSON: Exceeds the limit"):
        read_format(fmt, path)
    write_json(path, deep_json(100_000))
    with pytest.raises(InputError, match=rf"{name}: not valid JSON: nested too deeply"):
        read_format(fmt, path)


def test_kinetics_label_of_400_digits(tmp_path):
    path = write_json(tmp_path / "clip.json", kinetics_doc(label=10**400))
    with pytest.raises(SampleError, match="label an integer of about 401 digits is too large"):
        read_format("kinetics-json", path)


def casia_csv(frame: str) -> str:
    return "image_name," + ",".join(f"v{k}" for k in range(51)) + "\n" + \
        f"x/001-nm-01-000/{frame}.jpg," + ",".join(["0.5"] * 51) + "\n"


def test_casia_b_frame_number_of_25_digits(tmp_path):
    path = tmp_path / "poses.csv"
    path.write_text(casia_csv("1" * 25))
    with pytest.raises(InputError, match=r"poses.csv, line 2: image name .*frame number '1111111111111111111111111' "
                                         r"has more than 18 digits"):
        read_format("casia-b", path)
    path.write_text(casia_csv("\u00b2"))  # a digit that is not a decimal digit
    with pytest.raises(InputError, match="poses.csv, line 2: image name"):
        read_format("casia-b", path)


def write_pku(root: Path, split_file: bytes | None = None) -> Path:
    for folder in ("skeleton", "label"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savetxt(root / "skeleton" / "0002-L.txt", rng.uniform(-1, 1, (20, 150)))
    (root / "label" / "0002-L.txt").write_text("3,0,10,1\n5,10,20,1\n")
    if split_file is not None:
        (root / "cross-subject.txt").write_bytes(split_file)
    return root


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(range(256)) * 4, r"cross-subject.txt: not a text split file \(not UTF-8: byte 128 is 0x80\)"),
        ("Training videos:\n0002-L, caf\u00e9\nValidataion videos:\n0003-L\n".encode("latin-1"), "not UTF-8"),
    ],
    ids=["binary", "latin-1"],
)
def test_pku_mmd_binary_or_latin1_split_file(tmp_path, data, message):
    root = write_pku(tmp_path, data)
    with pytest.raises(InputError, match=message):
        read_format("pku-mmd", root)


def test_pku_mmd_label_frames_beyond_integer_range(tmp_path):
    root = write_pku(tmp_path)
    (root / "label" / "0002-L.txt").write_text("3,0,1e300,1\n")
    with pytest.raises(InputError, match=r"0002-L.txt, line 1: action and frames must be whole numbers"):
        read_format("pku-mmd", root)


def ntu_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_ntu(root / "S001C001P001R001A001.skeleton", ntu_body())
    return root


def test_prepare_output_a_folder_under_a_file_or_unwritable(tmp_path, capsys, monkeypatch):
    source = ntu_folder(tmp_path / "ntu")
    (tmp_path / "out_dir").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (tmp_path / "out_dir", "out_dir: is a folder; give the annotation file to write"),
        (tmp_path / "a_file" / "o.pkl", "o.pkl: cannot write there: .*a_file is a file, not a folder"),
        (tmp_path / "a_file" / "sub" / "o.pkl", "cannot write there: .*a_file is a file, not a folder"),
    ]
    for out, message in cases:
        for force in ([], ["--force"]):
            assert main(["prepare", "ntu", str(source), str(out), *force]) == 2
            err = capsys.readouterr().err
            assert re.search(message, err), err

    def refuse(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(annotations, "atomic_write_bytes", refuse)
    assert main(["prepare", "ntu", str(source), str(tmp_path / "o.pkl")]) == 2
    assert "o.pkl: cannot write (Permission denied)" in capsys.readouterr().err
    monkeypatch.undo()
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            assert main(["prepare", "ntu", str(source), str(locked / "o.pkl")]) == 2
            assert "no permission to write in the folder" in capsys.readouterr().err
        finally:
            locked.chmod(0o755)
    assert main(["prepare", "ntu", str(source), str(tmp_path / "new" / "dir" / "o.pkl")]) == 0


def test_prepare_path_options_are_text_and_switches_booleans(tmp_path, capsys):
    source = write_json(tmp_path / "clips" / "clip.json", kinetics_doc()).parent
    out = tmp_path / "o.pkl"
    assert main(["prepare", "kinetics-json", str(source), str(out), "--option", "label_file=123"]) == 2
    assert "123: cannot read" in capsys.readouterr().err  # the text '123' is a file name, not a number
    assert main(["prepare", "kinetics-json", str(source), str(out), "--option", "skip_invalid=maybe"]) == 2
    assert "option skip_invalid must be true or false, got 'maybe'" in capsys.readouterr().err
    assert main(["prepare", "kinetics-json", str(source), str(out), "--option", "num_person=[1"]) == 2
    assert "--option num_person: the value is not valid YAML" in capsys.readouterr().err
    assert main(["prepare", "kinetics-json", str(source), str(out), "--option", "label_file="]) == 2
    assert "--option label_file=: expected a value" in capsys.readouterr().err
    assert not out.exists()
    assert main(["prepare", "kinetics-json", str(source), str(out), "--option", "skip_invalid=true"]) == 0


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [
        ("kinetics-json", {"label_file": 123}, "option label_file is a path and must be a non-empty string, got 123"),
        ("pku-mmd", {"label_dir": ["x"]}, "option label_dir is a path and must be a non-empty string, got a list"),
        ("pyskl", {"layout": 25}, "option layout must be a string, got 25"),
        ("ntu", {"skip_invalid": "yes"}, "option skip_invalid must be true or false, got 'yes'"),
    ],
)
def test_option_types_are_checked_for_every_caller(tmp_path, fmt, options, message):
    with pytest.raises(InputError, match=message):
        read_format(fmt, tmp_path, **options)


# ----------------------------------------------------------------------------------------------
# 4. Output the tool refuses, garbage accepted


def test_nw_ucla_clips_with_the_same_file_name(tmp_path, caplog):
    first = write_json(tmp_path / "a01_s01_e00_v01.json", ucla_doc())
    second = write_json(tmp_path / "copy.json", ucla_doc())
    with pytest.raises(InputError, match=rf"copy.json: clip id 'a01_s01_e00_v01' \(its file_name\) is also the id "
                                         rf"of {first}"):
        read_format("nw-ucla", tmp_path)
    with caplog.at_level(logging.WARNING):
        sample_set = read_format("nw-ucla", tmp_path, skip_invalid=True)
    assert [s.sample_id for s in sample_set.samples] == ["a01_s01_e00_v01"]
    assert "skipped 1 invalid clip files: copy.json" in caplog.text and str(second) in caplog.text


def test_kinetics_clips_with_the_same_id_in_two_split_folders(tmp_path):
    write_json(tmp_path / "kinetics_train" / "clip.json", kinetics_doc())
    write_json(tmp_path / "kinetics_val" / "clip.json", kinetics_doc())
    with pytest.raises(InputError, match=r"kinetics_val/clip.json: clip id 'clip' is also the id of .*kinetics_train"):
        read_format("kinetics-json", tmp_path)
    assert read_format("kinetics-json", tmp_path, skip_invalid=True).splits == {"train": ["clip"], "val": []}


def test_pyskl_unknown_joint_count_needs_a_layout(tmp_path, capsys):
    source = dump(tmp_path / "j15.pkl", {"split": {"all": ["a"]}, "annotations": [ann("a", np.ones((1, 4, 15, 3)))]})
    out = tmp_path / "o.pkl"
    assert main(["prepare", "pyskl", str(source), str(out)]) == 2
    err = capsys.readouterr().err
    assert "the samples have 15 joints, which matches no built-in layout" in err and "--option layout=" in err
    assert not out.exists()
    assert main(["prepare", "pyskl", str(source), str(out), "--option", "layout=sbu"]) == 0
    assert "layout sbu" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0 and "layout: sbu" in capsys.readouterr().out
    # files written before with layout 'unknown' are read as if they had none
    anns = [ann("a", np.ones((1, 4, 15, 3)))]
    old = dump(tmp_path / "old.pkl", {"split": {}, "layout": "unknown", "annotations": anns})
    assert main(["inspect", str(old)]) == 0 and "layout: unknown" in capsys.readouterr().out


def test_labels_are_bounded(tmp_path, capsys):
    path = dump(tmp_path / "a.pkl", {"split": {}, "annotations": [ann("a", label=10**12)]})
    with pytest.raises(SampleError, match=rf"sample 'a': label 1000000000000 is too large: without class names labels "
                                          rf"must be below {MAX_CLASSES}"):
        read_format("pyskl", path)
    assert main(["prepare", "pyskl", str(path), str(tmp_path / "o.pkl")]) == 2
    assert "label 1000000000000 is too large" in capsys.readouterr().err
    kinetics = write_json(tmp_path / "clip.json", kinetics_doc(label=10**12))
    with pytest.raises(SampleError, match="clip.json: sample 'clip': label 1000000000000 is too large"):
        read_format("kinetics-json", kinetics)
    ok = dump(tmp_path / "b.pkl", {"split": {}, "annotations": [ann("a", label=MAX_CLASSES - 1)]})
    assert read_format("pyskl", ok).num_classes == MAX_CLASSES


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [("pose", "0.5", "'0.5' (str)"), ("pose", True, "True (bool)"), ("score", None, "None (NoneType)"),
     ("score", [0.5], "a list (list)")],
)
def test_kinetics_strings_and_booleans_are_not_numbers(tmp_path, field, value, shown):
    doc = kinetics_doc()
    doc["data"][2]["skeleton"][0][field] = [value] + doc["data"][2]["skeleton"][0][field][1:]
    path = write_json(tmp_path / "clip.json", doc)
    with pytest.raises(InputError, match=rf"clip.json: frame_index 3: '{field}' value 0 is {re.escape(shown)}, "
                                         "expected a number"):
        read_format("kinetics-json", path)


def test_nw_ucla_strings_and_booleans_are_not_numbers(tmp_path):
    doc = ucla_doc()
    doc["skeletons"][1][2] = ["0.5", 0.1, True]
    path = write_json(tmp_path / "a01_s01_e00_v01.json", doc)
    with pytest.raises(InputError, match=r"'skeletons' frame 1, joint 2 is a list, expected 3 numbers"):
        read_format("nw-ucla", path)


def test_all_samples_invalid_with_skip_invalid_is_refused(tmp_path, capsys):
    bad = {"split": {}, "annotations": [ann("a", np.full((1, 4, 25, 3), np.nan)), ann("b", label=-1)]}
    path = dump(tmp_path / "bad.pkl", bad)
    with pytest.raises(InputError, match=r"bad.pkl: nothing valid to read: no valid sample \(2 invalid\); first "
                                         r"problem: .*sample 'a': keypoint has NaN"):
        read_format("pyskl", path, skip_invalid=True)
    out = tmp_path / "o.pkl"
    assert main(["prepare", "pyskl", str(path), str(out), "--option", "skip_invalid=true"]) == 2
    assert "nothing valid" in capsys.readouterr().err and not out.exists()
    assert read_annotations(path, skip_invalid=True)[0].samples == []  # inspect still lists the problems
    assert main(["inspect", str(path)]) == 0 and "invalid samples: 2" in capsys.readouterr().out


def write_sbu(root: Path, rng: np.random.Generator) -> Path:
    """One sequence in one set of each fold (the reader needs every fold's train and test parts)."""
    for set_name in ("s01s02", "s02s03", "s01s03", "s02s01", "s04s02"):
        path = root / set_name / "01" / "001" / "skeleton_pos.txt"
        path.parent.mkdir(parents=True)
        rows = np.hstack([np.arange(1, 6)[:, None], rng.uniform(0.1, 0.9, (5, 90))])
        path.write_text("\n".join(",".join(f"{v:.4f}" for v in row) for row in rows))
    return root


def test_sbu_dangling_symlink_is_named(tmp_path, caplog):
    root = write_sbu(tmp_path / "sbu", np.random.default_rng(0))
    link = root / "s01s02" / "01" / "002" / "skeleton_pos.txt"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "gone.txt")
    (root / "s01s02" / "01" / "003").mkdir()  # a sequence folder without the file is not a sample
    with pytest.raises(InputError, match=rf"{link}: a symbolic link to .*gone.txt, which does not exist"):
        read_format("sbu", root)
    zeros = root / "s01s02" / "02" / "001" / "skeleton_pos.txt"  # read, then refused by the validation
    zeros.parent.mkdir(parents=True)
    zeros.write_text("\n".join(",".join(["1"] + ["0"] * 90) for _ in range(3)))
    with caplog.at_level(logging.WARNING):
        sample_set = read_format("sbu", root, skip_invalid=True)
    assert len(sample_set.samples) == 5
    assert "skipped 2 invalid files: s01s02/01/002/skeleton_pos.txt, s01s02_02_001" in caplog.text
    assert "first problem: " + str(link) in caplog.text


def test_ntu_skip_invalid_counts_and_names_skipped_files(tmp_path, caplog):
    root = ntu_folder(tmp_path / "ntu")
    (root / "S001C001P001R001A002.skeleton").write_text("5\r\n1\r\n")
    write_ntu(root / "S001C001P001R001A003.skeleton", ntu_body(1))
    write_ntu(root / "not_ntu.skeleton", ntu_body(2))
    with pytest.raises(InputError, match="not_ntu.skeleton: file name is not SsssCcccPpppRrrrAaaa"):
        read_format("ntu", root)
    (root / "not_ntu.skeleton").rename(root / "not_ntu.skeleton.bak")
    with pytest.raises(InputError, match="S001C001P001R001A002.skeleton: truncated"):
        read_format("ntu", root)
    (root / "not_ntu.skeleton.bak").rename(root / "not_ntu.skeleton")
    with caplog.at_level(logging.WARNING):
        sample_set = read_format("ntu", root, skip_invalid=True)
    assert [s.sample_id for s in sample_set.samples] == ["S001C001P001R001A001", "S001C001P001R001A003"]
    assert "skipped 2 invalid files: not_ntu.skeleton, S001C001P001R001A002.skeleton" in caplog.text
    for path in root.glob("S*A00[13].skeleton"):
        path.write_text("x\n")
    with pytest.raises(InputError, match=r"ntu: nothing valid to read: all 4 files were invalid"):
        read_format("ntu", root, skip_invalid=True)


@pytest.mark.parametrize("fmt", ["kinetics-json", "nw-ucla", "pku-mmd", "casia-b"])
def test_folder_readers_skip_broken_files(tmp_path, fmt, caplog):
    if fmt == "casia-b":
        (tmp_path / "good.csv").write_text(casia_csv("1"))
        (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00binary")
    elif fmt == "kinetics-json":
        write_json(tmp_path / "good.json", kinetics_doc())
        write_json(tmp_path / "bad.json", "{not json")
    elif fmt == "nw-ucla":
        write_json(tmp_path / "a01_s01_e00_v01.json", ucla_doc())
        write_json(tmp_path / "bad.json", "{not json")
    else:
        write_pku(tmp_path)
        (tmp_path / "skeleton" / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(InputError, match="bad.(json|txt|csv)"):
        read_format(fmt, tmp_path)
    with caplog.at_level(logging.WARNING):
        sample_set = read_format(fmt, tmp_path, skip_invalid=True)
    assert sample_set.samples and "skipped 1 invalid" in caplog.text and "bad." in caplog.text


# ---- what small files may allocate ---------------------------------------------------------------------------


def _peak(read: Any) -> tuple[Any, int]:
    """What `read()` returned (or the InputError it raised) and the peak bytes it allocated (tracemalloc sees
    NumPy's buffers)."""
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            result: Any = read()
        except InputError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_one_array_shared_by_many_annotations_is_refused(tmp_path):
    shared = np.zeros((1, 300, 25, 3), dtype=np.int8)  # 22 kB stored once; 1,000 float32 copies would be 360 MB
    anns = [{"frame_dir": f"s{k}", "label": 0, "keypoint": shared, "total_frames": 300} for k in range(1000)]
    path = tmp_path / "shared.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": anns}, protocol=4))
    assert path.stat().st_size < 100_000
    result, peak = _peak(lambda: read_format("pyskl", path))
    assert isinstance(result, InputError) and "one array is shared by several annotations" in str(result)
    assert peak < 20 * 2**20


def test_a_crowded_frame_in_a_long_kinetics_style_clip_is_refused(tmp_path):
    rows = np.ones((2000, 17, 3), dtype=np.float16)  # 1,000 persons in frame 0, then one per frame
    frames = np.concatenate([np.zeros(1000, dtype=np.int64), np.arange(1, 1001)])
    (tmp_path / "kp.pkl").write_bytes(pickle.dumps({"crowd": {"keypoint": rows}}, protocol=4))
    ann = {"frame_dir": "crowd", "label": 0, "frame_inds": frames, "raw_file": "kp.pkl"}
    path = tmp_path / "k.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [ann]}, protocol=4))
    result, peak = _peak(lambda: read_format("pyskl", path))  # 1,000 x 1,001 skeletons: 200 MB as float32
    assert isinstance(result, SampleError) and "one frame holds 1000 persons" in str(result)
    assert peak < 20 * 2**20


def test_pku_mmd_labels_that_repeat_the_whole_sequence_are_refused(tmp_path):
    root = write_pku(tmp_path)
    (root / "label" / "0002-L.txt").write_text("3,0,20,1\n" * 5)  # 5 x 20 frames of a 20-frame sequence
    with pytest.raises(InputError, match=r"0002-L.txt: the labelled segments hold 100 frames, more than 4 times "
                                         r"the recording's 20"):
        read_format("pku-mmd", root)
    (root / "label" / "0002-L.txt").write_text("3,0,20,1\n" * 4)  # four full copies still read
    assert len(read_format("pku-mmd", root).samples) == 4


def test_a_casia_b_file_with_one_long_line_stays_small(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"001/001-nm-01-000/{f:06d}.jpg," + ",".join(f"{v:.4f}" for v in rng.uniform(0, 1, 51))
            for f in range(300)]
    header = "image_name," + ",".join(f"v{k}" for k in range(51))
    path = tmp_path / "poses.csv"
    path.write_text("\n".join([header, *rows, "x" * 200_000]) + "\n")  # one row of 200,000 characters
    result, peak = _peak(lambda: read_format("casia-b", path, skip_invalid=True))
    assert not isinstance(result, Exception) and result.samples[0].num_frames == 300
    assert peak < 20 * path.stat().st_size  # the long line widened every row: 300 x 800 kB before
    with pytest.raises(InputError, match=r"poses.csv, line 302: 200000 characters, longer than twice the file's "
                                         "typical row"):
        read_format("casia-b", path)


def test_casia_b_numbers_with_underscores_or_other_digits_are_invalid_rows(tmp_path):
    for value in ("1_000", "\u0661\u0662"):
        path = tmp_path / "poses.csv"
        path.write_text(casia_csv("000001").replace(",0.5\n", f",{value}\n"))
        with pytest.raises(InputError, match=r"poses.csv, line 2: a value is not a number"):
            read_format("casia-b", path)


def test_coordinates_no_camera_gives_are_refused(tmp_path):
    sample = {"frame_dir": "far", "label": 0, "keypoint": np.full((1, 4, 25, 3), 1e15, np.float32)}
    path = tmp_path / "far.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [sample]}))
    with pytest.raises(SampleError, match=r"sample 'far': keypoint has a coordinate of 1e\+15, beyond 1e\+06"):
        read_format("pyskl", path)
