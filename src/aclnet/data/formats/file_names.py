"""Meta fields and labels from file names, for readers whose files are one sequence each (pose-json, video).

`name_pattern` is a regular expression with named groups, matched against the whole file stem; every named
group that matched goes into the sample's `meta` (ASCII digits become ints), e.g. `subject`, `condition`,
`view`, `sequence`. `name_pattern="psymo"` selects PsyMo's names `<ID:03d>_<view>_<direction>_<run>_<variation>`
(direction and run 0 or 1): meta subject (int), view (int degrees), direction, run, condition (the variation)
and sequence = direction * 2 + run + 1, a 1-based number unique within (subject, condition, view). A name that
does not match is an error naming the file and the pattern.

Labels: with a `subject` group, label = index of the subject among the sorted distinct subjects read (numbers in
numeric order), classes = the subjects as written in the names. Otherwise samples are labelled by the folder
that holds them: classes = the sorted distinct relative folder paths, "." for files directly in the source
folder or a single file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aclnet.data.sample import Sample
from aclnet.errors import InputError

PSYMO_PATTERN = (
    r"(?P<subject>\d+)_(?P<view>\d+)_(?P<direction>[01])_(?P<run>[01])_(?P<condition>[A-Za-z]+)"
)
# Keys of the annotation dict a sample is written to (meta fields are merged into it) and the readers' own fields.
RESERVED_GROUPS = frozenset({
    "frame_dir", "label", "total_frames", "keypoint", "keypoint_score", "img_shape", "original_shape",
    "ambiguous_frames", "frames_without_person",
})


@dataclass
class NamePattern:
    """A compiled `name_pattern`; `psymo` when it is PsyMo's (which adds the `sequence` field)."""

    regex: re.Pattern[str]
    psymo: bool

    @property
    def has_subject(self) -> bool:
        return "subject" in self.regex.groupindex


@dataclass
class NamedFile:
    """One file's sample with what labelling needs: its folder, and its subject as written and as a sort key."""

    sample: Sample
    folder: str
    subject_text: str | None = None
    subject_key: tuple[int, int, str] | None = field(default=None)


def compile_pattern(name_pattern: Any) -> NamePattern | None:
    """The pattern of option `name_pattern` (a regular expression or "psymo"), None for None."""
    if name_pattern is None:
        return None
    if not isinstance(name_pattern, str):
        raise InputError(f"name_pattern must be a regular expression or 'psymo', got {name_pattern!r}")
    psymo = name_pattern == "psymo"
    text = PSYMO_PATTERN if psymo else name_pattern
    try:
        regex = re.compile(text)
    except re.error as exc:
        raise InputError(f"name_pattern {name_pattern!r} is not a regular expression: {exc}") from exc
    reserved = sorted(RESERVED_GROUPS & set(regex.groupindex))
    if reserved:
        raise InputError(f"name_pattern {name_pattern!r}: group names {reserved} are reserved")
    return NamePattern(regex, psymo)


def meta_from_name(path: Path, pattern: NamePattern | None) -> tuple[dict[str, int | str], str | None]:
    """Meta fields from the file stem, and the subject as written (None without a subject group)."""
    if pattern is None:
        return {}, None
    match = pattern.regex.fullmatch(path.stem)
    if match is None:
        shown = "psymo" if pattern.psymo else pattern.regex.pattern
        raise InputError(f"{path}: file name '{path.stem}' does not match name_pattern '{shown}'")
    meta: dict[str, int | str] = {
        key: int(text) if text.isascii() and text.isdigit() else text
        for key, text in match.groupdict().items()
        if text is not None
    }
    if pattern.psymo:
        meta["sequence"] = int(meta["direction"]) * 2 + int(meta["run"]) + 1
    subject_text = match.group("subject") if pattern.has_subject else None
    if pattern.has_subject and subject_text is None:
        raise InputError(f"{path}: the 'subject' group of name_pattern '{pattern.regex.pattern}' did not match")
    return meta, subject_text


def named_file(sample: Sample, folder: str, subject_text: str | None) -> NamedFile:
    """A `NamedFile` whose subject sort key puts numbers first, in numeric order."""
    entry = NamedFile(sample, folder, subject_text)
    if subject_text is not None:
        subject = sample.meta["subject"]
        entry.subject_key = (0, subject, "") if isinstance(subject, int) else (1, 0, str(subject))
    return entry


def label_files(entries: list[NamedFile], pattern: NamePattern | None) -> list[str]:
    """Set each sample's label (by subject, or else by folder); return the class names."""
    if pattern is not None and pattern.has_subject:
        names: dict[tuple[int, int, str], str] = {}
        for e in entries:
            assert e.subject_key is not None and e.subject_text is not None
            names.setdefault(e.subject_key, e.subject_text)
        keys = sorted(names)
        index = {key: i for i, key in enumerate(keys)}
        for e in entries:
            e.sample.label = index[e.subject_key]  # type: ignore[index]
        return [names[key] for key in keys]
    folders = sorted({e.folder for e in entries})
    index_of = {name: i for i, name in enumerate(folders)}
    for e in entries:
        e.sample.label = index_of[e.folder]
    return folders
