"""The tasks: action recognition, gait recognition, person re-identification, behind one registry. Importing
this package registers them with the configuration schema."""

from aclnet.tasks.registry import make_task, register_task, task_class

__all__ = ["make_task", "register_task", "task_class"]
