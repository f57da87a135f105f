"""`voicegraph trace SESSION`: a session's turns as span trees, read from the session memory.

It opens only the memory (SQLite in the data dir, or Redis) and reads it through the
session service, never the models, so it is quick, and it reads the traces a running
service keeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from agent.session_service import SessionService
from agent.sessions import TraceRecord
from agent.tracing import (
    ANSWER,
    AUDIO_OUT_S,
    ERROR_TYPE,
    FIRST_AUDIO_MS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    REQUEST_MODEL,
    TOOL_ARGUMENTS,
    TOOL_RESULT,
    TRANSCRIPT,
    TTS_TEXT,
)
from api.compose import open_settings_memory
from api.settings import Settings
from model.errors import InputError

__all__ = ["load_traces", "render_trace"]

NO_SESSION = "no traces for session {session!r} of tenant {tenant!r}"
SUMMARY_CHARS = 80

# What a span's line shows by default, in this order (`--all` shows every attribute).
_SUMMARY = (
    (ERROR_TYPE, "error"),
    (TRANSCRIPT, "heard"),
    (REQUEST_MODEL, "model"),
    (INPUT_TOKENS, "in"),
    (OUTPUT_TOKENS, "out"),
    (TOOL_ARGUMENTS, "args"),
    (TOOL_RESULT, "result"),
    (FIRST_AUDIO_MS, "first audio ms"),
    (AUDIO_OUT_S, "audio s"),
    (TTS_TEXT, "said"),
    (ANSWER, "answer"),
)


async def load_traces(settings: Settings, tenant: str, session_id: str) -> list[TraceRecord]:
    """The session's traces, oldest first; InputError when it has none."""
    async with open_settings_memory(settings) as memory:
        found = await SessionService(memory).traces(tenant, session_id)
    if not found:
        raise InputError(NO_SESSION.format(session=session_id, tenant=tenant))
    return found


def _short(value: Any, limit: int = SUMMARY_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(attributes: dict[str, Any]) -> str:
    return "  ".join(f"{label}={_short(attributes[key])}" for key, label in _SUMMARY if key in attributes)


def _lines(span: dict[str, Any], prefix: str, last: bool, depth: int, all_attributes: bool) -> Iterator[str]:
    branch = "" if depth == 0 else ("└─ " if last else "├─ ")
    mark = " ✗" if span["status"] == "error" else ""
    label = f"{prefix}{branch}{span['name']}{mark}"
    timing = f"{span['duration_ms']:>9.1f} ms  @{span['start_ms']:>8.1f}"
    yield f"{label:<44} {timing}  {_summary(span['attributes'])}".rstrip()
    inner = prefix + ("" if depth == 0 else ("   " if last else "│  "))
    if all_attributes:
        for key, value in span["attributes"].items():
            yield f"{inner}{'   ' if span['children'] else ''}  · {key} = {_short(value, 200)}"
    children = span["children"]
    for index, child in enumerate(children):
        yield from _lines(child, inner, index == len(children) - 1, depth + 1, all_attributes)


def render_trace(trace: TraceRecord, *, all_attributes: bool = False) -> list[str]:
    """A turn's trace as an indented tree: each span's duration, start within the turn, key attributes."""
    when = datetime.fromtimestamp(trace["started_at"]).isoformat(sep=" ", timespec="seconds")
    status = "ok" if trace["status"] == "ok" else f"FAILED: {trace.get('error') or 'error'}"
    head = (
        f"turn {trace.get('turn') or '?'}  {when}  {trace['duration_ms']:.1f} ms  trace {trace['trace_id']}  {status}"
    )
    return [head, *_lines(trace["root"], "", True, 0, all_attributes)]
