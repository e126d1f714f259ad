"""Loading experiments: shipped templates by name, YAML files, `--set` overrides, and the saved YAML of runs
and checkpoints. Errors name the dotted key and the file.

A shipped experiment is named `TEMPLATE-MODALITY` (e.g. `ntu60-xsub-j`): the template YAML under
`aclnet/configs/` with `data.modality` set. A template may list the streams it offers (`modalities:`) and
give streams their own extra training augmentations (`stream_steps:`, see `load_config`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aclnet import plain_yaml
from aclnet.config.schema import DataConfig, ExperimentConfig
from aclnet.config.tasks import DEFAULT_TASK, registered_tasks
from aclnet.data.pipeline import PRESETS, check_augmentation_steps, insert_augmentations
from aclnet.data.transforms import MODALITIES
from aclnet.errors import InputError
from aclnet.fileio import require_readable

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

def list_configs() -> list[str]:
    """Names of the shipped experiments, `TEMPLATE-MODALITY` for each template and modality."""
    names = []
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        template = plain_yaml.load(path.read_text()) or {}
        modalities = template.get("modalities", list(MODALITIES))
        names += [f"{path.stem}-{m}" for m in modalities]
    return names


def _template_for(name: str) -> tuple[Path, str] | None:
    stem, _, modality = name.rpartition("-")
    path = CONFIG_DIR / f"{stem}.yaml"
    return (path, modality) if stem and path.exists() else None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`a.b=value` items into a nested dict; values are parsed as YAML."""
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=0.05")
        try:
            value = plain_yaml.load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {item!r}: '{part}' was already given a value")
        node[parts[-1]] = value
    return nested


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _with_stream_steps(raw: dict[str, Any], table: object, stream: str, streams: list, template: str) -> dict[str, Any]:
    """The template's `data.pipeline` as an explicit step list with `stream`'s extra steps.

    `table` maps streams to lists of training augmentations (`stream_steps:`); every entry is
    checked, whichever stream is loaded. The pipeline (a preset name or a list) is expanded for
    every stream of the template, the extra steps inserted before its `modality` step.
    """
    example = "{b: [{swap_left_right: {p: 0.5}}]}"
    if not isinstance(table, dict):
        raise InputError(f"{template}: stream_steps must map streams to lists of steps, e.g. {example}; got {table!r}")
    for name, steps in table.items():
        if name not in streams:
            raise InputError(f"{template}: stream_steps: '{name}' is not a stream of this template; streams: {streams}")
        check_augmentation_steps(steps, f"{template}: stream_steps.{name}")
    data = raw.get("data")
    if not isinstance(data, dict):
        return raw  # validation names the problem
    pipeline = data.get("pipeline", DataConfig.model_fields["pipeline"].default)
    if isinstance(pipeline, str):
        if pipeline not in PRESETS:
            raise InputError(f"{template}: data.pipeline: unknown pipeline preset '{pipeline}'; "
                             f"valid: {', '.join(PRESETS)}, or a list of steps")
        steps = PRESETS[pipeline](stream)
    elif isinstance(pipeline, list):
        steps = copy.deepcopy(pipeline)
    else:
        return raw
    data["pipeline"] = insert_augmentations(steps, copy.deepcopy(table.get(stream, [])))
    return raw


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a shipped experiment by name or a YAML file, apply `--set` overrides and validate.

    A template with `stream_steps: {STREAM: [steps]}` gives streams extra training augmentations
    (the release's per-stream Spatial_Flip / Part_Drop): each of its experiments gets `data.pipeline`
    as an explicit step list, the stream's steps inserted before `modality`, so that the resolved
    configuration (saved with runs and checkpoints) holds the steps themselves.
    """
    key = str(name_or_path)
    template = _template_for(key)
    if template is not None:
        path, modality = template
        raw = plain_yaml.load(path.read_text()) or {}
        allowed = raw.pop("modalities", list(MODALITIES))
        stream_steps = raw.pop("stream_steps", None)
        if modality not in allowed:
            raise InputError(f"{key}: modality '{modality}' is not offered by {path.name}; offered: {allowed}")
        raw = _merge(raw, {"name": key, "data": {"modality": modality}})
        if stream_steps is not None:
            raw = _with_stream_steps(raw, stream_steps, modality, allowed, path.name)
        source = f"{path} (experiment {key})"
    elif key.endswith((".yaml", ".yml")):
        path = Path(key)
        try:
            require_readable(path)
        except InputError as exc:
            raise InputError(f"{path}: cannot read configuration ({str(exc).removeprefix(f'{path}: ')})") from None
        try:
            raw = plain_yaml.load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read configuration ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not a text file (not UTF-8 at byte {exc.start})") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise InputError(f"{path}: a configuration must be a mapping")
        raw.setdefault("name", path.stem)
        raw = absolute_paths(raw, path.resolve().parent)
        source = str(path)
    else:
        raise InputError(f"unknown configuration '{key}'; give a YAML file or one of `aclnet configs`")
    if overrides:
        raw = _merge(raw, parse_overrides(overrides))
        source += " with --set " + " ".join(overrides)
    return validate_config(absolute_paths(raw, Path.cwd()), source)


def absolute_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """`raw` with its relative file paths made absolute against `base`: `data.path`, a layout file
    (`data.layout` ending in .yaml, .yml or .json), the readers' path options (`data.options.label_file`,
    `keypoint_dir`, `label_dir`) and `train.init_weights`. An experiment file's paths are taken relative to the
    file's folder, those of `--set` and of the shipped experiments relative to the current folder, so that a
    configuration runs the same from anywhere and a run's config.yaml names its files absolutely."""
    from aclnet.data.formats import PATH_OPTIONS

    raw = copy.deepcopy(raw)

    def resolve(section: Any, key: str, only_files: bool = False) -> None:
        value = section.get(key) if isinstance(section, dict) else None
        if not isinstance(value, str) or not value or (only_files and not value.endswith((".yaml", ".yml", ".json"))):
            return
        path = Path(value).expanduser()
        section[key] = str(path if path.is_absolute() else base / path)

    data = raw.get("data")
    resolve(data, "path")
    resolve(data, "layout", only_files=True)
    options = data.get("options") if isinstance(data, dict) else None
    for key in PATH_OPTIONS:
        resolve(options, key)
    resolve(raw.get("train"), "init_weights")
    return raw


def validate_config(raw: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate a configuration dict: the common sections by the schema, the task's own sections (a retrieval
    task's `protocol:`) by the task's models. Errors name the dotted key and the source."""
    raw = dict(raw)
    tasks = registered_tasks()
    name = raw.get("task", DEFAULT_TASK)
    task = tasks.get(name) if isinstance(name, str) else None  # an unknown task is the schema's error
    models = dict(task.sections) if task else {}
    owned = {key: raw.pop(key) for key in models if key in raw}
    for key in {key for other in tasks.values() for key in other.sections} - set(models):
        if raw.get(key, "") is None:  # saved before sections were the tasks' own, e.g. `protocol: null`
            del raw[key]
    problems: list[str] = []
    config = None
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        problems += _problems(exc)
    sections: dict[str, BaseModel] = {}
    for key, model in models.items():
        if owned.get(key) is None:  # absent: the section's defaults, if it has them
            try:
                sections[key] = model()
            except ValidationError:
                summary = (model.__doc__ or "").strip().splitlines()[0]
                problems.append(f"{key}: task '{name}' needs a {key} section: {summary}")
            continue
        try:
            sections[key] = model.model_validate(owned[key])
        except ValidationError as exc:
            problems += _problems(exc, key)
    if problems or config is None:
        raise InputError(f"{source}: invalid configuration:\n  " + "\n  ".join(problems))
    config._sections = sections
    return config


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error: the dotted key and what is wrong."""
    lines = []
    for err in exc.errors():
        where = ".".join([prefix] * bool(prefix) + [str(p) for p in err["loc"]]) or "(top level)"
        lines.append(f"{where}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}")
    return lines


def config_from_text(text: object, source: str) -> ExperimentConfig:
    """A configuration saved as YAML text (in a run folder or a checkpoint); errors name `source`."""
    if not isinstance(text, str):
        raise InputError(f"{source}: holds no saved configuration")
    try:
        raw = plain_yaml.load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: the saved configuration is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{source}: the saved configuration is not a mapping")
    return validate_config(raw, f"{source} (saved configuration)")


def dump_config(config: ExperimentConfig) -> str:
    """The resolved configuration as YAML (saved with every run and checkpoint)."""
    return yaml.safe_dump(config_as_dict(config), sort_keys=False)


def config_as_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved configuration as plain data, the task's own sections included (what `dump_config` writes)."""
    common = config.model_dump(mode="json")
    owned = {key: section.model_dump(mode="json") for key, section in config.sections.items()}
    ordered = {}
    for key, value in common.items():  # the task's sections after `data`, where runs always had `protocol`
        ordered[key] = value
        if key == "data":
            ordered.update(owned)
    return ordered
