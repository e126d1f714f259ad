"""Draw a sample's skeleton as an animated GIF with the layout's bones, to check data by eye."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from aclnet.data.sample import Sample  # noqa: E402
from aclnet.skeleton import Layout  # noqa: E402


def animate_sample(sample: Sample, layout: Layout, out: Path, *, fps: int = 15, max_frames: int = 150,
                   class_name: str | None = None) -> None:
    """Write a GIF of every person of `sample`, joints as dots and bones as lines; the title names the sample,
    its class (when given) and the frame."""
    xy = sample.keypoint[..., :2]  # (M, T, V, 2): 3D data is viewed from the front
    frames = np.linspace(0, xy.shape[1] - 1, min(max_frames, xy.shape[1])).astype(int)
    present = np.any(xy != 0, axis=-1)
    valid = xy[present]
    lo, hi = (valid.min(0), valid.max(0)) if valid.size else (np.zeros(2), np.ones(2))
    pad = 0.1 * float(max(hi - lo)) + 1e-6
    flip_y = sample.score is not None  # image coordinates grow downwards
    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    colors = plt.get_cmap("tab10").colors

    def draw(t: int) -> None:
        ax.clear()
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim((hi[1] + pad, lo[1] - pad) if flip_y else (lo[1] - pad, hi[1] + pad))
        ax.set_aspect("equal")
        label = f" ({class_name})" if class_name else ""
        ax.set_title(f"{sample.sample_id}{label}  frame {t}", fontsize=8)
        for m in range(xy.shape[0]):
            pts, ok = xy[m, t], present[m, t]
            for a, b in layout.edges:
                if ok[a] and ok[b]:
                    ax.plot(pts[[a, b], 0], pts[[a, b], 1], color=colors[m % 10], lw=2)
            ax.scatter(pts[ok, 0], pts[ok, 1], s=8, color="black", zorder=3)

    animation = FuncAnimation(fig, draw, frames=frames, interval=1000 / fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(out), writer=PillowWriter(fps=fps))
    plt.close(fig)
