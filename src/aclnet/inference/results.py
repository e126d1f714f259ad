"""What a loaded model answers: predictions, timelines of a sliding window, and galleries of embeddings to
match probes against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aclnet.array_files import read_npz
from aclnet.engine.retrieval import euclidean_distances, normalised_rows
from aclnet.errors import InputError


@dataclass(frozen=True)
class ClassScore:
    """One class of a prediction: its name, its index in `LoadedModel.classes` and its probability."""

    name: str
    index: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """The classes of one input sequence.

    Attributes:
        input: the sequence's name (file name, `FILE.npz:KEY`, sample id, or `input[i]` for arrays).
        top_k: the k most probable classes, most probable first.
        probabilities: (num_classes,) clip-averaged softmax probabilities of every class (they sum to 1).
    """

    input: str
    top_k: tuple[ClassScore, ...]
    probabilities: np.ndarray

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.top_k[0].name

    @property
    def probability(self) -> float:
        """The probability of the most probable class."""
        return self.top_k[0].probability


@dataclass(frozen=True)
class Window:
    """One window of a timeline: frames `start` to `end` (both included, 0-based rows of the sequence), its
    most probable class (name and index) and that class's probability."""

    start: int
    end: int
    label: str
    index: int
    probability: float


@dataclass(frozen=True)
class Timeline:
    """Classes of a sliding window over one sequence.

    Windows of `window` frames start at frames 0, stride, 2 * stride, ... (`window_starts`), and one more
    window ends at the last frame when those leave frames after the last one uncovered: every frame is in a
    window. A sequence shorter than `window` gets one window, the whole sequence. Each window goes through the
    test pipeline as a sequence of its own.

    Attributes:
        input: the sequence's name.
        num_frames: frames of the whole sequence.
        window: frames per window.
        stride: frames between window starts.
        classes: the model's class names.
        starts: (W,) first frame of each window.
        probabilities: (W, num_classes) clip-averaged softmax probabilities of each window.
    """

    input: str
    num_frames: int
    window: int
    stride: int
    classes: list[str]
    starts: np.ndarray
    probabilities: np.ndarray

    @property
    def ends(self) -> np.ndarray:
        """(W,) last frame of each window (included)."""
        return np.minimum(self.starts + self.window, self.num_frames) - 1

    @property
    def windows(self) -> list[Window]:
        """Every window with its most probable class."""
        top = self.probabilities.argmax(1)
        return [Window(int(a), int(b), self.classes[k], int(k), float(p[k]))
                for a, b, k, p in zip(self.starts, self.ends, top, self.probabilities)]

    def frame_probabilities(self) -> np.ndarray:
        """(num_frames, num_classes): each frame's mean probabilities over the windows that cover it."""
        sums = np.zeros((self.num_frames, self.probabilities.shape[1]))
        counts = np.zeros(self.num_frames)
        for start, end, p in zip(self.starts, self.ends, self.probabilities):
            sums[start:end + 1] += p
            counts[start:end + 1] += 1
        return sums / counts[:, None]

    def frame_labels(self) -> np.ndarray:
        """(num_frames,) class index of every frame: the argmax of `frame_probabilities`."""
        return self.frame_probabilities().argmax(1)


@dataclass(frozen=True)
class Match:
    """A gallery identity near a probe: the identity, the distance of its nearest gallery sequence (Euclidean
    between L2-normalised embeddings, 0 to 2) and that sequence's name."""

    identity: str
    distance: float
    sequence: str


@dataclass(frozen=True)
class Gallery:
    """Embeddings of known sequences with their identities, to match probes against.

    Attributes:
        embeddings: (G, D) L2-normalised embeddings.
        identities: (G,) identity of each sequence.
        names: (G,) name of each sequence.
    """

    embeddings: np.ndarray
    identities: list[str]
    names: list[str]

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or not len(self.identities) == len(self.names) == len(self.embeddings):
            raise InputError(f"a gallery needs (G, D) embeddings and G identities and names; given embeddings "
                             f"{self.embeddings.shape}, {len(self.identities)} identities, {len(self.names)} names")

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        """A gallery from an `.npz` written by `save` (`aclnet predict GAIT.pt ... --out gallery.npz`).

        Args:
            path: the file; it holds `embeddings` (G, D), `identities` (G,) and `names` (G,).
        """
        path = Path(path)
        arrays = read_npz(path)
        missing = [key for key in ("embeddings", "identities") if key not in arrays]
        if missing:
            raise InputError(f"{path}: not a gallery file: no {missing} (it holds {sorted(arrays)}); write one with "
                             "`aclnet predict CHECKPOINT SEQUENCES... --out gallery.npz`")
        embeddings = arrays["embeddings"].astype(np.float64)
        if embeddings.ndim != 2 or not np.isfinite(embeddings).all():
            raise InputError(f"{path}: 'embeddings' must be a finite (G, D) array, given shape {embeddings.shape}")
        identities = [str(x) for x in arrays["identities"]]
        names = [str(x) for x in arrays.get("names", np.array(identities))]
        return cls(normalised_rows(embeddings), identities, names)

    def save(self, path: str | Path) -> None:
        """Write `embeddings`, `identities` and `names` to an `.npz` file (atomically)."""
        import io

        from aclnet.fileio import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, embeddings=self.embeddings.astype(np.float32), identities=np.array(self.identities, dtype=str),
                 names=np.array(self.names, dtype=str))
        atomic_write_bytes(Path(path), buffer.getvalue())

    def match(self, embeddings: np.ndarray, *, top_k: int = 5) -> list[list[Match]]:
        """The nearest `top_k` identities of each probe, nearest first.

        Args:
            embeddings: (P, D) probe embeddings (normalised here again; `LoadedModel.embed` output).
            top_k: identities per probe; each identity counts once, at its nearest gallery sequence
                (ties: the earlier gallery sequence).
        """
        require_whole_number("top_k", top_k)
        probes = np.asarray(embeddings, dtype=np.float64)
        if probes.ndim != 2 or probes.shape[1] != self.embeddings.shape[1]:
            raise InputError(f"the probes' embeddings have shape {probes.shape}, the gallery's "
                             f"{self.embeddings.shape}: expected (P, {self.embeddings.shape[1]}) (same model?)")
        distances = euclidean_distances(normalised_rows(probes), self.embeddings)
        results = []
        for row in distances:
            found: list[Match] = []
            seen: set[str] = set()
            for j in np.argsort(row, kind="stable"):
                if self.identities[j] not in seen:
                    seen.add(self.identities[j])
                    found.append(Match(self.identities[j], float(row[j]), self.names[j]))
                    if len(found) == top_k:
                        break
            results.append(found)
        return results


def window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """First frames of a timeline's windows: 0, stride, 2 * stride, ... while a window fits, then one window
    ending at the last frame if those leave frames uncovered; (0,) for a sequence shorter than `window`."""
    if num_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, num_frames - window + 1, stride, dtype=np.int64)
    return starts if starts[-1] + window == num_frames else np.append(starts, num_frames - window)


def require_whole_number(name: str, value: object) -> None:
    """Refuse what is not a whole number >= 1 (`top_k`, `window`, `stride`; a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
