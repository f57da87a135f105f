"""A scripted planner for orchestration tests: it replays steps and records each request."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.base import PlanEvent, Planner, PlanRequest, TextDelta, ToolCall, ToolCallEvent, Usage

__all__ = ["ScriptedPlanner", "Step", "call", "reply"]


@dataclass(frozen=True)
class Step:
    """One planning step: tool calls to make, or text to answer with."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()


def reply(text: str) -> Step:
    return Step(text=text)


_ids = itertools.count(1)


def call(name: str, **arguments: Any) -> Step:
    return Step(calls=(ToolCall(id=f"call_{next(_ids)}", name=name, arguments=arguments),))


@dataclass
class ScriptedPlanner(Planner):
    """Replays `steps` in order; a callable step is given the request and returns a Step.

    When the script runs out it answers `fallback`, so a test that loops too long shows up
    as a wrong answer rather than a hang.
    """

    steps: Sequence[Step | Callable[[PlanRequest], Step]] = ()
    fallback: str = "(script exhausted)"
    requests: list[PlanRequest] = field(default_factory=list)
    name: str = "scripted"

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        index = len(self.requests)
        self.requests.append(request)
        step: Step | Callable[[PlanRequest], Step]
        step = self.steps[index] if index < len(self.steps) else reply(self.fallback)
        if callable(step):
            step = step(request)
        if step.calls and request.tools:
            for tool_call in step.calls:
                yield ToolCallEvent(tool_call)
        else:
            yield TextDelta(step.text or self.fallback)
        yield Usage(model=self.name)
