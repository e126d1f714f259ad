"""The sequences a trained model runs on: files of any `aclnet prepare` format, plain arrays, samples.

What `aclnet.load(...).predict/embed/timeline` and `aclnet predict` accept, and the rules they follow.

Plain arrays (format `array`):

* `.npy`: one array, (T, V, C) or (M, T, V, C): frames, joints, channels (persons first when given).
* `.npz`: every array in it is one sequence; a file with one array is named after the file, a file with
  several arrays names each `FILE.npz:KEY` (so name the arrays per sample, e.g. `np.savez(f, walk=a, run=b)`).
  A file holding `embeddings` is an embeddings file (`aclnet predict --out x.npz`): a gallery, not input.
* `.csv` and `.txt`: one frame per row, one person; cells separated by commas, semicolons, tabs or spaces.
  Empty lines and lines starting with `#` are skipped; a first line with any cell that is not a number is a
  header and skipped. With V the model layout's joint count, a row holds either V*C numbers (C = 2 or 3) or
  V*C + 1 numbers, the first of which is a frame-index column and is dropped (rows are taken in file order,
  the index is not used to reorder or fill gaps). Within a row the numbers go joint by joint:
  x0, y0[, z0], x1, y1[, z1], ... (a (T, V, C) array flattened to (T, V*C), as `np.savetxt` writes it).
  UTKinect's `joints_sSS_eEE.txt` (frame id then 20 x 3 numbers) is such a file.

Files of the dataset formats (`aclnet.data.formats.FORMATS`) are read by their `prepare` reader: a format
given, or guessed. Guessing: `.skeleton` -> ntu; `.pkl`/`.pickle` -> pyskl; `.json` -> pose-json when the
file is a JSON list (of detections), kinetics-json when it is an object with `data`; `.csv` -> casia-b
when its first data cell is a CASIA-B image name (`.../sss-cc-nn-vvv/...`), else a plain array;
`.npy`/`.npz`/`.txt` -> plain array; a video (`.mp4`, `.avi`, `.mov`, ...) -> video, through the pose estimator
in the model's layout (`aclnet.data.formats.video.model_options`). A folder is guessed from the files in it
(and, for JSON, below it): `.skeleton` files -> ntu, JSON files -> as one of them, CASIA-B CSVs -> casia-b,
videos -> video, plain-array files -> each read as a plain array (`.txt` files only when their first line
is numbers: a README is no data). Anything else (a folder of mixed or unknown files, a JSON of another shape,
the `.mat` datasets) asks for the format by name.

Checks against the model (`check_sequence`), each an `InputError` naming the input, the expected and the
given shape: the joint count must be the layout's; the channels must be the model's (2 for x, y; 3 for
x, y, z; a 2D model trained with scores takes arrays with C = 3 meaning x, y, score, or samples whose
score is separate; a 2D model without scores refuses C = 3 and a 3D model refuses C = 2); at least one
frame; no NaN or infinite value; not every frame all zeros (frames partly or wholly zero among others are
fine: missing joints are zeros). Scores given to a model trained without them are dropped. More persons
than the model's are cut and fewer padded by the pipeline (`pad_persons`). Sequences shorter than the
clip are the pipeline's business: see `aclnet.inference.loading.LoadedModel.short_sequence_rule`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.array_files import read_npy, read_npz
from aclnet.data.checks import plain_number
from aclnet.data.sample import MAX_COORDINATE, Sample, SampleSet
from aclnet.data.video_frames import is_video
from aclnet.errors import InputError
from aclnet.fileio import require_readable
from aclnet.progress import Progress
from aclnet.skeleton import BUILTIN_LAYOUTS, Layout

ARRAY_FORMAT = "array"
"""The format name of plain arrays (`.npy`, `.npz`, `.csv`, `.txt`)."""
ARRAY_SUFFIXES = (".npy", ".npz", ".csv", ".txt")
VIDEO_FORMAT = "video"
_CASIA_NAME = re.compile(r"\d{3}-(nm|bg|cl)-\d{2}-\d{3}")
_CELLS = re.compile(r"[,;\s]+")


@dataclass
class InputSequence:
    """One sequence to run the model on.

    Attributes:
        name: how outputs name it (a file name, `FILE.npz:KEY`, a sample id, or `input[i]`).
        sample: the skeleton data (keypoint (M, T, V, C), optional score (M, T, V)).
        identity: who or what it shows when known (the class of a sample read from a dataset file, the
            `subject` or else the label of a `Sample` given directly; None for plain arrays, which galleries
            then name by `name`).
        layout: the layout name its reader declares (None for plain arrays and pyskl files, whose layout
            name may be a guess from the joint count); a different name than the model's is warned about.
    """

    name: str
    sample: Sample
    identity: str | None = None
    layout: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------


def read_inputs(source: str | Path, *, format: str | None = None, num_joints: int | None = None,
                channels: int | None = None, **options: Any) -> list[InputSequence]:
    """The sequences in a file or folder.

    Args:
        source: a file or folder (see the module docstring for what is read and how the format is guessed).
        format: a format name of `aclnet.data.formats.FORMATS`, or `array`; None guesses it.
        num_joints: joints per frame, needed for `.csv`/`.txt` rows (the model layout's joint count); for videos
            it picks the layout (`aclnet.data.formats.video.model_options`).
        channels: coordinates per joint the model takes; for videos it picks pixels (2) or world coordinates (3).
        **options: options of the format's reader (e.g. `img_shape` for pose-json).

    Returns:
        The sequences, unchecked (`check_sequence` checks them against a model).

    Raises:
        InputError: a missing file, a format that cannot be guessed or read, a malformed file.
    """
    from aclnet.data.formats import FORMATS, read_format

    path = require_readable(Path(source), folder_too=True)
    name = format or guess_format(path)
    if name == ARRAY_FORMAT:
        if options:
            raise InputError(f"{path}: plain arrays take no reader options, got {sorted(options)}")
        files = [path] if path.is_file() else list(_array_files(path))
        if not files:
            raise InputError(f"{path}: no plain-array files ({', '.join(ARRAY_SUFFIXES)}) in this folder")
        progress = Progress("files read", total=len(files))
        sequences = []
        for file in files:
            sequences += read_array_file(file, num_joints=num_joints)
            progress.step()
        progress.close()
        return sequences
    if name not in FORMATS:
        raise InputError(f"unknown format '{name}'; valid formats are {', '.join([ARRAY_FORMAT, *FORMATS])}")
    if name == VIDEO_FORMAT and num_joints is not None and not options:
        from aclnet.data.formats.video import model_options

        options = model_options(num_joints, channels)
    return sequences_of(read_format(name, path, **options), source=str(path), format=name)


def sequences_of(sample_set: SampleSet, *, source: str = "", format: str = "") -> list[InputSequence]:
    """One `InputSequence` per sample of a reader's sample set, named by sample id; the identity is the
    sample's class name when the set has class names, else its `subject` when known, else its label."""
    if not sample_set.samples:
        raise InputError(f"{source}: the file holds no sequences")
    sequences = []
    for sample in sample_set.samples:
        if sample_set.classes is not None and 0 <= sample.label < len(sample_set.classes):
            identity = str(sample_set.classes[sample.label])
        elif "subject" in sample.meta:
            identity = str(sample.meta["subject"])
        else:
            identity = str(sample.label)
        layout = sample_set.layout if format and format != "pyskl" else None
        sequences.append(InputSequence(sample.sample_id, sample, identity, layout))
    return sequences


def guess_format(path: Path) -> str:
    """The format of a file or folder by the rules in the module docstring; InputError when it cannot tell."""
    from aclnet.data.formats import FORMATS

    ask = f"give the format with --format (one of: {', '.join([ARRAY_FORMAT, *FORMATS])})"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".skeleton":
            return "ntu"
        if suffix in (".pkl", ".pickle"):
            return "pyskl"
        if suffix == ".json":
            return _json_kind(path, ask)
        if suffix == ".csv" and _is_casia_csv(path):
            return "casia-b"
        if suffix in ARRAY_SUFFIXES:
            return ARRAY_FORMAT
        if is_video(path):
            return VIDEO_FORMAT
        raise InputError(f"{path}: cannot guess the format of a '{suffix or 'suffix-less'}' file; {ask}")
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    suffixes = sorted({p.suffix.lower() for p in files})
    if any(p.suffix.lower() == ".skeleton" for p in files):
        kinds = {"ntu"}
    else:
        kinds = set()
        jsons = sorted(p for p in path.rglob("*.json") if not p.name.endswith("_label.json"))
        if jsons:
            kinds.add(_json_kind(jsons[0], ask))
        csvs = sorted(p for p in files if p.suffix.lower() == ".csv")
        if csvs and _is_casia_csv(csvs[0]):
            kinds.add("casia-b")
        elif next(_array_files(path), None) is not None:
            kinds.add(ARRAY_FORMAT)
        if any(is_video(p) for p in files):
            kinds.add(VIDEO_FORMAT)
    if len(kinds) == 1:
        return kinds.pop()
    found = ", ".join(suffixes) or "no files"
    what = f"both {' and '.join(sorted(kinds))} files" if kinds else f"no file of a known kind ({found})"
    raise InputError(f"{path}: cannot guess the format of this folder: it holds {what}; {ask}")


def _json_kind(path: Path, ask: str) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read as JSON ({exc})") from exc
    if isinstance(data, list):
        return "pose-json"
    if isinstance(data, dict) and "data" in data:
        return "kinetics-json"
    kind = f"an object with keys {sorted(data)[:8]}" if isinstance(data, dict) else type(data).__name__
    raise InputError(f"{path}: cannot guess the format of this JSON ({kind}; pose-json is a list of detections, "
                     f"kinetics-json an object with 'data'); {ask}")


def _is_casia_csv(path: Path) -> bool:
    """Whether the first data line of a CSV starts with a CASIA-B image name."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = [line for _, line in zip(range(2), handle)]
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    return len(lines) == 2 and bool(_CASIA_NAME.search(lines[1].split(",")[0]))


def _array_files(folder: Path) -> Iterator[Path]:
    """The plain-array files of a folder, in name order: `.npy`, `.npz`, `.csv` (not CASIA-B's) and `.txt` files
    whose first line is numbers (so that a README.txt or SOURCE.txt is not taken for data)."""
    for p in sorted(folder.iterdir()):
        suffix = p.suffix.lower()
        if not p.is_file() or suffix not in ARRAY_SUFFIXES:
            continue
        if (suffix == ".csv" and _is_casia_csv(p)) or (suffix == ".txt" and not _starts_with_numbers(p)):
            continue
        yield p


def _starts_with_numbers(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return False
    cells = [c for c in _CELLS.split(first.strip()) if c]
    try:
        return bool(cells) and all(isinstance(plain_number(c), float) for c in cells)
    except ValueError:
        return False


def read_array_file(path: Path, *, num_joints: int | None = None) -> list[InputSequence]:
    """The sequences of one plain-array file (`.npy`, `.npz`, `.csv`, `.txt`); see the module docstring."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return [InputSequence(path.name, array_sample(read_npy(path), path.name))]
    if suffix == ".npz":
        arrays = _load_npz(path)
        if "embeddings" in arrays:
            raise InputError(f"{path}: this file holds embeddings (written by `aclnet predict --out`), not "
                             "sequences; give it with --gallery")
        if len(arrays) == 1:
            return [InputSequence(path.name, array_sample(next(iter(arrays.values())), path.name))]
        return [InputSequence(f"{path.name}:{key}", array_sample(value, f"{path.name}:{key}"))
                for key, value in arrays.items()]
    if suffix in (".csv", ".txt"):
        if num_joints is None:
            raise InputError(f"{path}: reading rows of numbers needs the joint count (the model layout's)")
        return [InputSequence(path.name, array_sample(read_table(path, num_joints), path.name))]
    raise InputError(f"{path}: not a plain-array file; plain arrays are {', '.join(ARRAY_SUFFIXES)}")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = read_npz(path)
    if not arrays:
        raise InputError(f"{path}: the archive holds no arrays")
    return arrays


def read_table(path: Path, num_joints: int) -> np.ndarray:
    """(T, V, C) from a `.csv`/`.txt` file of one frame per row (rules in the module docstring)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    rows: list[list[float]] = []
    width = None
    first = True
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c for c in _CELLS.split(line) if c]
        try:
            values = [plain_number(c) for c in cells]
        except ValueError:
            if first:  # a header
                first = False
                continue
            raise InputError(f"{path}: line {number}: a cell is not a number ({line[:60]!r})") from None
        first = False
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise InputError(f"{path}: line {number} has {len(values)} numbers, the first row {width}; every row "
                             "must have the same count")
        rows.append(values)
    if not rows:
        raise InputError(f"{path}: no rows of numbers (given shape (0, ...); expected at least 1 frame)")
    table = np.asarray(rows, dtype=np.float64)
    n = table.shape[1]
    for index_column in (False, True):
        values = n - int(index_column)
        if values % num_joints == 0 and values // num_joints in (2, 3, 4):
            channels = values // num_joints
            return table[:, int(index_column):].reshape(len(table), num_joints, channels)
    raise InputError(
        f"{path}: rows of {n} numbers do not fit the model's {num_joints} joints: expected {num_joints} x C numbers "
        f"per row (C = 2 or 3: {num_joints * 2} or {num_joints * 3}), or one more with a leading frame-index "
        f"column; given shape ({len(table)}, {n})"
    )


def array_sample(array: Any, name: str) -> Sample:
    """A sample from an array (T, V, C) or (M, T, V, C) (numpy, torch or nested lists); the shape is checked
    by `check_sequence`, here only that it is an array of numbers."""
    if hasattr(array, "detach") and hasattr(array, "cpu"):
        array = array.detach().cpu().numpy()
    try:
        keypoint = np.asarray(array)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input '{name}': not an array of numbers ({exc})") from exc
    if keypoint.dtype == object or not (np.issubdtype(keypoint.dtype, np.floating)
                                        or np.issubdtype(keypoint.dtype, np.integer)):
        raise InputError(f"input '{name}': expected numbers, got an array of dtype {keypoint.dtype}")
    return Sample(name, keypoint, 0)  # the shape is checked, and (T, V, C) gets its person axis, in check_sequence


def as_sequences(inputs: Any, *, format: str | None = None, num_joints: int | None = None,
                 channels: int | None = None) -> list[InputSequence]:
    """Anything the API takes as `inputs`, as a list of sequences.

    Args:
        inputs: an array (T, V, C) or (M, T, V, C) (numpy or torch), a `Sample`, an `InputSequence`, a path
            (str or Path; may hold several sequences), or a list/tuple of these (arrays of different lengths).
        format: the format of the paths (None: guessed).
        num_joints: joints per frame for `.csv`/`.txt` files, and the layout of videos.
        channels: coordinates per joint, for videos (2: pixels, 3: world coordinates).
    """
    items: Iterable[Any] = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    sequences: list[InputSequence] = []
    for position, item in enumerate(items):
        if isinstance(item, InputSequence):
            sequences.append(item)
        elif isinstance(item, Sample):
            identity = item.meta.get("subject", item.label)
            sequences.append(InputSequence(item.sample_id, item, str(identity)))
        elif isinstance(item, (str, Path)):
            sequences += read_inputs(item, format=format, num_joints=num_joints, channels=channels)
        else:
            name = f"input[{position}]"
            sequences.append(InputSequence(name, array_sample(item, name)))
    if not sequences:
        raise InputError("no inputs given")
    return sequences


# ---------------------------------------------------------------------------------------------------------
# Checks against the model
# ---------------------------------------------------------------------------------------------------------


def check_sequence(sequence: InputSequence, layout: Layout, keypoint_channels: int, has_score: bool) -> Sample:
    """The sample of `sequence` ready for the model's pipeline, or InputError naming what does not fit.

    Args:
        sequence: the input.
        layout: the model's input layout (joint count and name).
        keypoint_channels: coordinates per joint the model takes (2 or 3).
        has_score: whether the model takes a confidence score per joint.

    Returns:
        A new float32 sample: keypoint (M, T, V, keypoint_channels), score (M, T, V) exactly when `has_score`.
    """
    sample = sequence.sample
    where = f"input '{sequence.name}'"
    keypoint = np.asarray(sample.keypoint)
    v = layout.num_joints
    c_in = keypoint_channels + int(has_score)
    channels = {2: "x, y", 3: "x, y, z"}.get(keypoint_channels, f"{keypoint_channels} coordinates")
    wanted_channels = f"{channels}, score" if has_score else channels
    expected = f"(M, T, {v}, {c_in}) or (T, {v}, {c_in}) ({wanted_channels})"
    if has_score:
        expected += f", or (M, T, {v}, {keypoint_channels}) with a separate score (M, T, {v})"
    given = keypoint.shape
    if keypoint.ndim == 3:
        keypoint = keypoint[None]
    if keypoint.ndim != 4:
        raise InputError(f"{where}: expected {expected}; given shape {given}")
    if not (np.issubdtype(keypoint.dtype, np.floating) or np.issubdtype(keypoint.dtype, np.integer)):
        raise InputError(f"{where}: expected numbers, given an array of dtype {keypoint.dtype}")
    m, t, joints, c = keypoint.shape
    if t < 1 or m < 1:
        raise InputError(f"{where}: {'no frames' if t < 1 else 'no persons'}: expected {expected} with T >= 1 and "
                         f"M >= 1; given shape {given}")
    if joints != v:
        raise InputError(f"{where}: {joints} joints, but the model's layout '{layout.name}' has {v} joints: expected "
                         f"{expected}; given shape {given}")
    if sequence.layout is not None and not _same_joints(sequence.layout, layout):
        warnings.warn(f"{where}: the file's layout is '{sequence.layout}', the model's '{layout.name}' (same joint "
                      "count): check that the joint orders agree", stacklevel=2)
    score = sample.score
    if score is not None and not has_score:
        score = None  # the model was trained without scores
    if score is not None:
        score = np.asarray(score)
        if score.shape != keypoint.shape[:3]:
            raise InputError(f"{where}: the score has shape {score.shape}, expected {keypoint.shape[:3]} (one per "
                             "person, frame and joint)")
    elif has_score:
        if c != c_in:
            raise InputError(f"{where}: {c} channels, but the model takes {channels} and a score per joint: expected "
                             f"{expected}; given shape {given}")
        keypoint, score = keypoint[..., :keypoint_channels], keypoint[..., keypoint_channels]
        c = keypoint_channels
    if c != keypoint_channels:
        what = {2: "2D input (x, y)", 3: "3D input (x, y, z)"}.get(c, f"input with {c} channels")
        model = {2: "a 2D model", 3: "a 3D model"}.get(keypoint_channels, "the model")
        if keypoint_channels == 2 and c == 3 and not has_score:
            what = "3D input (x, y, z) or (x, y, score)"
            model = "a 2D model trained without scores"
        raise InputError(f"{where}: {what} to {model}: expected {expected}; given shape {given}")
    keypoint = keypoint.astype(np.float32)
    _check_finite(keypoint, where, "keypoint")
    largest = float(np.abs(keypoint).max())
    if largest > MAX_COORDINATE:
        raise InputError(f"{where}: a coordinate of {largest:.3g}, beyond {MAX_COORDINATE:g}: no camera or pose "
                         "estimator gives such values (the wrong columns, or a corrupt file?)")
    if score is not None:
        score = score.astype(np.float32)
        _check_finite(score, where, "score")
    if not np.any(keypoint):
        raise InputError(f"{where}: every frame is all zeros (given shape {given}): no joint position to "
                         "classify; missing joints are zeros, but some joint of some frame must be given")
    return replace(sample, keypoint=keypoint, score=score, meta=dict(sample.meta))


def _same_joints(file_layout: str, layout: Layout) -> bool:
    """Whether a file's layout has the model layout's joints in its order: compared by joint names when the
    file's layout is a built-in one (COCO-17 data runs on a `coco-gaitgraph` model), else by name."""
    if file_layout in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[file_layout].joint_names == layout.joint_names
    return file_layout == layout.name


def _check_finite(array: np.ndarray, where: str, what: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        axes = "(person, frame, joint, channel)" if array.ndim == 4 else "(person, frame, joint)"
        raise InputError(f"{where}: {int(bad.sum())} NaN or infinite {what} value(s) in shape {array.shape}, "
                         f"the first at {axes} {first}; missing joints must be zeros")
