"""The tasks by name: the configuration's `task:` field selects one, and the CLI dispatches through here."""

from __future__ import annotations

from aclnet.config import ExperimentConfig
from aclnet.tasks.action import ActionTask
from aclnet.tasks.base import Task
from aclnet.tasks.retrieval import GaitTask, ReidTask

TASKS: dict[str, type[Task]] = {task.name: task for task in (ActionTask, GaitTask, ReidTask)}


def make_task(config: ExperimentConfig) -> Task:
    """The task object of an experiment (its `task` was validated against `TASKS`)."""
    return TASKS[config.task](config)
