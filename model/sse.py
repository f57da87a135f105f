"""Server-sent events of OpenAI-compatible servers, read as JSON chunks.

vLLM, SGLang, llama.cpp server and Ollama all stream `data: {json}` lines ended by
`data: [DONE]`; some send comments, `event:` lines or keep-alives in between. One reader
for all of them, sync (the cascade's engine runs in a worker thread) and async (planners),
so that a malformed line fails the same way everywhere: as a PlannerError that says what
the server sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from model.errors import PlannerError

__all__ = ["BAD_CHUNK", "HTTP_FAILED", "aiter_sse", "check_response", "iter_sse", "parse_data_line"]

BAD_CHUNK = "the planner server sent a stream chunk that is not JSON: {line!r}"
HTTP_FAILED = "the planner server at {url} answered HTTP {status}: {body}"
_DONE = object()


def parse_data_line(line: str) -> Any:
    """The JSON of one `data:` line; None for lines that carry none; `_DONE` at the end."""
    line = line.strip()
    if not line.startswith("data:"):
        return None  # blank separators, comments (":"), "event:" and "id:" lines
    payload = line[5:].strip()
    if payload == "[DONE]":
        return _DONE
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        raise PlannerError(BAD_CHUNK.format(line=line[:200])) from None


def iter_sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        chunk = parse_data_line(line)
        if chunk is _DONE:
            return
        if isinstance(chunk, dict):
            yield chunk


async def aiter_sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        chunk = parse_data_line(line)
        if chunk is _DONE:
            return
        if isinstance(chunk, dict):
            yield chunk


def check_response(response: httpx.Response, body: bytes = b"") -> None:
    """Raise PlannerError for an error status, quoting the start of the server's answer."""
    if response.status_code >= 400:
        text = body.decode("utf-8", "replace")[:300] if body else ""
        raise PlannerError(HTTP_FAILED.format(url=response.request.url, status=response.status_code, body=text))
