"""A planner on a served text model with native tool calling (`tools`, `tool_choice: auto`).

This is what `VOICEGRAPH_PLANNER=openai` builds. A served model is normally one that
calls tools well by itself (Qwen2.5-7B and up, Llama 3.1, ...), and the server's own tool
parser or grammar is better placed than we are to read its calls. So, unlike the cascade,
nothing is forced: one request per step, the answer streams as text deltas (spoken by the
graph sentence by sentence while it is written), and tool calls come from the streamed
`tool_calls` deltas only. A `<tool_call>` tag in the text is neither spoken nor run: the
text is where a model repeats what it read (a document, a web page, a tool's reply), so a
call written there may be someone else's words; a server without a tool parser must be
given one (vLLM `--enable-auto-tool-choice --tool-call-parser hermes`, llama.cpp `--jinja`).
The cascade over `OpenAIEngine` remains for small served models that need a forced prefix
(`VOICEGRAPH_PLANNER_TOOL_CHOICE=forced`).

Like the cascade it is not speech-native: the graph runs ASR before it and TTS after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from model.base import PlanEvent, Planner, PlanRequest, TextDelta, ToolCallEvent, Usage
from model.errors import PlannerError
from model.openai_wire import chat_url, declarations, headers, openai_messages, usage_counts
from model.sse import aiter_sse, check_response
from model.tool_stream import TaggedTextSplitter, ToolCallAssembler

__all__ = ["SYSTEM_PROMPT", "OpenAIPlanner"]

SYSTEM_PROMPT = (
    "You are a concise voice assistant. Your answers are spoken aloud, so use one to three short, plain "
    "sentences: no markdown, no lists, no code, no emoji. Today is {today}. Use a tool when the question needs "
    "current facts, the time somewhere, or the user's own documents. Answer from tool results and cite the "
    "passage number in brackets, like [1], when the results number their passages."
)
UNREACHABLE = "the planner server at {url} cannot be reached: {error}"
TAGGED_CALL_IGNORED = (
    "%s wrote %d tool call(s) in its text, not in `tool_calls`; they are not run (does the server parse tool calls?)"
)

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now().astimezone()


class OpenAIPlanner(Planner):
    """Streams text and native tool calls from `POST {base_url}/chat/completions`."""

    speech_native = False

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 120.0,
        extra_body: Mapping[str, Any] | None = None,
        today: Callable[[], datetime] | None = None,
        name: str | None = None,
    ) -> None:
        self.url = chat_url(base_url)
        self.model = model
        self.name = name or f"openai:{model}"
        self.today = today or _now
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._headers = headers(api_key)
        self._extra = {"temperature": 0.0, **(extra_body or {})}

    async def aclose(self) -> None:
        await self._client.aclose()

    def _payload(self, request: PlanRequest) -> dict[str, Any]:
        system = {"role": "system", "content": SYSTEM_PROMPT.format(today=self.today().strftime("%A %d %B %Y"))}
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [system, *request.preamble_messages, *openai_messages(request.messages)],
            "max_tokens": request.max_new_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._extra,
        }
        if request.callable_tools:
            payload["tools"] = declarations(request.callable_tools)
            payload["tool_choice"] = "auto"
        return payload

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        started = time.perf_counter()
        splitter = TaggedTextSplitter()
        assembler = ToolCallAssembler()
        usage = (0, 0)
        try:
            async with self._client.stream(
                "POST", self.url, json=self._payload(request), headers=self._headers
            ) as response:
                check_response(response, await response.aread() if response.status_code >= 400 else b"")
                async for chunk in aiter_sse(response):
                    usage = usage_counts(chunk) if chunk.get("usage") else usage
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        assembler.feed(delta.get("tool_calls") or [])
                        if text := splitter.feed(delta.get("content") or ""):
                            yield TextDelta(text)
        except httpx.HTTPError as error:
            raise PlannerError(UNREACHABLE.format(url=self.url, error=error)) from error
        if rest := splitter.finish():
            yield TextDelta(rest)
        if splitter.bodies:
            log.warning(TAGGED_CALL_IGNORED, self.name, len(splitter.bodies))
        for call in assembler.calls() if request.callable_tools else []:
            yield ToolCallEvent(call)
        yield Usage(
            model=self.name,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            duration_ms=(time.perf_counter() - started) * 1000,
        )
