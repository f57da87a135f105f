"""The graph's state. `messages`, `turn`, `voice`, `speaker` and `held` are the session; the rest is this turn's."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, cast

from agent.cues import SpeakerBaseline
from model.base import Message, ToolCall
from tools.base import Citation
from tools.runtime import CallRecord

__all__ = ["AgentState", "Replace", "append_messages", "fresh_turn"]


class Replace(TypedDict):
    """An update item that swaps the whole conversation for `replace` (compaction)."""

    replace: list[Message]


def append_messages(left: list[Message], right: list[Message | Replace]) -> list[Message]:
    """Each node returns the messages it adds; a Replace item (compaction) resets what came before.

    Compaction goes through the reducer so the graph stays the one writer of the state.
    """
    merged = list(left)
    for item in right:
        if "replace" in item:
            merged = list(cast(Replace, item)["replace"])
        else:
            merged.append(cast(Message, item))
    return merged


class AgentState(TypedDict):
    messages: Annotated[list[Message], append_messages]
    """The conversation: user, assistant and tool messages of every turn so far."""
    turn: int
    """1-based index of the current turn in the session."""
    voice: str | None
    """The session voice (None: the default voice); set by tools, kept across turns."""
    transcript: str
    """What the user said or typed this turn."""
    paralinguistics: dict[str, Any] | None
    """How this turn was said (agent/cues.py `public`); None when it was typed."""
    speaker: SpeakerBaseline | None
    """How the session's speaker sounded on earlier spoken turns, kept across turns."""
    answer: str
    """The answer of this turn, as text."""
    citations: list[Citation]
    """The sources this turn's tool results carried, numbered across the turn."""
    tool_calls: list[CallRecord]
    """Every tool call of this turn, with its status and duration."""
    pending: list[ToolCall]
    """Calls the planner just made, waiting for the act node."""
    awaiting: list[ToolCall]
    """Calls of tools the client runs itself: the turn ends, and their outputs start the next."""
    held: list[ToolCall]
    """Calls of tools that change things, held for the user's yes: the turn ends asking, and the
    next turn runs them on a yes and drops them otherwise (agent/confirmation.py)."""
    confirmed: list[str]
    """Ids of the calls the user said yes to this turn: they run without asking again."""
    rounds: int
    """Tool rounds run this turn (plan -> act counts one)."""
    spoke: bool
    """Something was said this step before the tools ran (the planner's own line, or the
    tool's line as soon as it was chosen), so the tools' line is not said over it."""


def fresh_turn() -> dict[str, object]:
    """The per-turn fields reset at the start of every turn (the graph's input)."""
    return {
        "transcript": "",
        "paralinguistics": None,
        "answer": "",
        "citations": [],
        "tool_calls": [],
        "pending": [],
        "awaiting": [],
        "confirmed": [],
        "rounds": 0,
        "spoke": False,
    }
