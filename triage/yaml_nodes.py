"""YAML that operators write — rule files and scenario files — read safely.

PyYAML's safe loader composes the document into nodes (so every value keeps its line), and
values are constructed from nodes one at a time. Whatever goes wrong is one
:class:`YamlProblem` naming the line: a syntax error, nesting deeper than Python's stack
(PyYAML composes recursively), a tag the safe loader refuses (``!!python/object``: nothing is
ever constructed from it), a value it cannot construct (``!!int abc``, a number of more digits
than Python converts). The callers add the file name and raise their own error.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YamlProblem", "compose", "plain_value"]


class YamlProblem(Exception):
    """One problem of a YAML document; ``str()`` is the message, ``line`` counts from 1."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line


def compose(text: str) -> yaml.Node | None:
    """The document's root node (None for an empty document)."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(mark.line + 1 if mark else 1, f"not valid YAML: {problem}") from None
    except RecursionError:  # PyYAML composes recursively: [[[[…]]]] thousands deep
        raise YamlProblem(1, "not valid YAML: nested too deeply") from None


def plain_value(node: yaml.Node) -> Any:
    """The plain Python value of a node and everything under it, by the safe loader."""
    try:
        return yaml.SafeLoader("").construct_document(node)
    except (yaml.YAMLError, ValueError) as exc:  # a tag it refuses; !!int abc; 5,000 digits
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(node.start_mark.line + 1, f"not a valid value: {problem}") from None
