"""`aclnet report`: one self-contained HTML page about a finished run.

The page holds the run's configuration and test result (task-aware), its training curves, the
confusion matrix (action), the Motion Families as a table and a graph, the comparison with a baseline
run (per-class differences and difficulty levels), the t-SNE of saved embeddings and animated
skeletons of a few test samples with their true and predicted labels. Figures are embedded as
base64 data URIs and the styles are inline, so the file opens anywhere without a network; its
Content-Security-Policy forbids every load but `data:` images and the one inline script, which only
records in the page whether every figure was displayed (`#render-check`, read by the browser test).

Each piece the run lacks (no inter loss, no embeddings, data not reachable, ...) is left out with a
short note in the page; only bad input (not a run folder, no test report, a baseline of other
classes) is refused with an InputError.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import html
import io
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from aclnet import plain_yaml  # noqa: E402
from aclnet.config import validate_config  # noqa: E402
from aclnet.engine.evaluation import load_scores  # noqa: E402
from aclnet.engine.run_folder import RunFolder  # noqa: E402
from aclnet.errors import InputError  # noqa: E402
from aclnet.fileio import atomic_write_bytes  # noqa: E402
from aclnet.tasks.base import Task, metric_keys, metric_tables  # noqa: E402
from aclnet.tasks.registry import make_task  # noqa: E402

DEFAULT_SAMPLES = 4  # animated test samples
DEFAULT_TSNE_POINTS = 500  # samples per t-SNE panel
GIF_FRAMES = 24  # frames per animation (drawing them is the slow part)
MAX_TSNE_PANELS = 3  # first, middle and last saved epoch
MAX_LABELLED_CLASSES = 40  # more classes than this are shown by index in figures

# Records whether each figure was displayed (and any blocked load or script error) in #render-check;
# the page's CSP allows this script by its hash and nothing else.
_CHECK_SCRIPT = (
    "(function(){var problems=[];"
    "document.addEventListener('securitypolicyviolation',function(e){"
    "problems.push('blocked '+e.violatedDirective+' '+e.blockedURI);});"
    "window.addEventListener('error',function(e){"
    "problems.push('error '+(e.message||(e.target&&e.target.tagName)||'?'));},true);"
    "window.addEventListener('load',function(){"
    "var images=document.images,shown=0;"
    "for(var i=0;i<images.length;i++){if(images[i].complete&&images[i].naturalWidth>0){shown++;}}"
    "var el=document.getElementById('render-check');"
    "el.setAttribute('data-images',String(images.length));"
    "el.setAttribute('data-displayed',String(shown));"
    "el.setAttribute('data-problems',problems.join('; '));"
    "el.textContent='Figures displayed: '+shown+' of '+images.length"
    "+(problems.length?'; problems: '+problems.join('; '):'')+'.';});})();"
)
_CHECK_HASH = base64.b64encode(hashlib.sha256(_CHECK_SCRIPT.encode()).digest()).decode()
CSP = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{_CHECK_HASH}'"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1150px; padding: 0 24px 40px; color: #1d1d1f; line-height: 1.45; }
h1 { margin: 24px 0 4px; font-size: 1.7em; }
h2 { margin-top: 34px; padding-bottom: 4px; border-bottom: 2px solid #d8dde6; font-size: 1.3em; }
h3 { margin: 18px 0 6px; font-size: 1.05em; }
.subtitle { color: #5a6270; margin: 0 0 12px; }
nav { background: #f3f5f9; padding: 8px 12px; border-radius: 6px; font-size: 0.92em; }
nav a { margin-right: 14px; color: #2357a5; text-decoration: none; white-space: nowrap; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.9em; }
th, td { border: 1px solid #d8dde6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.mean { font-weight: 600; }
.pos { color: #17803d; } .neg { color: #b42318; }
.note { color: #6b5500; background: #fff8db; border-left: 4px solid #e0b400; padding: 6px 10px;
        margin: 8px 0; font-size: 0.92em; }
figure { margin: 10px 0 16px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e7ec; }
figcaption { color: #5a6270; font-size: 0.88em; margin-top: 4px; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
.gallery figure { width: 262px; margin: 0; }
.gallery figure img { width: 260px; }
.correct { color: #17803d; font-weight: 600; } .wrong { color: #b42318; font-weight: 600; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.82em; }
details { margin: 8px 0; }
footer { margin-top: 36px; color: #5a6270; font-size: 0.85em; border-top: 1px solid #d8dde6; padding-top: 8px; }
"""


class Skip(Exception):
    """A section the run cannot have; its message becomes the note in the page."""


@dataclass
class RunInfo:
    """What the report reads of one run folder."""

    folder: RunFolder
    report: dict[str, Any]
    config_text: str | None
    config: dict[str, Any]
    scores: dict[str, np.ndarray] | None = None
    scores_problem: str | None = None

    @property
    def name(self) -> str:
        return self.folder.path.resolve().name

    task: Task | None = None
    """The run's task object (None when its configuration is not readable here)."""

    @property
    def task_name(self) -> str:
        return str(self.report.get("task") or self.config.get("task") or "?")

    def has(self, section: str) -> bool:
        """Whether the run's task has the report section `section` (`aclnet.tasks.base.REPORT_SECTIONS`)."""
        return self.task is not None and section in self.task.report_sections

    def get(self, dotted: str, default: Any = None) -> Any:
        """A configuration entry by dotted key, or `default` where the path is missing."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


@dataclass
class Section:
    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)


# ---- reading runs ------------------------------------------------------------------------------------

def read_run(path: str | Path, what: str = "run") -> RunInfo:
    """A finished run folder: its test report, configuration and (when present) test scores."""
    folder = RunFolder(path)
    if not folder.path.is_dir():
        raise InputError(f"{folder.path}: not a run folder ({what} must be a folder written by `aclnet train`)")
    if not folder.config.is_file() and not folder.test_report.is_file():
        raise InputError(f"{folder.path}: not a run folder (no {folder.config.name} or {folder.test_report.name})")
    if not folder.test_report.is_file():
        raise InputError(f"{folder.path}: no {folder.test_report.name}; the run was not tested (did it finish?)")
    report = folder.read_report()
    if not isinstance(report, dict):
        raise InputError(f"{folder.test_report}: the test report is not a mapping")
    config_text, config = None, {}
    if folder.config.is_file():
        try:
            config_text = folder.config.read_text()
            loaded = plain_yaml.load(config_text)
            config = loaded if isinstance(loaded, dict) else {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            config = {}
    info = RunInfo(folder, report, config_text, config, task=_task_of(config, folder))
    if folder.test_scores.is_file():
        try:
            info.scores = load_scores(folder.test_scores)
        except InputError as exc:
            info.scores_problem = str(exc)
    return info


def _task_of(config: dict[str, Any], folder: RunFolder) -> Task | None:
    """The task object of a run's configuration, or None when it does not validate here."""
    try:
        return make_task(validate_config(config, str(folder.config)))
    except InputError:
        return None


def check_baseline(run: RunInfo, baseline: RunInfo) -> None:
    """Refuse a baseline that cannot be compared: another task, other classes or other test samples."""
    if baseline.folder.path.resolve() == run.folder.path.resolve():
        raise InputError(f"--baseline {baseline.folder.path}: is the reported run itself")
    if baseline.task_name != run.task_name:
        raise InputError(f"--baseline {baseline.folder.path}: a {baseline.task_name} run cannot be compared with "
                         f"this {run.task_name} run")
    if run.scores is None or baseline.scores is None:
        return
    names, base_names = run.scores["class_names"], baseline.scores["class_names"]
    if not np.array_equal(names, base_names):
        raise InputError(f"--baseline {baseline.folder.path}: its class list ({len(base_names)} classes) differs "
                         f"from this run's ({len(names)} classes); compare runs of the same dataset and split")
    if not np.array_equal(run.scores["sample_ids"], baseline.scores["sample_ids"]) \
            or not np.array_equal(run.scores["labels"], baseline.scores["labels"]):
        raise InputError(f"--baseline {baseline.folder.path}: its test samples differ from this run's; "
                         "compare runs tested on the same samples")


# ---- HTML helpers ------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    if isinstance(value, float) and math.isnan(value):
        return "&ndash;"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    """A table; columns in `numeric` are right-aligned and numbers are formatted with two decimals.
    A cell may be a (text, css class) pair; text given as such is escaped, numbers are formatted."""
    numeric = numeric or set()

    def cell(tag: str, index: int, value: Any) -> str:
        css = ["num"] if index in numeric else []
        if isinstance(value, tuple):
            value, extra = value
            css.append(extra)
        attr = f' class="{" ".join(css)}"' if css else ""
        return f"<{tag}{attr}>{_num(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _figure_html(data: bytes, mime: str, alt: str, caption: str = "", caption_html: str | None = None) -> str:
    cap = caption_html if caption_html is not None else _e(caption)
    cap = f"<figcaption>{cap}</figcaption>" if cap else ""
    return f'<figure><img src="{_data_uri(data, mime)}" alt="{_e(alt)}">{cap}</figure>'


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes; closes it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _class_labels(names: list[str]) -> list[str]:
    """Names for figure ticks: the names themselves, or indices when there are too many."""
    return names if len(names) <= MAX_LABELLED_CLASSES else [str(i) for i in range(len(names))]


# ---- sections ----------------------------------------------------------------------------------------

_CONFIG_ROWS = [
    ("experiment", "name"), ("task", "task"), ("data format", "data.format"), ("data path", "data.path"),
    ("modality", "data.modality"), ("clip length", "data.clip_len"), ("test clips", "data.test_clips"),
    ("test split", "data.test_split"), ("backbone", "model.backbone"), ("preset", "model.preset"),
    ("model options", "model.options"), ("embedding", "model.embedding_input"),
    ("optimizer", "optim.optimizer"), ("learning rate", "optim.lr"), ("batch size", "optim.batch_size"),
    ("epochs", "optim.epochs"), ("weight decay", "optim.weight_decay"), ("warm-up epochs", "optim.warmup_epochs"),
    ("seed", "train.seed"), ("checkpoint selection", "train.select_on"),
    ("steps per epoch (cap)", "train.max_steps_per_epoch"),
]


def _losses(run: RunInfo) -> str:
    parts = []
    if run.get("loss.ce"):
        parts.append("cross-entropy")
    resolved = run.report.get("loss_constants") or {}  # what the run used (runs before it was saved: configured)
    inter = {**(run.get("loss.inter", {}) or {}), **{k: v for k, v in resolved.items() if k != "memory_size"}}
    if inter.get("enabled"):
        parts.append(f"inter (weight {inter.get('weight')}, K {inter.get('k')}, "
                     f"n_tau {inter.get('overlap_threshold')}, from epoch {inter.get('start_epoch')}, "
                     f"{inter.get('family_mode')} families, "
                     f"FAT {'on' if inter.get('fat') else 'off'})")
    intra = {**(run.get("loss.intra", {}) or {}), **{k: v for k, v in resolved.items() if k == "memory_size"}}
    if intra.get("enabled"):
        parts.append(f"intra (weight {intra.get('weight')}, tau {intra.get('tau')}, memory {intra.get('memory_size')})")
    supcon = run.get("loss.supcon", {}) or {}
    if supcon.get("enabled"):
        parts.append(f"SupCon (weight {supcon.get('weight')})")
    if run.get("loss.small_dataset_scaling"):
        parts.append("small-dataset scaling")
    return ", ".join(parts) or "?"


def section_config(run: RunInfo) -> Section:
    section = Section("configuration", "Configuration")
    if not run.config:
        section.parts.append(_note(f"{run.folder.config.name} is missing or unreadable; only the test report "
                                   "is shown."))
    else:
        rows = []
        for label, key in _CONFIG_ROWS:
            value = run.get(key)
            if value is None or value == {}:
                continue
            if isinstance(value, (dict, list)):
                value = yaml.safe_dump(value, default_flow_style=True).strip()
            rows.append([label, str(value)])  # settings exactly as configured (lr 0.025, not 0.03)
        rows.insert(next((i for i, r in enumerate(rows) if r[0] == "optimizer"), len(rows)), ["losses", _losses(run)])
        section.parts.append(_table(["setting", "value"], rows))
    test = [[label, run.report[key]] for label, key in (
        ("tested checkpoint", "checkpoint"), ("chosen on", "selection"), ("epoch", "selected_epoch"),
        ("test samples", "samples"), ("test sequences", "sequences"), ("clips per sample", "clips"))
        if key in run.report]
    if test:
        section.parts.append("<h3>Test</h3>" + _table(["item", "value"], test))
    if run.config_text:
        section.parts.append(f"<details><summary>Full configuration ({_e(run.folder.config.name)})</summary>"
                             f"<pre>{_e(run.config_text)}</pre></details>")
    return section


def section_result(run: RunInfo) -> Section:
    section = Section("result", "Test result")
    tables = run.task.result_tables(run.report) if run.task is not None else metric_tables(run.report)
    for table in tables:
        if table.note is not None and not table.rows:
            section.parts.append(_note(table.note))
            continue
        title = f"<h3>{_e(table.title)}</h3>" if len(tables) > 1 else ""
        section.parts.append(title + _table(table.header, table.rows, table.numeric))
    return section


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats (NaN for empty or non-numeric cells)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise Skip(f"{path.name} has no epochs yet.")

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else float("nan")
        except ValueError:
            return float("nan")

    return {column: np.array([number(row.get(column)) for row in rows]) for column in rows[0]}


def _curve_panels(columns: dict[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """Panels of the training curves: loss terms together, the learning rate, the validation metrics
    together, then one panel per diagnostic column (their scales differ)."""
    present = [c for c, v in columns.items() if c != "epoch" and np.isfinite(v).any()]
    losses = [c for c in present if c.startswith("train_")]
    val = [c for c in present if c.startswith("val_")]
    lr = [c for c in present if c == "lr"]
    diagnostics = [c for c in present if c not in {*losses, *val, *lr}]
    panels = [("loss terms (training)", losses), ("learning rate", lr), ("validation metrics", val)]
    return [(title, cols) for title, cols in panels if cols] + [(c, [c]) for c in diagnostics]


def section_curves(run: RunInfo) -> Section:
    section = Section("curves", "Training curves")
    if not run.folder.metrics.is_file():
        raise Skip(f"No {run.folder.metrics.name} in the run folder.")
    columns = read_metrics(run.folder.metrics)
    epochs = columns.get("epoch")
    if epochs is None or not np.isfinite(epochs).all():
        epochs = np.arange(1, len(next(iter(columns.values()))) + 1, dtype=float)
    panels = _curve_panels(columns)
    if not panels:
        raise Skip(f"{run.folder.metrics.name} holds no values.")
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(13, 3.1 * nrows), squeeze=False)
    marker = "o" if len(epochs) <= 40 else None
    for ax, (title, cols) in zip(axes.flat, panels):
        for column in cols:
            values = columns[column]
            ok = np.isfinite(values)
            ax.plot(epochs[ok], values[ok], marker=marker, ms=3, label=column)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        shown = np.concatenate([epochs[np.isfinite(columns[c])] for c in cols])
        if shown.size and shown.min() == shown.max():  # a single epoch: keep integer ticks around it
            ax.set_xlim(shown.min() - 1, shown.max() + 1)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if len(cols) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    names = ", ".join(c for _, cols in panels for c in cols)
    section.parts.append(_figure_html(_png(fig), "image/png", "training curves",
                                      f"{len(epochs)} epochs from {run.folder.metrics.name}: {names}"))
    return section


def section_confusion(run: RunInfo) -> Section:
    section = Section("confusion", "Confusion matrix")
    if not run.has("confusion"):
        raise Skip(f"A {run.task_name} run has no confusion matrix (it needs per-sample class scores).")
    matrix = np.asarray(run.report.get("confusion_matrix") or [], dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise Skip("The test report holds no confusion matrix.")
    count = matrix.shape[0]
    names = ([str(n) for n in run.scores["class_names"]] if run.scores is not None
             and len(run.scores["class_names"]) == count else [str(i) for i in range(count)])
    totals = matrix.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, matrix / totals, 0.0)
    size = min(14.0, max(4.5, 0.28 * count + 2.5))
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    labels = _class_labels(names)
    if count <= MAX_LABELLED_CLASSES * 2:
        ticks = np.arange(count)
        fontsize = max(4, min(9, 360 // count))
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=90, fontsize=fontsize)
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=fontsize)
    if count <= 15:
        for i in range(count):
            for j in range(count):
                if matrix[i, j]:
                    ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix (rows normalised; {int(matrix.sum())} test samples)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    caption = "Rows: true class; columns: predicted class" + (
        "; classes by index (see the families table for names)" if labels is not names else "")
    section.parts.append(_figure_html(_png(fig), "image/png", "confusion matrix", caption))
    return section


def family_graph(rows: list[dict[str, Any]]) -> Figure:
    """Classes as nodes on a circle, an arrow from each class to each member of its Motion Family,
    its width and opacity growing with the affinity weight; node colour by family size."""
    count = len(rows)
    angles = np.pi / 2 - 2 * np.pi * np.arange(count) / count
    xy = np.stack([np.cos(angles), np.sin(angles)], 1)
    weights = [m["affinity"] for row in rows for m in row["members"]]
    top = max([w for w in weights if np.isfinite(w)] or [1.0]) or 1.0
    fig, ax = plt.subplots(figsize=(8.5, 8.5))
    for row in rows:
        for member in row["members"]:
            strength = max(0.05, min(1.0, float(member["affinity"]) / top)) if np.isfinite(member["affinity"]) else 0.5
            ax.add_patch(FancyArrowPatch(
                tuple(xy[row["class"]]), tuple(xy[member["class"]]), arrowstyle="-|>", mutation_scale=8,
                connectionstyle="arc3,rad=0.12", lw=0.4 + 2.6 * strength, alpha=0.15 + 0.6 * strength,
                color="tab:blue", shrinkA=7, shrinkB=7))
    sizes = np.array([row["size"] for row in rows])
    nodes = ax.scatter(xy[:, 0], xy[:, 1], s=110 if count <= 60 else 40, c=sizes, cmap="viridis", zorder=3,
                       edgecolors="black", linewidths=0.5)
    labels = _class_labels([row["name"] or str(row["class"]) for row in rows])
    fontsize = max(5, min(8, 500 // count))
    for (x, y), label in zip(xy, labels):  # upright labels: a rotated 6 reads as a 9, a 7 as an L
        ax.text(1.09 * x, 1.09 * y, label[:36], fontsize=fontsize, ha="left" if x >= 0 else "right",
                va="bottom" if y > 0.5 else "top" if y < -0.5 else "center")
    fig.colorbar(nodes, ax=ax, orientation="horizontal", fraction=0.035, pad=0.02, label="family size")
    ax.set_xlim(-2.4, 2.4)  # room for upright labels left and right of the circle
    ax.set_ylim(-1.75, 1.75)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def section_families(run: RunInfo) -> Section:
    from aclnet.analysis.families import family_table

    section = Section("families", "Motion Families")
    if run.config and not run.get("loss.inter.enabled", False):
        raise Skip("The run had no inter loss (loss.inter.enabled is false), so it has no Motion Families.")
    try:
        rows = family_table(run.folder.path)
    except InputError as exc:
        raise Skip(f"No Motion Families to show: {exc}") from exc
    table_rows = [[row["name"], row["size"], (f"{row['temperature']:.3f}", "num"),
                   ", ".join(f"{m['name']} {m['affinity']:.2f}" for m in row["members"]) or "(empty)"]
                  for row in rows]
    table = _table(["class", "family size", "temperature", "family members (affinity weight)"], table_rows, {1})
    section.parts.append(_figure_html(_png(family_graph(rows)), "image/png", "Motion Family graph",
                                      f"An arrow from each class to each member of its Motion Family; width and "
                                      f"opacity grow with the affinity weight, node colour shows the family size "
                                      f"({len(rows)} classes, mean family size "
                                      f"{np.mean([r['size'] for r in rows]):.2f})."))
    section.parts.append(table)
    return section


def _metric_keys(run: RunInfo, baseline: RunInfo) -> list[str]:
    theirs = set(metric_keys(baseline.report))
    return [k for k in metric_keys(run.report) if k in theirs]


def section_baseline(run: RunInfo, baseline: RunInfo | None) -> Section:
    from aclnet.analysis.per_class import (
        difficulty_levels,
        per_class_difference,
        plot_per_class_difference,
    )

    section = Section("baseline", "Comparison with the baseline")
    if baseline is None:
        raise Skip("No baseline given (pass --baseline OTHER_RUN to compare per class).")
    section.parts.append(f"<p>Baseline: <b>{_e(baseline.name)}</b> ({_e(baseline.folder.path)}); "
                         f"this run: <b>{_e(run.name)}</b>.</p>")
    rows = []
    for key in _metric_keys(run, baseline):
        diff = float(run.report[key]) - float(baseline.report[key])
        rows.append([key, float(baseline.report[key]), float(run.report[key]),
                     (diff, "pos" if diff > 0 else "neg" if diff < 0 else "")])
    if rows:
        section.parts.append("<h3>Test metrics</h3>" + _table(["metric", "baseline", "this run", "difference"],
                                                              rows, {1, 2, 3}))
    if not run.has("per_class"):
        section.parts.append(_note(f"Per-class comparison needs class scores; a {run.task_name} run has none."))
        return section
    if run.scores is None or baseline.scores is None:
        missing = [r.folder.test_scores for r in (run, baseline) if r.scores is None]
        problems = [r.scores_problem for r in (run, baseline) if r.scores_problem]
        section.parts.append(_note("Per-class comparison skipped: " + (
            "; ".join(problems) if problems else f"no {', '.join(map(str, missing))}") + "."))
        return section
    names, base_acc, new_acc = per_class_difference(baseline.folder.test_scores, run.folder.test_scores)
    with tempfile.TemporaryDirectory(prefix="aclnet-report-") as tmp:
        png = plot_per_class_difference(names, base_acc, new_acc, Path(tmp) / "per_class.png",
                                        base_label=baseline.name, new_label=run.name)
        section.parts.append("<h3>Per-class accuracy difference</h3>" + _figure_html(
            png.read_bytes(), "image/png", "per-class accuracy difference",
            "Top-1 accuracy of this run minus the baseline's, per class, sorted from the largest gain."))
    try:
        levels = difficulty_levels(base_acc, new_acc, names)
    except InputError as exc:
        section.parts.append(_note(f"Difficulty levels skipped: {exc}."))
        return section
    level_rows = [[f"{row['first']}-{row['last']}", len(row["classes"]), row["base"], row["new"],
                   (row["difference"], "pos" if row["difference"] > 0 else "neg" if row["difference"] < 0 else ""),
                   ", ".join(row["classes"])] for row in levels]
    section.parts.append(
        "<h3>Accuracy by difficulty level</h3><p>Classes sorted by the baseline's accuracy (hardest first) "
        "in groups of 1/12, 1/6, 1/4 and 1/2 of the classes; mean top-1 accuracy (%) per group.</p>"
        + _table(["classes", "count", "baseline", "this run", "difference", "members"], level_rows, {1, 2, 3, 4}))
    return section


def _spread(epochs: list[int]) -> list[int]:
    """At most MAX_TSNE_PANELS epochs: first, middle, last."""
    if len(epochs) <= MAX_TSNE_PANELS:
        return epochs
    return [epochs[0], epochs[len(epochs) // 2], epochs[-1]]


def section_tsne(run: RunInfo, max_points: int) -> Section:
    from aclnet.analysis.tsne import plot_tsne

    section = Section("tsne", "t-SNE of the test embeddings")
    saved = run.folder.embedding_epochs()
    if not saved:
        raise Skip("The run saved no embeddings (set train.save_embeddings_at to get them).")
    if max_points <= 0:
        raise Skip("t-SNE skipped (--tsne-points 0).")
    epochs = _spread(saved)
    with tempfile.TemporaryDirectory(prefix="aclnet-report-") as tmp:
        try:
            # One thread: sklearn's OpenMP threads slow t-SNE down tenfold on a busy machine, and a
            # few hundred points take seconds on one core.
            with threadpool_limits(limits=1):
                png = plot_tsne(run.folder.path, epochs, Path(tmp) / "tsne.png", max_points=max(5, max_points),
                                seed=0)
        except InputError as exc:
            raise Skip(f"t-SNE skipped: {exc}") from exc
        shown = ", ".join(map(str, epochs))
        section.parts.append(_figure_html(png.read_bytes(), "image/png", "t-SNE of test embeddings",
                                          f"Epochs {shown} (saved: {', '.join(map(str, saved))}); at most "
                                          f"{max_points} samples, the same in every panel."))
    return section


def pick_samples(labels: np.ndarray, predictions: np.ndarray, count: int) -> list[int]:
    """Indices of up to `count` samples: half of them wrongly classified when there are any, the rest
    correct (filled from the other kind when one runs short), spread over the classes, in test order."""
    wrong = [i for i in range(len(labels)) if labels[i] != predictions[i]]
    right = [i for i in range(len(labels)) if labels[i] == predictions[i]]

    def spread(pool: list[int], n: int) -> list[int]:
        chosen: list[int] = []
        seen: set[int] = set()
        for i in pool:  # one per class first, then the rest in order
            if len(chosen) < n and int(labels[i]) not in seen:
                chosen.append(i)
                seen.add(int(labels[i]))
        chosen += [i for i in pool if i not in chosen][: n - len(chosen)]
        return chosen

    n_wrong = min(len(wrong), count // 2)
    n_right = min(len(right), count - n_wrong)
    n_wrong = min(len(wrong), count - n_right)
    return sorted(spread(wrong, n_wrong) + spread(right, n_right))


def _test_samples(run: RunInfo) -> tuple[dict[str, Any], Any]:
    """The run's test samples by id and the skeleton layout, from its configuration's data."""
    if run.task is None:
        raise Skip(f"Animations skipped: no readable {run.folder.config.name} to find the test data.")
    try:
        data = run.task.load_data(for_training=False)
    except (InputError, OSError, ValueError, KeyError) as exc:
        raise Skip(f"Animations skipped: the run's test data is not reachable here ({exc}).") from exc
    return {s.sample_id: s for s in data.test}, data.layout


def section_animations(run: RunInfo, count: int, frames: int = GIF_FRAMES) -> Section:
    from aclnet.analysis.animation import animate_sample

    section = Section("samples", "Test samples")
    if count <= 0:
        raise Skip("Animations skipped (--samples 0).")
    if not run.has("samples"):
        raise Skip(f"Animations with predictions need per-sample class scores; a {run.task_name} run has none.")
    if run.scores is None:
        raise Skip(run.scores_problem or f"Animations skipped: no {run.folder.test_scores.name} in the run folder.")
    scores = run.scores
    labels, predictions = scores["labels"].astype(int), scores["scores"].argmax(1)
    names = [str(n) for n in scores["class_names"]]
    by_id, layout = _test_samples(run)
    reachable = [i for i, sid in enumerate(scores["sample_ids"]) if str(sid) in by_id]
    if not reachable:
        raise Skip("Animations skipped: none of the scored test samples is in the run's test data.")
    chosen = [reachable[i] for i in pick_samples(labels[reachable], predictions[reachable], count)]
    items = []
    with tempfile.TemporaryDirectory(prefix="aclnet-report-") as tmp:
        for index in chosen:
            sample_id = str(scores["sample_ids"][index])
            out = Path(tmp) / f"sample{index}.gif"
            animate_sample(by_id[sample_id], layout, out, fps=10, max_frames=max(1, frames))
            ok = labels[index] == predictions[index]
            caption = (f"<b>{_e(sample_id)}</b><br>true: {_e(names[labels[index]])}<br>"
                       f"predicted: {_e(names[predictions[index]])}<br>"
                       f'<span class="{"correct" if ok else "wrong"}">{"correct" if ok else "wrong"}</span>')
            items.append(_figure_html(out.read_bytes(), "image/gif", f"skeleton of {sample_id}",
                                      caption_html=caption))
    wrong = int(sum(labels[i] != predictions[i] for i in chosen))
    section.parts.append(f"<p>{len(chosen)} of {len(labels)} test samples ({len(chosen) - wrong} correct, "
                         f"{wrong} wrong), at most {max(1, frames)} frames each.</p>")
    section.parts.append('<div class="gallery">' + "".join(items) + "</div>")
    return section


# ---- the page ----------------------------------------------------------------------------------------

def _guarded(anchor: str, title: str, build: Callable[[], Section]) -> Section:
    """A section, or the same section holding a note when the run lacks it (or it fails to draw)."""
    try:
        return build()
    except Skip as exc:
        return Section(anchor, title, [_note(str(exc))])
    except Exception as exc:  # noqa: BLE001 - one broken piece must not cost the whole report
        return Section(anchor, title, [_note(f"This section could not be built: {type(exc).__name__}: {exc}")])
    finally:
        plt.close("all")


def build_report(run_dir: str | Path, *, baseline: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
                 tsne_points: int = DEFAULT_TSNE_POINTS, gif_frames: int = GIF_FRAMES) -> str:
    """The report page of a finished run as HTML text (see the module docstring): `samples` animated test
    samples of at most `gif_frames` frames, t-SNE of at most `tsne_points` samples (0: none)."""
    from aclnet import __version__

    run = read_run(run_dir)
    base = read_run(baseline, "--baseline") if baseline is not None else None
    if base is not None:
        check_baseline(run, base)
    sections = [
        _guarded("configuration", "Configuration", lambda: section_config(run)),
        _guarded("result", "Test result", lambda: section_result(run)),
        _guarded("curves", "Training curves", lambda: section_curves(run)),
        _guarded("confusion", "Confusion matrix", lambda: section_confusion(run)),
        _guarded("families", "Motion Families", lambda: section_families(run)),
        _guarded("baseline", "Comparison with the baseline", lambda: section_baseline(run, base)),
        _guarded("tsne", "t-SNE of the test embeddings", lambda: section_tsne(run, tsne_points)),
        _guarded("samples", "Test samples", lambda: section_animations(run, samples, gif_frames)),
    ]
    title = f"aclnet report: {run.name}"
    nav = "".join(f'<a href="#{s.anchor}">{_e(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{_e(s.title)}</h2>{"".join(s.parts)}</section>' for s in sections)
    subtitle = f"{_e(run.task_name)} run in {_e(run.folder.path.resolve())}"
    if base is not None:
        subtitle += f"; baseline {_e(base.folder.path.resolve())}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style><script>{_CHECK_SCRIPT}</script></head>\n<body>"
        f"<h1>{_e(title)}</h1><p class=\"subtitle\">{subtitle}</p><nav>{nav}</nav>\n{body}\n"
        f"<footer>Written by aclnet {_e(__version__)} <code>aclnet report</code>. "
        '<span id="render-check">Figures not checked (the check needs JavaScript).</span></footer>'
        "</body></html>\n"
    )


def write_report(run_dir: str | Path, out: str | Path, *, baseline: str | Path | None = None, force: bool = False,
                 samples: int = DEFAULT_SAMPLES, tsne_points: int = DEFAULT_TSNE_POINTS,
                 gif_frames: int = GIF_FRAMES) -> Path:
    """Write the report page to `out` atomically; an existing file is replaced only with `force`."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the report's file name, e.g. {out / 'report.html'}")
    if out.exists() and not force:  # refuse before the seconds the figures take
        raise InputError(f"{out}: already exists; pass --force to replace it")
    page = build_report(run_dir, baseline=baseline, samples=samples, tsne_points=tsne_points, gif_frames=gif_frames)
    atomic_write_bytes(out, page.encode())
    return out


def cmd_report(args: argparse.Namespace) -> None:
    """Write the HTML report of a run."""
    if args.samples < 0 or args.tsne_points < 0 or args.frames < 1:
        raise InputError("--samples and --tsne-points must be >= 0 and --frames >= 1")
    out = write_report(args.run_dir, args.out, baseline=args.baseline, force=args.force, samples=args.samples,
                       tsne_points=args.tsne_points, gif_frames=args.frames)
    print(f"wrote {out}")


def add_report_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `report` to the main parser's subcommands; returns its parser."""
    p = subparsers.add_parser("report", help="one self-contained HTML page about a finished run",
                              description="Write one HTML file (figures embedded, no network needed) with the run's "
                                          "configuration, test result, training curves, confusion matrix, Motion "
                                          "Families, t-SNE, animated test samples and, with --baseline, the per-class "
                                          "comparison.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (written by aclnet train)")
    p.add_argument("--baseline", metavar="OTHER_RUN", help="a run of the same task and classes to compare with")
    p.add_argument("--out", required=True, metavar="REPORT.html", help="where to write the page")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"animated test samples (default {DEFAULT_SAMPLES}; 0: none)")
    p.add_argument("--tsne-points", type=int, default=DEFAULT_TSNE_POINTS,
                   help=f"samples per t-SNE panel (default {DEFAULT_TSNE_POINTS}; 0: no t-SNE)")
    p.add_argument("--frames", type=int, default=GIF_FRAMES,
                   help=f"frames per animated sample (default {GIF_FRAMES})")
    p.set_defaults(run=cmd_report)
    return p
