"""t-SNE of the test embeddings a run saved at chosen epochs (`train.save_embeddings_at`), one panel per
epoch, coloured by class, as the paper's Fig. 5."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from aclnet.analysis.per_class import write_figure  # noqa: E402
from aclnet.array_files import read_npz
from aclnet.engine.evaluation import load_scores  # noqa: E402
from aclnet.engine.run_folder import RunFolder  # noqa: E402
from aclnet.errors import InputError  # noqa: E402

MIN_POINTS = 5  # t-SNE needs a perplexity below the number of points
MAX_LEGEND = 20  # more classes than this are shown by colour only


def available_epochs(run_dir: str | Path) -> list[int]:
    """Epochs whose embeddings the run saved, ascending."""
    return RunFolder(run_dir).embedding_epochs()


def load_embeddings(run_dir: str | Path, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) and labels (N,) saved at `epoch`; errors name the file or list the saved epochs."""
    path = RunFolder(run_dir).embeddings(epoch)
    if not path.is_file():
        saved = available_epochs(run_dir)
        listing = ", ".join(map(str, saved)) if saved else "none (set train.save_embeddings_at)"
        raise InputError(f"{path}: no embeddings saved at epoch {epoch}; epochs available in {run_dir}: {listing}")
    arrays = read_npz(path)
    if "features" not in arrays or "labels" not in arrays:
        raise InputError(f"{path}: not an embeddings file: no features and labels (it holds {sorted(arrays)})")
    features, labels = arrays["features"], arrays["labels"]
    if features.ndim != 2 or features.shape[1] < 2 or labels.shape != (features.shape[0],) \
            or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: expected features (N, D >= 2) and integer labels (N,), got "
                         f"{features.shape} and {labels.shape} {labels.dtype}")
    if not np.all(np.isfinite(features)):
        raise InputError(f"{path}: features contain NaN or infinite values")
    if features.shape[0] < MIN_POINTS:
        raise InputError(f"{path}: {features.shape[0]} embeddings; t-SNE needs at least {MIN_POINTS}")
    return features, labels


def _class_names(run_dir: Path) -> list[str] | None:
    """Class names from the run's test scores, when it has them."""
    scores = RunFolder(run_dir).test_scores
    return [str(n) for n in load_scores(scores)["class_names"]] if scores.is_file() else None


def _class_colors(count: int) -> np.ndarray:
    """Distinct RGBA colours: tab20 up to 20 classes, evenly spaced hues beyond."""
    if count <= 20:
        return plt.get_cmap("tab20")(np.arange(count))
    return plt.get_cmap("hsv")(np.linspace(0, 1, count, endpoint=False))


def embed_2d(features: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE coordinates of `features` (perplexity 30, lowered for small sets), seeded."""
    perplexity = min(30.0, (features.shape[0] - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    return tsne.fit_transform(features.astype(np.float64))


def plot_tsne(run_dir: str | Path, epochs: list[int], out_png: str | Path, *, max_points: int = 2000,
              seed: int = 0, force: bool = False) -> Path:
    """One t-SNE panel per epoch of the saved test embeddings, coloured by class; the same random subset
    of at most `max_points` samples in every panel."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a run folder")
    if not epochs:
        raise InputError("give at least one epoch")
    if max_points < MIN_POINTS:
        raise InputError(f"max_points must be at least {MIN_POINTS}, got {max_points}")
    if Path(out_png).exists() and not force:  # refuse before the minutes t-SNE can take
        raise InputError(f"{out_png}: already exists; pass --force to replace it")
    loaded = [load_embeddings(run_dir, epoch) for epoch in epochs]
    if any(not np.array_equal(labels, loaded[0][1]) for _, labels in loaded):
        raise InputError(f"{run_dir}: the epochs' embeddings are not of the same samples (labels differ)")
    labels = loaded[0][1]
    rng = np.random.default_rng(seed)
    subset = np.sort(rng.permutation(len(labels))[:max_points])
    names = _class_names(run_dir)
    classes = np.unique(labels[subset])
    colors = _class_colors(len(classes))
    fig, axes = plt.subplots(1, len(epochs), figsize=(4.2 * len(epochs) + 1.5, 4.4), squeeze=False)
    for ax, epoch, (features, _) in zip(axes[0], epochs, loaded):
        points = embed_2d(features[subset], seed)
        for color, cls in zip(colors, classes):
            mask = labels[subset] == cls
            label = names[cls] if names is not None and cls < len(names) else f"class {cls}"
            ax.scatter(points[mask, 0], points[mask, 1], s=8, color=color, label=label)
        ax.set_title(f"epoch {epoch}")
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= MAX_LEGEND:
        axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, markerscale=1.5, frameon=False)
    fig.suptitle(f"t-SNE of test embeddings ({len(subset)} samples, {len(classes)} classes): {run_dir.name}")
    return write_figure(fig, out_png, force=force)
