"""The tool registry: tools keyed by name, checked once when they are registered."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from model.base import ToolSpecDict
from tools.base import Tool

__all__ = ["RESERVED_NAMES", "ToolRegistry"]

log = logging.getLogger(__name__)

RESERVED_NAMES = frozenset({"reply"})
"""Names the planners use themselves: `reply` is the cascade's "answer, call no tool"."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class ToolRegistry:
    """Tools by name. Registering a duplicate, reserved or malformed name is a ValueError."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        name = tool.spec.name
        if not _NAME.fullmatch(name):
            raise ValueError(f"tool name {name!r} must match {_NAME.pattern}")
        if name in RESERVED_NAMES:
            raise ValueError(f"tool name {name!r} is reserved")
        if name in self._tools:
            raise ValueError(f"a tool named {name!r} is already registered")
        if tool.spec.timeout_s <= 0:
            raise ValueError(f"tool {name!r}: timeout_s must be positive")
        schema = dict(tool.spec.parameters)
        if schema.get("type") != "object":
            raise ValueError(f"tool {name!r}: parameters must be a JSON schema of type 'object'")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"tool {name!r}: invalid parameters schema: {exc.message}") from exc
        if (remote := _outside_ref(schema)) is not None:
            raise ValueError(f"tool {name!r}: parameters may refer only within themselves ('#/...'), not to {remote!r}")
        self._tools[name] = tool

    def overlay(self, extra: list[Tool]) -> ToolRegistry:
        """These tools plus `extra` (a tenant's own), without re-checking ours.

        A tenant tool that cannot be registered (a name that clashes, a schema that a later
        version refuses) is left out with a warning: registering it was refused when it was
        made, and one stored tool must not fail every turn of its tenant."""
        combined = ToolRegistry()
        combined._tools = dict(self._tools)
        for tool in extra:
            try:
                combined.register(tool)
            except ValueError as error:
                log.warning("left out of this turn: %s", error)
        return combined

    def unregister(self, name: str) -> None:
        if self._tools.pop(name, None) is None:
            raise KeyError(name)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def declarations(self) -> list[ToolSpecDict]:
        """The specs as planners see them, in a stable order."""
        return [self._tools[name].spec.declaration() for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


def _outside_ref(schema: Any) -> str | None:
    """The first `$ref` or `$dynamicRef` that points outside the schema (resolving it would fetch a URL)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
                    return value
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return None
