"""Tool calls out of streamed model output: tags in the text, and OpenAI tool-call deltas.

Served models hand tool calls back two ways. With a tool parser on the server they come
as `tool_calls` deltas (a name first, then the arguments in pieces, keyed by index); without
one, or when the parser misses, they stay in the text as `<tool_call>...</tool_call>`. A
planner must handle both, and must not speak the second kind: `TaggedTextSplitter` passes
text on as it streams but holds back anything that may be the start of a tag, so neither a
tool call nor an `<audio_N>` token is ever half spoken.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.base import ToolCall
from model.toolcalls import ParsedCalls, new_call_id, parse_tool_calls

__all__ = ["TOOL_CALL_CLOSE", "TOOL_CALL_OPEN", "TaggedTextSplitter", "ToolCallAssembler", "parse_call_bodies"]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_MAX_TAG = 32
"""A `<` with no `>` within this many characters is text, not the start of a tag."""


class TaggedTextSplitter:
    """Feeds streamed text; returns the part safe to pass on, keeps tool-call bodies aside."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        """The inside of every `<tool_call>` seen, in order (an unclosed last one too, at finish)."""
        self._pending = ""
        self._in_call = False

    def feed(self, piece: str) -> str:
        self._pending += piece
        out: list[str] = []
        while self._pending:
            if self._in_call:
                end = self._pending.find(TOOL_CALL_CLOSE)
                if end < 0:
                    break
                self.bodies.append(self._pending[:end])
                self._pending = self._pending[end + len(TOOL_CALL_CLOSE) :]
                self._in_call = False
                continue
            start = self._pending.find(TOOL_CALL_OPEN)
            if start >= 0:
                out.append(self._pending[:start])
                self._pending = self._pending[start + len(TOOL_CALL_OPEN) :]
                self._in_call = True
                continue
            cut = self._holdback(self._pending)
            out.append(self._pending[:cut])
            self._pending = self._pending[cut:]
            break
        return "".join(out)

    def finish(self) -> str:
        """What is left: held-back text is text after all; an unclosed call is a call."""
        rest, self._pending = self._pending, ""
        if self._in_call:
            self._in_call = False
            if rest.strip():
                self.bodies.append(rest)
            return ""
        return rest

    @staticmethod
    def _holdback(text: str) -> int:
        """Where the text stops being safe: at a trailing `<` that may open a tag."""
        lt = text.rfind("<")
        if lt < 0 or ">" in text[lt:] or len(text) - lt > _MAX_TAG:
            return len(text)
        return lt


def _step_audio_body(body: str) -> dict[str, Any] | None:
    """`function\\n{name}\\n{json}` (Step-Audio 2) as a {name, arguments} object; None if not that form."""
    parts = body.strip().split("\n", 2)
    if len(parts) < 2 or parts[0].strip() != "function" or not parts[1].strip():
        return None
    return {"name": parts[1].strip(), "arguments": parts[2] if len(parts) > 2 else "{}"}


def parse_call_bodies(bodies: Sequence[str], valid_names: Collection[str]) -> ParsedCalls:
    """Calls from tag bodies in either form: Step-Audio 2's, or JSON ({"name", "arguments"})."""
    result = ParsedCalls()
    for body in bodies:
        shaped = _step_audio_body(body)
        text = json.dumps(shaped) if shaped is not None else body
        parsed = parse_tool_calls(f"{TOOL_CALL_OPEN}{text}{TOOL_CALL_CLOSE}", valid_names)
        result.calls.extend(parsed.calls)
        result.errors.extend(parsed.errors)
    return result


@dataclass
class _Partial:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class ToolCallAssembler:
    """Assembles OpenAI streamed tool-call deltas (by index) into whole calls.

    Names and ids come once, arguments in pieces that are concatenated, as the OpenAI
    stream format says; vLLM's Step-Audio 2 parser sends the whole arguments object in its
    first arguments delta and only the difference after, which concatenates the same way.
    """

    _calls: dict[int, _Partial] = field(default_factory=dict)

    def feed(self, deltas: Sequence[dict[str, Any]]) -> None:
        for position, delta in enumerate(deltas):
            index = delta.get("index", position)
            partial = self._calls.setdefault(index if isinstance(index, int) else position, _Partial())
            partial.id = delta.get("id") or partial.id
            function = delta.get("function") or {}
            if function.get("name") and not partial.name:
                partial.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, dict):  # some servers send an object, not a string
                partial.arguments = json.dumps(arguments)
            elif isinstance(arguments, str):
                partial.arguments += arguments

    def calls(self) -> list[ToolCall]:
        """Every named call, arguments read leniently; a name not on offer is kept for the
        tool runtime to answer as an error the model can read."""
        out: list[ToolCall] = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            name = partial.name.strip()
            if not name:
                continue
            raw = {"name": name, "arguments": partial.arguments or "{}"}
            parsed = parse_tool_calls(f"{TOOL_CALL_OPEN}{json.dumps(raw)}{TOOL_CALL_CLOSE}", {name})
            arguments = parsed.calls[0]["arguments"] if parsed.calls else {}
            out.append(ToolCall(id=partial.id or new_call_id(), name=name, arguments=arguments))
        return out
