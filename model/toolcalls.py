"""Tool calls read out of free model text, leniently.

Small local models do not keep to one format: Qwen2.5-Coder-1.5B writes `<tool_call>` tags
when its answer is started for it, but on its own it writes JSON in a ```json fence, bare
JSON in prose, lists of calls, arguments as an object or as a JSON string, and runs out of
tokens mid-object. We accept all of those, check each name against the tools on offer,
and report what we could not use as `errors` (data for the caller, never an exception).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from model.base import ToolCall

__all__ = ["REPLY_OPENING", "JsonStringReader", "ParsedCalls", "loads_lenient", "new_call_id", "parse_tool_calls"]

_TAG_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON|tool_call)?[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_UNKNOWN_TOOL = "unknown tool {name!r}; valid tools are: {valid}"
_BAD_JSON = "could not read a tool call from {snippet!r}: {error}"
_BAD_ARGS = "arguments of {name!r} must be a JSON object, got {snippet!r}"
_NO_NAME = "tool call without a name: {snippet!r}"


@dataclass
class ParsedCalls:
    calls: list[ToolCall] = field(default_factory=list)
    text: str = ""
    """The prose left once every recognised call is taken out."""
    errors: list[str] = field(default_factory=list)


def new_call_id() -> str:
    return f"call_{secrets.token_hex(6)}"


def _close_json(fragment: str) -> str:
    """Close the strings and brackets a truncated JSON fragment left open."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in fragment:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    tail = ("\\" if escaped else "") + ('"' if in_string else "")
    return fragment + tail + "".join(reversed(stack))


def loads_lenient(raw: str) -> Any:
    """Parse JSON that may be truncated or followed by junk; raise ValueError if hopeless."""
    raw = raw.strip()
    start = min((i for i in (raw.find("{"), raw.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("no JSON object")
    raw = raw[start:]
    decoder = json.JSONDecoder()
    try:
        return decoder.raw_decode(raw)[0]
    except ValueError:
        pass
    return decoder.raw_decode(_close_json(raw.rstrip().rstrip(",")))[0]


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_like_call(obj: Any, strict: bool) -> bool:
    """Whether bare JSON in prose is meant as a call; inside tags a name is enough."""
    if isinstance(obj, list):
        return bool(obj) and all(_looks_like_call(item, strict) for item in obj)
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    if not isinstance(obj.get("name"), str):
        return False
    return not strict or "arguments" in obj or "parameters" in obj


class _Collector:
    def __init__(self, valid_names: Collection[str]) -> None:
        self.valid = valid_names
        self.result = ParsedCalls()

    def add(self, obj: Any) -> None:
        if isinstance(obj, list):
            for item in obj:
                self.add(item)
            return
        if not isinstance(obj, dict):
            self.result.errors.append(_NO_NAME.format(snippet=_shorten(json.dumps(obj))))
            return
        if isinstance(obj.get("function"), dict):  # the OpenAI shape
            obj = obj["function"]
        name = obj.get("name")
        if not isinstance(name, str) or not name.strip():
            self.result.errors.append(_NO_NAME.format(snippet=_shorten(json.dumps(obj))))
            return
        name = name.strip()
        if name not in self.valid:
            valid = ", ".join(sorted(self.valid)) or "(none)"
            self.result.errors.append(_UNKNOWN_TOOL.format(name=name, valid=valid))
            return
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = loads_lenient(args) if args.strip() else {}
            except ValueError:
                args = None
        if args is None:
            args = {}
        if not isinstance(args, dict):
            self.result.errors.append(_BAD_ARGS.format(name=name, snippet=_shorten(str(args))))
            return
        self.result.calls.append(ToolCall(id=new_call_id(), name=name, arguments=args))

    def add_raw(self, raw: str) -> None:
        try:
            self.add(loads_lenient(raw))
        except ValueError as exc:
            self.result.errors.append(_BAD_JSON.format(snippet=_shorten(raw), error=exc))


def _take_bare(text: str, collector: _Collector) -> str:
    """Take call-shaped JSON objects out of prose, leaving other braces alone."""
    decoder = json.JSONDecoder()
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "{[":
            try:
                obj, end = decoder.raw_decode(text, i)
            except ValueError:
                obj, end = None, i + 1
            if obj is not None and _looks_like_call(obj, strict=True):
                collector.add(obj)
                i = end
                continue
            if obj is not None:
                out.append(text[i:end])
                i = end
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tidy(text: str) -> str:
    text = re.sub(r"</?tool_call>", "", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def parse_tool_calls(text: str, valid_names: Collection[str]) -> ParsedCalls:
    """Every tool call in `text`, in order of kind: tagged, then fenced, then bare JSON."""
    collector = _Collector(valid_names)

    def tagged(match: re.Match[str]) -> str:
        if match.group(1).strip():
            collector.add_raw(match.group(1))
        return "\n"

    rest = _TAG_RE.sub(tagged, text)

    def fenced(match: re.Match[str]) -> str:
        body = match.group(1)
        try:
            obj = loads_lenient(body)
        except ValueError:
            return match.group(0)
        if not _looks_like_call(obj, strict=False):
            return match.group(0)
        collector.add(obj)
        return "\n"

    rest = _FENCE_RE.sub(fenced, rest)
    rest = _take_bare(rest, collector)
    collector.result.text = _tidy(rest)
    return collector.result


REPLY_OPENING = re.compile(r'<tool_call>\s*\{\s*"name"\s*:\s*"reply"\s*,\s*"arguments"\s*:\s*\{\s*"text"\s*:\s*"')
"""How a forced `reply` call begins, up to the opening quote of its text: what follows is the answer."""

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class JsonStringReader:
    """Decodes a JSON string literal as it streams in, starting just after its opening quote.

    It lets a reply written as a tool call be spoken while it is still being generated:
    `feed` returns the text decoded so far (an escape split across chunks waits for the
    rest), and `done` turns true at the closing quote, after which input is ignored.
    """

    def __init__(self) -> None:
        self.done = False
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text, self._pending = self._pending + chunk, ""
        out: list[str] = []
        i = 0
        while i < len(text) and not self.done:
            char = text[i]
            if char == '"':
                self.done = True
            elif char != "\\":
                out.append(char)
            elif i + 1 >= len(text) or (text[i + 1] == "u" and i + 6 > len(text)):
                self._pending = text[i:]  # an escape cut in two: wait for its end
                break
            elif text[i + 1] == "u":
                code = int(text[i + 2 : i + 6], 16) if _is_hex(text[i + 2 : i + 6]) else 0xFFFD
                if not 0xD800 <= code <= 0xDFFF:  # lone surrogate halves (emoji) cannot be spoken anyway
                    out.append(chr(code))
                i += 6
                continue
            else:
                out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                i += 2
                continue
            i += 1
        return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdefABCDEF" for c in text)
