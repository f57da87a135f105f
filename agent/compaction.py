"""Bound a session's stored conversation: drop the oldest turns, trim the ones the planner no longer sees.

The planner is shown only the last `history_turns` turns in full (`recent`), yet the
checkpointed thread would otherwise keep every message forever. A trimmed turn keeps the
user's words, the final answer, and the tool results that answer cited (with the calls that
produced them, so no tool message loses its call); planning chatter and uncited results go.
"""

from __future__ import annotations

from model.base import Message, ToolCall, message_text
from tools.base import CITATION_MARKER

__all__ = ["compact", "recent", "split_turns", "trim_turn"]


def split_turns(messages: list[Message]) -> list[list[Message]]:
    """The conversation cut at each user message (anything before the first is its own part)."""
    turns: list[list[Message]] = []
    for message in messages:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def trim_turn(turn: list[Message]) -> list[Message]:
    """The user message, the cited tool results with their calls, and the final answer."""
    answers = [m for m in turn if m["role"] == "assistant" and not m.get("tool_calls")]
    if turn[0]["role"] != "user" or not answers:
        return turn
    final = answers[-1]
    cited = set(CITATION_MARKER.findall(message_text(final)))
    results = [m for m in turn if m["role"] == "tool" and cited & set(CITATION_MARKER.findall(message_text(m)))]
    kept: list[Message] = [turn[0]]
    if results:
        ids = {m.get("tool_call_id") for m in results}
        calls: list[ToolCall] = [c for m in turn if m["role"] == "assistant" for c in m.get("tool_calls", [])]
        kept.append(Message(role="assistant", content="", tool_calls=[c for c in calls if c["id"] in ids]))
        kept.extend(results)
    kept.append(final)
    return kept


def compact(messages: list[Message], *, full_turns: int, max_turns: int) -> list[Message] | None:
    """The stored conversation before a new turn is added, bounded; None when nothing changes.

    Keeps the last `max_turns - 1` turns (the new one makes `max_turns`), the newest
    `full_turns` of them whole and the rest trimmed.
    """
    turns = split_turns(messages)[-max(0, max_turns - 1) :] if max_turns > 1 else []
    cut = max(0, len(turns) - full_turns)
    compacted = [m for turn in turns[:cut] for m in trim_turn(turn)] + [m for turn in turns[cut:] for m in turn]
    return None if compacted == messages else compacted


def recent(messages: list[Message], earlier_turns: int, turn: int) -> list[Message]:
    """This turn (the `turn`-th) and the earlier turns the planner sees, cut at a user message so
    no tool result loses its call.

    At most `earlier_turns` are shown, and the oldest go half a window at a time, not one per
    turn: a planner that keeps its KV cache then re-reads the conversation once every few
    turns instead of every turn. The window is counted from the session's first turn, so
    turns dropped from storage (compaction) do not move it.
    """
    earlier = turn - 1
    step = max(1, (earlier_turns + 1) // 2)
    dropped = ((earlier - earlier_turns - 1) // step + 1) * step if earlier > earlier_turns else 0
    shown = earlier - dropped
    starts = [i for i, message in enumerate(messages) if message["role"] == "user"]
    return messages if len(starts) <= shown + 1 else messages[starts[-(shown + 1)] :]
