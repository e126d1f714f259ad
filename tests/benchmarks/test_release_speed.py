"""The comparison with the authors' release (benchmarks/release_speed.py): it skips cleanly without a checkout;
with one (ACLNET_RELEASE), the release's losses, families and pipeline agree with ours. Tiny counts, no timing."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

BENCHMARK = "release_speed"  # the `suite` fixture (tests/conftest.py) imports benchmarks/release_speed.py


@pytest.fixture(scope="module")
def release(suite: ModuleType) -> SimpleNamespace:
    """The release's losses and pipeline, from the checkout that ACLNET_RELEASE names."""
    root = suite.release_root(os.environ.get("ACLNET_RELEASE"))
    if root is None:
        pytest.skip("ACLNET_RELEASE does not name a checkout of github.com/worker1h/ACLNet")
    return suite.load_release(root)


def test_skips_with_status_0_without_a_checkout(suite: ModuleType, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ACLNET_RELEASE", raising=False)
    suite.main([])
    assert capsys.readouterr().out.startswith("skipped: no release checkout")
    suite.main(["--release", str(tmp_path)])
    assert capsys.readouterr().out.startswith(f"skipped: {tmp_path} lacks")


def test_losses_agree_with_the_release(suite: ModuleType, release: SimpleNamespace) -> None:
    slow, fast, difference = suite.loss_step(release, 64, 2, 2)  # asserts the families and losses agree
    assert slow > 0 and fast > 0 and difference < 1e-4


def test_families_agree_with_the_release(suite: ModuleType, release: SimpleNamespace) -> None:
    slow, fast = suite.rebuild(release, 60, 1, 1)  # asserts the families agree
    assert slow > 0 and fast > 0


def test_pipeline_agrees_with_the_release(suite: ModuleType, release: SimpleNamespace) -> None:
    slow, fast, difference = suite.pipeline_rates(release, suite.make_samples(4), 1)
    assert slow > 0 and fast > 0 and difference < 1e-4
