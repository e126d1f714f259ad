"""The tasks the schema knows. A task declares its own top-level sections (a retrieval task its
`protocol:`), each a pydantic model, and registers by name (`aclnet.tasks.registry.register_task`).

Tasks are plugins of the schema: it never imports a task module. Installed packages declare the modules
that register their tasks as `aclnet.tasks` entry points (this package declares `aclnet.tasks`, its
built-in tasks); they are loaded the first time a task is looked up, so a configuration validates whatever
the program imported first. A task defined in a script registers itself before its configuration is loaded.

The schema keeps only what it validates by: a task's name and its sections. What a task does is the task
object's business (`aclnet.tasks.base.Task`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import ClassVar, Protocol

from pydantic import BaseModel

DEFAULT_TASK = "action"
"""The task of a configuration that names none."""


class TaskSchema(Protocol):
    """What the schema reads of a task: its name and its own sections."""

    name: ClassVar[str]
    sections: ClassVar[Mapping[str, type[BaseModel]]]


ENTRY_POINT_GROUP = "aclnet.tasks"

TASKS: dict[str, type[TaskSchema]] = {}
"""The registered tasks by name (read through `registered_tasks`, which loads the declared ones first)."""
_loaded = False


def registered_tasks() -> dict[str, type[TaskSchema]]:
    """The registered tasks by name, after loading the modules that installed packages declare."""
    global _loaded
    if not _loaded:
        _loaded = True
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            entry.load()
    return TASKS
