"""Python tools: plain typed functions and LangChain tools, turned into our Tool.

A user's function keeps its own signature: the JSON schema comes from its type hints
(through pydantic, so `int`, `Literal[...]`, `list[str]`, dataclasses and models all
work), the description from its docstring, and whatever it returns becomes the result
(a ToolResult as it is, a string as text, anything else as JSON). LangChain tools (`@tool`,
BaseTool) bring their own schema and run through `ainvoke`. Either way the tool then goes
through the same registry, validation, timeouts and records as the built-in ones.

`load_tools("package.module:attribute")` is how settings name them: the attribute may be
a Tool, a function, a LangChain tool, or a list of these.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Callable
from typing import Any, cast, get_type_hints

from pydantic import ConfigDict, create_model

from tools.base import Tool, ToolContext, ToolResult, ToolSpec

__all__ = ["function_tool", "langchain_tool", "load_tools", "to_tool"]

_BAD_REFERENCE = "tool reference {ref!r} must be 'package.module:attribute'"
_NOT_FOUND = "tool reference {ref!r}: {error}"
_NOT_A_TOOL = "tool reference {ref!r} is a {kind}, not a function, Tool or LangChain tool"


def _result(value: Any) -> ToolResult:
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, str):
        return ToolResult(value)
    return ToolResult(json.dumps(value, ensure_ascii=False, default=str))


def _schema_of(function: Callable[..., Any], skip: set[str]) -> dict[str, Any]:
    """The JSON schema of the function's parameters, from its type hints, without pydantic's titles."""
    hints = get_type_hints(function)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in skip or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    model = create_model(f"{function.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema["type"] = "object"
    return schema


def function_tool(
    function: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float = 15.0,
    read_only: bool = False,
) -> Tool:
    """A Tool from a typed function, sync (run in a worker thread) or async.

    A parameter named `context` (or annotated ToolContext) receives the caller's
    ToolContext and is left out of the schema the model sees.
    """
    parameters = inspect.signature(function).parameters
    wants_context = [n for n, p in parameters.items() if n == "context" or p.annotation in (ToolContext, "ToolContext")]
    schema = _schema_of(function, set(wants_context))
    is_async = inspect.iscoroutinefunction(function)

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        kwargs = dict(arguments)
        for key in wants_context:
            kwargs[key] = context
        if is_async:
            return _result(await function(**kwargs))
        return _result(await asyncio.to_thread(function, **kwargs))

    doc = inspect.getdoc(function) or ""
    spec = ToolSpec(
        name=name or function.__name__,
        description=description or doc.split("\n\n")[0].strip() or function.__name__,
        parameters=schema,
        timeout_s=timeout_s,
        read_only=read_only,
    )
    return Tool(spec=spec, handler=handler)


def langchain_tool(tool: Any, *, timeout_s: float = 15.0, read_only: bool = False) -> Tool:
    """A Tool from a LangChain BaseTool (what `@tool` makes); its schema and name are kept."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    declared = convert_to_openai_tool(tool)["function"]
    schema = dict(declared.get("parameters") or {"type": "object", "properties": {}})
    schema["type"] = "object"

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return _result(await tool.ainvoke(arguments))

    spec = ToolSpec(
        name=str(declared["name"]),
        description=str(declared.get("description") or tool.name),
        parameters=schema,
        timeout_s=timeout_s,
        read_only=read_only,
    )
    return Tool(spec=spec, handler=handler)


def _is_langchain(value: Any) -> bool:
    try:
        from langchain_core.tools import BaseTool
    except ImportError:  # pragma: no cover - langgraph brings langchain-core
        return False
    return isinstance(value, BaseTool)


def to_tool(value: Any, *, ref: str = "tool") -> Tool:
    """A Tool, a LangChain tool or a plain function, as a Tool (ValueError for anything else)."""
    if isinstance(value, Tool):
        return value
    if _is_langchain(value):
        return langchain_tool(value)
    if callable(value) and (inspect.isfunction(value) or inspect.ismethod(value)):
        return function_tool(value)
    raise ValueError(_NOT_A_TOOL.format(ref=ref, kind=type(value).__name__))


def load_tools(ref: str) -> list[Tool]:
    """The tools `module:attribute` names (one, or a list of them)."""
    module_name, sep, attribute = ref.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(_BAD_REFERENCE.format(ref=ref))
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(_NOT_FOUND.format(ref=ref, error=error)) from error
    values = cast(list[Any], value) if isinstance(value, list | tuple) else [value]
    return [to_tool(item, ref=ref) for item in values]
