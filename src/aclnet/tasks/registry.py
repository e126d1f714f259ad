"""The tasks by name: the configuration's `task:` field selects one. The built-in tasks register here; a task
defined elsewhere registers with `register_task` and is then trained, tested, predicted, exported and
reported like them."""

from __future__ import annotations

from typing import cast

from aclnet.config import ExperimentConfig
from aclnet.config.tasks import TASKS
from aclnet.engine.seam import TaskOutput
from aclnet.errors import InputError
from aclnet.tasks.action import ActionTask
from aclnet.tasks.base import REPORT_SECTIONS, Task
from aclnet.tasks.retrieval import GaitTask, ReidTask

OUTPUTS: tuple[TaskOutput, ...] = ("class_scores", "embeddings")


def register_task(task: type[Task]) -> type[Task]:
    """Make `task` known to the configuration schema and to `make_task` by its `name` (usable as a class
    decorator). Refuses a task that misdeclares what it is."""
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not name:
        raise InputError(f"{task.__name__}: a task needs a name")
    if getattr(task, "output", None) not in OUTPUTS:
        raise InputError(f"task '{name}': output must be one of {OUTPUTS}, got {getattr(task, 'output', None)!r}")
    unknown = set(task.report_sections) - set(REPORT_SECTIONS)
    if unknown:
        raise InputError(f"task '{name}': unknown report sections {sorted(unknown)}; valid: {REPORT_SECTIONS}")
    if TASKS.get(name, task) is not task:
        raise InputError(f"task '{name}' is registered already (by {TASKS[name].__name__})")
    TASKS[name] = task
    return task


for _builtin in (ActionTask, GaitTask, ReidTask):
    register_task(_builtin)


def task_class(name: str) -> type[Task]:
    """The registered task called `name`."""
    if name not in TASKS:
        raise InputError(f"unknown task '{name}'; registered tasks: {', '.join(TASKS)}")
    return cast(type[Task], TASKS[name])


def make_task(config: ExperimentConfig) -> Task:
    """The task object of an experiment (its `task` was validated against the registered tasks)."""
    return task_class(config.task)(config)
