"""YAML read as plain data, safely for files from outside: no aliases (a few hundred bytes of anchors and
aliases can stand for billions of nodes once anything walks the result) and no nesting deeper than
`MAX_DEPTH`. Errors are `yaml.YAMLError`s, so callers name the file as for any YAML error."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted (configurations and layouts need fewer than ten)."""


class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with bounded depth."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise ComposerError(None, None, "aliases (*name) are not accepted here; write the value out",
                                self.peek_event().start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(text: str) -> Any:
    """The plain data of one YAML document."""
    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader subclass)
