"""`aclnet.tasks.components`: what every task builds from a configuration."""

from __future__ import annotations

import pytest

from aclnet.config import load_config
from aclnet.errors import InputError
from aclnet.tasks.registry import make_task

SMALL = ["data.synthetic.samples_per_class=10", "model.preset=small", "data.clip_len=16"]


@pytest.mark.parametrize(("backbone", "expected"), [("stgcn", "pooled"), ("aclnet_gcn", "topology")])
def test_the_projections_read_the_topology_where_the_backbone_learns_one_else_the_pooled_features(
        backbone: str, expected: str) -> None:
    task = make_task(load_config("synthetic-j", [*SMALL, f"model.backbone={backbone}"]))
    data = task.load_data()
    model = task.build_model(data, task.pipeline(data.layout, test_mode=True))
    features = model.backbone.out_channels if expected == "pooled" else model.backbone.num_joints ** 2
    assert model.aux["inter"].source == expected and model.aux["inter"].projection.fc.in_features == features


def test_asking_for_a_topology_a_backbone_does_not_learn_is_named() -> None:
    task = make_task(load_config("synthetic-j", [*SMALL, "model.backbone=stgcn", "model.embedding_input=topology"]))
    data = task.load_data()
    with pytest.raises(InputError, match="STGCN learns no topology"):
        task.build_model(data, task.pipeline(data.layout, test_mode=True))
