"""Calls of tools that change things wait for the user's yes.

A tool whose spec asks for confirmation (`ToolSpec.confirm`: an HTTP tool that is not
read-only, an MCP tool its server does not call read-only) is not run when the planner
calls it. The turn ends with the agent asking "Shall I ...?", worded here from the call
itself, never by the model, which may have been steered by what it read; the call is kept
in the session. The user's next turn runs that very call, arguments and all, when it
says yes ("yes", "sure", "go ahead", ...), and drops it otherwise, its words then planned
like any turn's (a "yes, but two of them" makes the planner call again, and ask again).

Only the user's own next words confirm. Nothing the planner writes, no tool result and no
document can: the yes is read in the listen node from what the user said, before the
planner sees anything, and a call is confirmed by the id given to it there.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any, Literal

from agent.state import AgentState
from model.base import Message, ToolCall
from model.toolcalls import new_call_id
from tools.base import ToolResult
from tools.registry import ToolRegistry
from tools.runtime import CallRecord, ToolOutcome

__all__ = ["HELD", "held_outcome", "is_yes", "needs_yes", "question", "route_after_listen", "user_answer"]

HELD = (
    "Not run: {name} changes things, so it runs only once the user says yes, and the user has been asked. "
    "Do not say it was done."
)
QUESTION = "Shall I {actions}?"
_SAID_VALUE = 80
"""Characters of an argument's value said in the question; a longer one is cut."""

_AGREE = (
    r"yes|yeah|yep|yup|sure|ok|okay|alright|all right|correct|confirm|confirmed|absolutely|of course"
    r"|go ahead|do it|please do|go for it|that's right|that is right"
)
_YES = re.compile(rf"(?:{_AGREE})(?: (?:{_AGREE}|please|thanks|thank you))*")
"""A whole answer that agrees and says nothing else ("Yes.", "Sure, go ahead.", "OK, thanks")."""


def is_yes(said: str) -> bool:
    """Whether the user's words are a plain yes (case, punctuation and spacing aside)."""
    words = " ".join(re.sub(r"[^\w']+", " ", said.lower().replace("’", "'")).split())
    return bool(_YES.fullmatch(words))


def needs_yes(registry: ToolRegistry, call: ToolCall, confirmed: Sequence[str]) -> bool:
    """Whether `call` must wait for the user's yes: its tool asks for it and this turn's yes was not for it."""
    tool = registry.get(call["name"])
    return tool is not None and tool.spec.confirm and call["id"] not in confirmed


def question(calls: Sequence[ToolCall]) -> str:
    """What the agent asks: every held call, its tool and arguments, in plain words."""
    return QUESTION.format(actions=" and ".join(map(_action, calls)))


def _action(call: ToolCall) -> str:
    said = [f"{name.replace('_', ' ')} {_value(value)}" for name, value in call["arguments"].items()]
    return f"use {call['name'].replace('_', ' ')}" + (f" with {', '.join(said)}" if said else "")


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= _SAID_VALUE else text[: _SAID_VALUE - 1].rstrip() + "…"


def held_outcome(call: ToolCall) -> ToolOutcome:
    """The outcome of a call held for the user's yes: nothing ran; the model reads that it did not."""
    now = time.time_ns()
    result = ToolResult(HELD.format(name=call["name"]))
    record = CallRecord(
        id=call["id"],
        name=call["name"],
        arguments=dict(call["arguments"]),
        status="awaiting_confirmation",
        duration_ms=0.0,
        error=result.content,
        attempts=0,
    )
    return ToolOutcome(call=call, result=result, record=record, started_ns=now, ended_ns=now)


def user_answer(state: AgentState, said: str) -> dict[str, Any]:
    """What the user's words do to the calls held for their yes (the listen node's update): a
    yes runs them now, under new ids, before any planning; anything else drops them."""
    held = state.get("held") or []
    if not held:
        return {}
    if not is_yes(said):
        return {"held": []}
    calls = [ToolCall(id=new_call_id(), name=c["name"], arguments=dict(c["arguments"])) for c in held]
    return {
        "held": [],
        "pending": calls,
        "confirmed": [c["id"] for c in calls],
        "messages": [Message(role="assistant", content="", tool_calls=calls)],
    }


async def route_after_listen(state: AgentState) -> Literal["act", "plan"]:
    """Straight to the tools when the user said yes to held calls; else to the planner."""
    return "act" if state["pending"] else "plan"
