"""Runs the tool calls of one planning step: validated, concurrent, each under its timeout.

Whatever goes wrong with a call (unknown tool, bad arguments, a timeout, an exception) comes
back as an error result the planner reads, never as an exception: the model can correct
itself, and one bad call does not sink the turn.

At most `max_concurrency` calls of a step run at once (a planner that asks for twenty web
searches must not open twenty sockets), and a read-only tool whose call failed in a way
that may pass (TransientToolError, a refused or reset connection) is tried once more:
repeating it cannot do anything twice. A tool that changes things is never retried.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from model.base import ToolCall
from tools.base import Tool, ToolContext, ToolError, ToolResult, TransientToolError
from tools.registry import ToolRegistry

__all__ = ["DEFAULT_MAX_CONCURRENCY", "CallRecord", "CallStatus", "ToolOutcome", "execute_calls"]

log = logging.getLogger(__name__)

CallStatus = Literal["ok", "error", "timeout", "invalid_arguments", "unknown_tool", "awaiting_confirmation"]

UNKNOWN_TOOL = "Error: there is no tool named {name!r}. Valid tools: {valid}."
INVALID_ARGUMENTS = (
    "Error: invalid arguments for {name}: {problem}. Call it again with arguments that match its schema."
)
UNRESOLVABLE = "the tool's parameters schema refers to {ref!r}, outside itself, which is not followed"
TIMED_OUT = "Error: {name} did not answer within {timeout:g} seconds."
FAILED = "Error: {name} failed: {reason}"
DEFAULT_MAX_CONCURRENCY = 4
_TRANSIENT = (TransientToolError, ConnectionError)
_NO_RETRIEVAL: Registry[Any] = Registry()


class CallRecord(TypedDict):
    """What the turn result and the trace report about one call."""

    id: str
    name: str
    arguments: dict[str, Any]
    status: CallStatus
    duration_ms: float
    error: str | None
    attempts: int
    """1, or 2 when a read-only tool was retried after a transient failure; 0 when it did not run."""


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    result: ToolResult
    record: CallRecord
    started_ns: int = 0
    """Wall-clock start and end (ns since the epoch), for the call's trace span."""
    ended_ns: int = 0


async def execute_calls(
    calls: Sequence[ToolCall],
    registry: ToolRegistry,
    context: ToolContext,
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> list[ToolOutcome]:
    """Run `calls` concurrently, at most `max_concurrency` at a time; outcomes in the order of the calls."""
    slots = asyncio.Semaphore(max(1, max_concurrency))

    async def limited(call: ToolCall) -> ToolOutcome:
        async with slots:
            return await _execute(call, registry, context)

    return list(await asyncio.gather(*(limited(call) for call in calls)))


async def _run(tool: Tool, call: ToolCall, context: ToolContext, attempt: int) -> ToolResult:
    """One attempt under the tool's timeout; a read-only tool's first transient failure becomes _Retry."""
    try:
        return await asyncio.wait_for(tool.handler(dict(call["arguments"]), context), tool.spec.timeout_s)
    except _TRANSIENT as exc:
        if attempt > 1 or not tool.spec.read_only:
            raise
        log.info("retrying read-only tool %s after a transient failure: %s", call["name"], exc)
        raise _Retry from exc


class _Retry(Exception):
    """The first attempt failed transiently and the tool is read-only: try once more."""


async def _execute(call: ToolCall, registry: ToolRegistry, context: ToolContext) -> ToolOutcome:
    started_ns = time.time_ns()
    started = time.perf_counter()
    status: CallStatus = "ok"
    attempts = 0
    tool = registry.get(call["name"])
    if tool is None:
        status, message = (
            "unknown_tool",
            UNKNOWN_TOOL.format(name=call["name"], valid=", ".join(registry.names()) or "none"),
        )
        result = ToolResult(content=message)
    elif problem := _validation_problem(tool.spec.parameters, call["arguments"]):
        status, result = "invalid_arguments", ToolResult(INVALID_ARGUMENTS.format(name=call["name"], problem=problem))
    else:
        try:
            attempts = 1
            try:
                result = await _run(tool, call, context, attempts)
            except _Retry:
                attempts = 2
                result = await _run(tool, call, context, attempts)
        except TimeoutError:
            status = "timeout"
            result = ToolResult(TIMED_OUT.format(name=call["name"], timeout=tool.spec.timeout_s))
        except ToolError as exc:
            status, result = "error", ToolResult(FAILED.format(name=call["name"], reason=exc))
        except Exception as exc:
            log.exception("tool %s raised", call["name"])
            status = "error"
            result = ToolResult(FAILED.format(name=call["name"], reason=f"{type(exc).__name__}: {exc}"))
    record = CallRecord(
        id=call["id"],
        name=call["name"],
        arguments=dict(call["arguments"]),
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        error=None if status == "ok" else result.content,
        attempts=attempts,
    )
    return ToolOutcome(call=call, result=result, record=record, started_ns=started_ns, ended_ns=time.time_ns())


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    """A schema's validator, made once: making one (its reference registry) costs more than
    most validations. Keyed by the schema's JSON, as tenants' tools are made anew each turn."""
    # An empty registry: a reference outside the schema is never fetched (jsonschema's
    # default would GET its URL from our network), it is an unusable schema.
    return Draft202012Validator(json.loads(schema_json), registry=_NO_RETRIEVAL)


def _validation_problem(schema: Any, arguments: dict[str, Any]) -> str | None:
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    except Unresolvable as error:
        return UNRESOLVABLE.format(ref=getattr(error, "ref", error))
    if not errors:
        return None
    return "; ".join(f"{'/'.join(str(p) for p in error.path) or 'arguments'}: {error.message}" for error in errors[:3])
