"""The graph's state. `messages`, `turn` and `voice` are the session; the rest is this turn's."""

from __future__ import annotations

from typing import Annotated, TypedDict

from model.base import Message, ToolCall
from tools.base import Citation
from tools.runtime import CallRecord

__all__ = ["AgentState", "append_messages", "fresh_turn"]


def append_messages(left: list[Message], right: list[Message]) -> list[Message]:
    """Messages only ever accumulate; each node returns the ones it adds."""
    return [*left, *right]


class AgentState(TypedDict):
    messages: Annotated[list[Message], append_messages]
    """The conversation: user, assistant and tool messages of every turn so far."""
    turn: int
    """1-based index of the current turn in the session."""
    voice: str | None
    """The session voice (None: the default voice); set by tools, kept across turns."""
    transcript: str
    """What the user said or typed this turn."""
    answer: str
    """The answer of this turn, as text."""
    citations: list[Citation]
    """The sources this turn's tool results carried, numbered across the turn."""
    tool_calls: list[CallRecord]
    """Every tool call of this turn, with its status and duration."""
    pending: list[ToolCall]
    """Calls the planner just made, waiting for the act node."""
    rounds: int
    """Tool rounds run this turn (plan -> act counts one)."""
    spoke: bool
    """The planner produced the turn's audio itself (speech-native backends)."""
    timings_ms: dict[str, float]
    """Time spent per stage this turn: asr, plan, act, speak."""


def fresh_turn() -> dict[str, object]:
    """The per-turn fields reset at the start of every turn (the graph's input)."""
    return {
        "transcript": "",
        "answer": "",
        "citations": [],
        "tool_calls": [],
        "pending": [],
        "rounds": 0,
        "spoke": False,
        "timings_ms": {},
    }
