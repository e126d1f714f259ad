"""`aclnet.analysis.tsne`: seeded 2-D embeddings and the t-SNE figure of saved test embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from runs_by_hand import PNG_MAGIC, make_tsne_run, write_embeddings

from aclnet.analysis.tsne import embed_2d, plot_tsne
from aclnet.errors import InputError


@pytest.fixture
def tsne_run(tmp_path):
    return make_tsne_run(tmp_path)


def test_tsne_plot_written_and_errors(tsne_run, tmp_path):
    out = tmp_path / "fig5.png"
    plot_tsne(tsne_run, [1, 5], out, max_points=50)
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 1000
    with pytest.raises(InputError, match="already exists"):
        plot_tsne(tsne_run, [1, 5], out)
    with pytest.raises(InputError, match="epochs available in .*: 1, 5"):
        plot_tsne(tsne_run, [1, 3], tmp_path / "other.png")
    write_embeddings(tsne_run, 7, 1.0, labels=np.repeat(np.arange(3), 20)[::-1].copy())
    with pytest.raises(InputError, match="not of the same samples"):
        plot_tsne(tsne_run, [1, 7], tmp_path / "other.png")
    assert not (tmp_path / "other.png").exists()


def test_tsne_is_seeded_and_separates_clear_clusters():
    labels = np.repeat(np.arange(3), 20)
    features = 10.0 * np.eye(3, 8)[labels] + np.random.default_rng(0).normal(size=(60, 8))
    first, again = embed_2d(features, seed=3), embed_2d(features, seed=3)
    np.testing.assert_array_equal(first, again)
    centres = np.stack([first[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(first[labels == c] - centres[c], axis=1).max() for c in range(3))
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(3, 1)]
    assert gaps.min() > spread  # every class stays apart from the others
