"""Property-based fuzzing of the readers that take files from outside: NTU `.skeleton`, PYSKL pickles,
Kinetics JSON and pose-detection JSON (`pose-json`).

Property: every generated input ends in a valid `SampleSet` (float32 finite keypoints of 4 axes, scores
of the matching shape, integer labels in range, unique string ids, splits naming read samples) or in an
`InputError`; never another exception. Each example must finish within the deadline, allocate at most
`MAX_PEAK` bytes (traced by `tracemalloc`, which sees NumPy's buffers and the unpickler's memo), and
produce keypoints whose size is bounded relative to the input's.

Inputs are small (at most a few kB) and come two ways: mutations of valid files (truncated, numbers
replaced by huge, negative, NaN or non-numbers, lines or entries duplicated, values nested deeply),
which reach deep into the readers, and random bytes, which exercise the first checks. Runs are
derandomized (the same examples every run) and use no example database.
"""

from __future__ import annotations

import copy
import json
import pickle
import tempfile
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aclnet.data.formats import read_format
from aclnet.data.sample import MAX_CLASSES, MAX_COORDINATE, SampleSet
from aclnet.errors import InputError

MAX_PEAK = 64 * 2**20
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RANDOM = settings(FUZZ, max_examples=100)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aclnet-fuzz-") as name:
        yield Path(name)


def check_read(fmt: str, path: Path, *, per_byte: float, fixed: int, **options: Any) -> SampleSet | None:
    """Read `path`; the result must be a valid set or an InputError, within the memory bounds."""
    size = path.stat().st_size
    tracemalloc.start()
    try:
        result = read_format(fmt, path, **options)
        event("read: a valid sample set")
    except InputError:
        result = None
        event("read: InputError")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MAX_PEAK, f"reading {size} bytes allocated {peak} bytes"
    if result is not None:
        check_sample_set(result)
        out = sum(s.keypoint.nbytes + (s.score.nbytes if s.score is not None else 0) for s in result.samples)
        assert out <= per_byte * size + fixed, f"{size} bytes of input gave {out} bytes of keypoints"
    return result


def check_sample_set(sample_set: SampleSet) -> None:
    ids = [s.sample_id for s in sample_set.samples]
    assert sample_set.samples and all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)
    num_classes = sample_set.num_classes
    assert 0 < num_classes <= MAX_CLASSES
    for s in sample_set.samples:
        kp = s.keypoint
        assert isinstance(kp, np.ndarray) and kp.dtype == np.float32 and kp.ndim == 4 and np.isfinite(kp).all()
        assert np.abs(kp).max() <= MAX_COORDINATE  # no camera gives 1e15
        assert kp.shape[0] >= 1 and kp.shape[1] >= 1 and kp.shape[3] in (2, 3)
        if s.score is not None:
            assert s.score.dtype == np.float32 and s.score.shape == kp.shape[:3] and np.isfinite(s.score).all()
        assert type(s.label) is int and 0 <= s.label < num_classes
        assert all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in s.meta.values())
    assert all(set(split) <= set(ids) for split in sample_set.splits.values())


# ----------------------------------------------------------------------------------------------
# Mutations shared by the text formats

TEXT = st.characters(exclude_categories=["Cs"])  # any character that UTF-8 can write
SOME = st.sampled_from([0, 0, 1, 1, 2, 3])  # how many changes: none often, so that many inputs stay readable
WEIRD_NUMBERS = ["99999999999999999999999999", "-1", "-99999", "0", "NaN", "nan", "inf", "-inf", "1e400", "0x1F",
                 "", "abc", "1.5", "true", "null", "\"0.5\"", "1" * 400, "[[[[[[[[", "{}", "2147483648"]


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str:
    """`text` changed by none (often) or a few of: truncation, a number token replaced, a line duplicated,
    removed or repeated many times, deep nesting inserted."""
    for _ in range(draw(SOME)):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["truncate", "token", "token", "duplicate", "drop", "repeat", "nest"]))
        if kind == "truncate":
            text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
        elif kind == "token":
            tokens = text.replace("\n", " \n ").split(" ")
            if tokens:
                k = draw(st.integers(0, len(tokens) - 1))
                tokens[k] = draw(st.sampled_from(WEIRD_NUMBERS) | st.text(TEXT, max_size=4))
                text = " ".join(tokens).replace(" \n ", "\n")
        elif kind in ("duplicate", "drop", "repeat") and lines:
            k = draw(st.integers(0, len(lines) - 1))
            if kind == "drop":
                del lines[k]
            else:
                lines[k:k] = [lines[k]] * (1 if kind == "duplicate" else draw(st.integers(2, 200)))
            text = "\n".join(lines)
        else:
            k = draw(st.integers(0, len(text)))
            depth = draw(st.sampled_from([50, 5000]))
            text = text[:k] + "[" * depth + "]" * depth + text[k:]
    return text


# ----------------------------------------------------------------------------------------------
# NTU .skeleton


@st.composite
def ntu_files(draw: st.DrawFn) -> str:
    ids = st.sampled_from(["72057594037931101", "72057594037931102", "7"])
    bodies = st.lists(ids, min_size=draw(st.sampled_from([1, 1, 0])), max_size=3)
    frames = draw(st.lists(bodies, min_size=1, max_size=4))
    coords = st.floats(-3, 3, allow_nan=False, width=32)
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id in bodies:
            lines += [f"{body_id} 0 1 1 1 1 0 -0.05 0.12 2", "25"]
            xyz = draw(st.lists(coords, min_size=3, max_size=3))
            lines += [f"{xyz[0]} {xyz[1]} {xyz[2]} 260.1 190.7 980.2 520.3 -0.2 0.1 0.9 0.3 2"] * 25
    return "\r\n".join(lines) + "\r\n"


NTU_NAME = "S001C002P003R002A013.skeleton"
NTU_BOUND = {"per_byte": 400.0, "fixed": 64 * 1024}  # an empty frame ("0" and a newline) is 600 bytes out


@FUZZ
@given(text=ntu_files().flatmap(text_mutations))
def test_fuzz_ntu_mutated(workdir, text):
    path = workdir / NTU_NAME
    path.write_text(text)
    check_read("ntu", path, **NTU_BOUND)


@RANDOM
@given(data=st.binary(max_size=3000))
def test_fuzz_ntu_random_bytes(workdir, data):
    path = workdir / NTU_NAME
    path.write_bytes(data)
    check_read("ntu", path, **NTU_BOUND)


# ----------------------------------------------------------------------------------------------
# PYSKL pickles


def deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


WEIRD_VALUES = st.one_of(
    st.integers(-(10**30), 10**30),
    st.sampled_from([10**400, -1, 0, 2**63, 1e308, float("nan"), float("inf"), "0.5", "", True, None, (), [], {},
                     (480,), (480, 640), ("a", "b"), deep_list(200)]),
    st.floats(),
    st.text(TEXT, max_size=5),
)
# Fresh copies: values put into a document must not change the shared constants above.
FRESH_VALUES = (WEIRD_VALUES | st.just(deep_list(20))).map(copy.deepcopy)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from(["f2", "f4", "f8", "i1", "i8", "u2", "b1", ">f4"]))
    shape = draw(st.sampled_from([(1, 3, 25, 3), (2, 2, 17, 2), (1, 3, 25), (2, 2, 17), (3,), (0, 2, 17, 2),
                                  (1, 2, 18, 2), (1, 0, 25, 3), (1, 1, 25, 4), ()]))
    values = draw(st.sampled_from([0.0, 1.0, -2.5, float("nan"), float("inf"), 70000.0]))
    array = np.full(shape, values if np.dtype(dtype).kind == "f" else 1, dtype=dtype)
    return np.asfortranarray(array) if draw(st.booleans()) else array


def annotation(frame_dir: Any, keypoint: Any, label: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return {"frame_dir": frame_dir, "label": label, "keypoint": keypoint, "total_frames": 3, **extra}


FIELDS = ["img_shape", "keypoint_score", "subject", "view", "frame_dir", "label", "keypoint", "raw_file"]


@st.composite
def pyskl_payloads(draw: st.DrawFn) -> Any:
    anns = []
    for k in range(draw(st.integers(0, 4))):
        weird = draw(st.sampled_from([False, False, True]))
        keypoint = draw(arrays() | WEIRD_VALUES) if weird else np.ones((1, 3, 25, 3), np.float32)
        fields = draw(st.lists(st.sampled_from(FIELDS), max_size=draw(st.sampled_from([0, 0, 1, 2]))))
        extra = {key: draw(arrays() | WEIRD_VALUES) for key in fields}
        frame_dir = draw(st.sampled_from([f"s{k}", f"s{k}", "s0", k, None, 1.5]))
        anns.append(annotation(frame_dir, keypoint, draw(st.one_of(st.integers(0, 3), WEIRD_VALUES)), extra))
    ids = st.sampled_from(["s0", "s1", "s9", 3, None])
    split = draw(st.dictionaries(st.sampled_from(["train", "val", 7]), st.lists(ids, max_size=3) | WEIRD_VALUES,
                                 max_size=draw(st.sampled_from([0, 0, 2]))))
    payload: dict[str, Any] = {"split": split, "annotations": anns}
    for key, options in (("classes", st.lists(st.text(TEXT, max_size=3), max_size=5) | WEIRD_VALUES),
                         ("layout", st.sampled_from(["coco", "nturgb+d", "unknown", "nope"]) | WEIRD_VALUES)):
        if draw(st.sampled_from([False, False, True])):
            payload[key] = draw(options)
    shape = draw(st.sampled_from(["dict", "dict", "dict", "dict", "list", "other"]))
    return anns if shape == "list" else payload if shape == "dict" else draw(WEIRD_VALUES)


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` changed by none (often) or a few of: truncation, a byte replaced, bytes inserted, a slice
    duplicated."""
    for _ in range(draw(SOME)):
        kind = draw(st.sampled_from(["truncate", "replace", "insert", "duplicate"]))
        k = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            data = data[:k]
        elif kind == "replace" and data:
            data = data[:k] + bytes([draw(st.integers(0, 255))]) + data[k + 1:]
        elif kind == "insert":
            data = data[:k] + draw(st.binary(min_size=1, max_size=9)) + data[k:]
        else:
            n = draw(st.integers(1, 64))
            data = data[:k] + data[k:k + n] * draw(st.integers(2, 20)) + data[k:]
    return data


PYSKL_BOUND = {"per_byte": 16.0, "fixed": 64 * 1024}  # 1-byte values (bool, int8) become 4-byte floats


@FUZZ
@given(payload=pyskl_payloads(), protocol=st.sampled_from([2, 4, 5]), data=st.data())
def test_fuzz_pyskl_structured(workdir, payload, protocol, data):
    path = workdir / "ann.pkl"
    path.write_bytes(data.draw(byte_mutations(pickle.dumps(payload, protocol=protocol))))
    check_read("pyskl", path, **PYSKL_BOUND)
    check_read("pyskl", path, skip_invalid=True, **PYSKL_BOUND)


@RANDOM
@given(data=st.binary(max_size=2000), header=st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05\x95"]))
def test_fuzz_pyskl_random_bytes(workdir, data, header):
    path = workdir / "ann.pkl"
    path.write_bytes(header + data)
    check_read("pyskl", path, **PYSKL_BOUND)


# ----------------------------------------------------------------------------------------------
# Kinetics JSON (ST-GCN)


@st.composite
def kinetics_docs(draw: st.DrawFn) -> Any:
    data = []
    for t in range(draw(st.integers(1, 4))):
        persons = [{"pose": [draw(st.floats(0, 1))] * 36, "score": [draw(st.floats(0, 1))] * 18}
                   for _ in range(draw(st.integers(draw(st.sampled_from([1, 1, 0])), 3)))]
        data.append({"frame_index": draw(st.sampled_from([t + 1, t + 1, t + 3, 1])), "skeleton": persons})
    doc: dict[str, Any] = {"data": data, "label": "x", "label_index": draw(st.integers(0, 399))}
    for _ in range(draw(SOME)):  # a value somewhere replaced by a weird one
        target, key = draw(st.sampled_from(_slots(doc)))
        target[key] = draw(FRESH_VALUES)
    return doc


def _slots(doc: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) of every value in the document."""
    slots, stack = [], [doc]
    while stack:
        node = stack.pop()
        for key in (node if isinstance(node, dict) else range(len(node))):
            slots.append((node, key))
            if isinstance(node[key], (dict, list)):
                stack.append(node[key])
    return slots


def json_text(doc: Any) -> str:
    return json.dumps(doc, default=list)  # tuples become lists; NaN and Infinity are written as such


KINETICS_BOUND = {"per_byte": 64.0, "fixed": 300 * 2 * 18 * 3 * 4}  # up to 300 frames whatever the entries


@FUZZ
@given(text=kinetics_docs().map(json_text).flatmap(text_mutations), num_person=st.sampled_from([1, 2, 5]))
def test_fuzz_kinetics_json_mutated(workdir, text, num_person):
    path = workdir / "clip.json"
    path.write_text(text)
    check_read("kinetics-json", path, num_person=num_person, **KINETICS_BOUND)


@RANDOM
@given(text=st.text(max_size=500) | st.binary(max_size=500).map(lambda b: b.decode("latin-1")))
def test_fuzz_kinetics_json_random_text(workdir, text):
    path = workdir / "clip.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_read("kinetics-json", path, **KINETICS_BOUND)


# ----------------------------------------------------------------------------------------------
# Pose detections (COCO keypoint results)


@st.composite
def pose_docs(draw: st.DrawFn) -> Any:
    detections = []
    for _ in range(draw(st.integers(1, 5))):
        keypoints = [draw(st.floats(0, 640))] * 51
        detections.append({"image_id": draw(st.sampled_from(["0.jpg", "1.jpg", "12.png", 3, "frame_7.jpg"])),
                           "category_id": 1, "keypoints": keypoints, "score": draw(st.floats(0, 3))})
    for _ in range(draw(SOME)):
        target, key = draw(st.sampled_from(_slots({"d": detections})))
        target[key] = draw(FRESH_VALUES)
    return detections


POSE_BOUND = {"per_byte": 8.0, "fixed": 64 * 1024}  # one output frame per detection (>= 100 bytes each)


@FUZZ
@given(text=pose_docs().map(json_text).flatmap(text_mutations), skip=st.booleans())
def test_fuzz_pose_json_mutated(workdir, text, skip):
    path = workdir / "walk.json"
    path.write_text(text)
    check_read("pose-json", path, skip_invalid=skip, **POSE_BOUND)


@RANDOM
@given(text=st.text(max_size=500))
def test_fuzz_pose_json_random_text(workdir, text):
    path = workdir / "walk.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_read("pose-json", path, **POSE_BOUND)


# ----------------------------------------------------------------------------------------------
# CASIA-B (GaitGraph CSV), PKU-MMD (skeleton and label text), NW-UCLA (JSON)

CASIA_HEADER = "image_name," + ",".join(f"{a}{j}" for j in range(17) for a in "xyc")


@st.composite
def casia_files(draw: st.DrawFn) -> str:
    rows = []
    for sequence in draw(st.lists(st.sampled_from(["001-nm-01-090", "075-cl-02-000", "124-bg-01-180"]),
                                  min_size=1, max_size=3)):
        for frame in range(draw(st.integers(1, 4))):
            value = draw(st.floats(0, 1, width=32))
            rows.append(f"{sequence[:3]}/{sequence}/{frame:06d}.jpg," + ",".join([f"{value:.4f}"] * 51))
    return "\n".join([CASIA_HEADER, *rows]) + "\n"


CASIA_BOUND = {"per_byte": 2.0, "fixed": 64 * 1024}  # each 17 x 3 float32 frame comes from a row of 300+ bytes


@FUZZ
@given(text=casia_files().flatmap(text_mutations), skip=st.booleans())
def test_fuzz_casia_b_mutated(workdir, text, skip):
    path = workdir / "casia-b_pose_test.csv"
    path.write_text(text)
    check_read("casia-b", path, skip_invalid=skip, **CASIA_BOUND)


@st.composite
def pku_folders(draw: st.DrawFn) -> tuple[str, str]:
    frames = draw(st.integers(1, 6))
    value = draw(st.floats(-2, 2, width=32))
    skeleton = "\n".join(" ".join([f"{value:.4f}"] * 150) for _ in range(frames)) + "\n"
    segments = draw(st.lists(st.tuples(st.integers(1, 51), st.integers(0, frames), st.integers(0, frames + 2)),
                             min_size=1, max_size=4))
    return skeleton, "".join(f"{a},{s},{e},1\n" for a, s, e in segments)


PKU_BOUND = {"per_byte": 8.0, "fixed": 64 * 1024}  # segments cover a recording at most 4 times


@FUZZ
@given(files=pku_folders().flatmap(lambda f: st.tuples(text_mutations(f[0]), text_mutations(f[1]))))
def test_fuzz_pku_mmd_mutated(workdir, files):
    root = workdir / "pku"
    for folder, text in zip(("skeleton", "label"), files):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "0002-L.txt").write_text(text)
    size = sum((root / folder / "0002-L.txt").stat().st_size for folder in ("skeleton", "label"))
    result = check_read("pku-mmd", root, per_byte=float("inf"), fixed=0)  # bounded below by the files' sum
    if result is not None:
        out = sum(s.keypoint.nbytes for s in result.samples)
        assert out <= PKU_BOUND["per_byte"] * size + PKU_BOUND["fixed"]


@st.composite
def nw_ucla_docs(draw: st.DrawFn) -> Any:
    frames = draw(st.integers(1, 4))
    doc: dict[str, Any] = {"file_name": "a01_s01_e00_v01", "label": draw(st.integers(1, 10)),
                           "skeletons": [[[draw(st.floats(-2, 2))] * 3] * 20] * frames}
    for _ in range(draw(SOME)):
        target, key = draw(st.sampled_from(_slots(doc)))
        target[key] = draw(FRESH_VALUES)
    return doc


NW_UCLA_BOUND = {"per_byte": 8.0, "fixed": 64 * 1024}


@FUZZ
@given(text=nw_ucla_docs().map(json_text).flatmap(text_mutations))
def test_fuzz_nw_ucla_mutated(workdir, text):
    root = workdir / "nw-ucla"
    root.mkdir(exist_ok=True)
    (root / "a01_s01_e00_v01.json").write_text(text)
    check_read("nw-ucla", root, **NW_UCLA_BOUND)


# ----------------------------------------------------------------------------------------------
# UTD-MHAD (MATLAB files, through the crash-isolated reader) and SBU (text)


def utd_mat(frames: int, value: float) -> bytes:
    """A UTD-MHAD skeleton file: `d_skel` (20 joints, 3, T), compressed as MATLAB writes it."""
    import io

    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"d_skel": np.full((20, 3, frames), value)}, do_compression=True)
    return buffer.getvalue()


UTD_BOUND = {"per_byte": 64.0, "fixed": 64 * 1024}


@FUZZ
@given(data=st.tuples(st.integers(1, 8), st.floats(-2, 2)).map(lambda a: utd_mat(*a)).flatmap(byte_mutations),
       skip=st.booleans())
def test_fuzz_utd_mhad_mutated(workdir, data, skip):
    folder = workdir / "utd" / "Skeleton"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a1_s2_t1_skeleton.mat").write_bytes(utd_mat(4, 0.5))  # a valid test subject beside the mutated one
    (folder / "a1_s1_t1_skeleton.mat").write_bytes(data)
    result = check_read("utd-mhad", workdir / "utd", skip_invalid=skip, per_byte=float("inf"), fixed=0)
    if result is not None:
        out = sum(s.keypoint.nbytes for s in result.samples)
        assert out <= UTD_BOUND["per_byte"] * len(data) + UTD_BOUND["fixed"]


@st.composite
def sbu_files(draw: st.DrawFn) -> str:
    value = draw(st.floats(0, 1, width=32))
    rows = [",".join([str(frame)] + [f"{value:.4f}"] * 90) for frame in range(1, draw(st.integers(1, 6)) + 1)]
    return "\n".join(rows) + "\n"


SBU_BOUND = {"per_byte": 4.0, "fixed": 64 * 1024}  # 2 x 15 x 3 float32 per row of 90+ numbers


@FUZZ
@given(text=sbu_files().flatmap(text_mutations), skip=st.booleans())
def test_fuzz_sbu_mutated(workdir, text, skip):
    from aclnet.data.formats.sbu import FOLDS

    valid = ",".join(["1"] + ["0.5"] * 90) + "\n"
    for k, pair in enumerate(sorted({p for test in FOLDS.values() for p in test})):  # every set: no fold is empty
        folder = workdir / "sbu" / pair / "01" / "001"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "skeleton_pos.txt").write_text(text if k == 0 else valid)
    result = check_read("sbu", workdir / "sbu", skip_invalid=skip, per_byte=float("inf"), fixed=0)
    if result is not None:
        out = sum(s.keypoint.nbytes for s in result.samples)
        assert out <= SBU_BOUND["per_byte"] * len(text.encode()) + SBU_BOUND["fixed"]


# ----------------------------------------------------------------------------------------------
# MSR Action3D (MATLAB lists and text sequences)


def mat_bytes(variables: dict[str, Any]) -> bytes:
    import io

    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=True)
    return buffer.getvalue()


def cell(strings: list[str]) -> np.ndarray:
    out = np.empty((1, len(strings)), dtype=object)
    out[0, :] = strings
    return out


MSR_NAMES = [f"a01_s{s:02d}_e01" for s in range(1, 11)]
MSR_LISTS = {"action_names.mat": mat_bytes({"action_names": cell(["high arm wave"])}),
             "files_used.mat": mat_bytes({"files_used": cell(MSR_NAMES)}),
             "tr_te_splits.mat": mat_bytes({"tr_subjects": np.array([[1, 3, 5, 7, 9]]),
                                            "te_subjects": np.array([[2, 4, 6, 8, 10]])})}
MSR_BOUND = {"per_byte": 4.0, "fixed": 64 * 1024}  # 3 float32 per text line of 4 numbers


@FUZZ
@given(text=st.integers(1, 3).map(lambda t: "0.1 0.2 2.5 1\n" * 20 * t).flatmap(text_mutations),
       lists=st.sampled_from(sorted(MSR_LISTS)).flatmap(lambda n: st.tuples(st.just(n), byte_mutations(MSR_LISTS[n]))),
       skip=st.booleans())
def test_fuzz_msr_action3d_mutated(workdir, text, lists, skip):
    root = workdir / "msr"
    (root / "real_world_coordinates").mkdir(parents=True, exist_ok=True)
    for name, data in MSR_LISTS.items():
        (root / name).write_bytes(lists[1] if name == lists[0] else data)
    for k, name in enumerate(MSR_NAMES):
        (root / "real_world_coordinates" / f"{name}_skeleton3D.txt").write_text(
            text if k == 0 else "0.1 0.2 2.5 1\n" * 20)
    result = check_read("msr-action3d", root, skip_invalid=skip, per_byte=float("inf"), fixed=0)
    if result is not None:
        out = sum(s.keypoint.nbytes for s in result.samples)
        assert out <= MSR_BOUND["per_byte"] * (len(text.encode()) + 9 * 280) + MSR_BOUND["fixed"]


# ----------------------------------------------------------------------------------------------
# UTKinect-Action3D (label text and joints text) and Florence 3D (a MATLAB struct array)

UTK_SPLITS = mat_bytes({"tr_subjects": np.array([[1]]), "te_subjects": np.array([[2]])})
UTK_LABELS = "s01_e01\nwalk: 1 3\ns02_e01\nwalk: 1 2\n"
UTK_JOINTS = "".join(f"{frame} " + " ".join(["0.5"] * 60) + "\n" for frame in (1, 2, 3))
UTK_BOUND = {"per_byte": 4.0, "fixed": 64 * 1024}


@FUZZ
@given(labels=text_mutations(UTK_LABELS), joints=text_mutations(UTK_JOINTS), skip=st.booleans())
def test_fuzz_utkinect_mutated(workdir, labels, joints, skip):
    root = workdir / "utk"
    (root / "joints").mkdir(parents=True, exist_ok=True)
    (root / "action_names.mat").write_bytes(mat_bytes({"action_names": cell(["walk"])}))
    (root / "tr_te_splits.mat").write_bytes(UTK_SPLITS)
    (root / "joints" / "actionLabel_modified.txt").write_text(labels)
    (root / "joints" / "joints_s01_e01.txt").write_text(joints)
    (root / "joints" / "joints_s02_e01.txt").write_text(UTK_JOINTS)
    result = check_read("utkinect", root, skip_invalid=skip, per_byte=float("inf"), fixed=0)
    if result is not None:
        out = sum(s.keypoint.nbytes for s in result.samples)
        size = len(joints.encode()) + len(UTK_JOINTS)
        assert out <= UTK_BOUND["per_byte"] * 4 * size + UTK_BOUND["fixed"]  # segments cover at most 4 times


def florence_mat(frames: int, value: float) -> bytes:
    records = np.empty((1, 2), dtype=[("original_skeletal_data", object), ("action", object), ("subject", object)])
    for k, subject in enumerate((1, 2)):
        records[0, k] = (np.full((3, 15, frames), value), np.array([[1]]), np.array([[subject]]))
    return mat_bytes({"skeletal_data": records})


FLORENCE_BOUND = {"per_byte": 64.0, "fixed": 64 * 1024}


@FUZZ
@given(data=st.tuples(st.integers(1, 6), st.floats(-2, 2)).map(lambda a: florence_mat(*a)).flatmap(byte_mutations))
def test_fuzz_florence3d_mutated(workdir, data):
    root = workdir / "florence"
    root.mkdir(exist_ok=True)
    (root / "action_names.mat").write_bytes(mat_bytes({"action_names": cell(["wave"])}))
    (root / "tr_te_splits.mat").write_bytes(UTK_SPLITS)
    (root / "skeletal_data.mat").write_bytes(data)
    result = check_read("florence3d", root, per_byte=float("inf"), fixed=0)
    if result is not None:
        out = sum(s.keypoint.nbytes for s in result.samples)
        assert out <= FLORENCE_BOUND["per_byte"] * len(data) + FLORENCE_BOUND["fixed"]
