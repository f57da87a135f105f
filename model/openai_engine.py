"""A ChatEngine over an OpenAI-compatible server: the cascade's LLM on vLLM, SGLang,
llama.cpp server or Ollama, so that many planner replicas can share one served model.

The cascade forces the start of the answer (`prefix`) to make a small model pick a tool.
Over HTTP that is an assistant message continued by the server (`continue_final_message`
in vLLM and SGLang; llama.cpp server and Ollama continue a final assistant message by
themselves). During such a step `tool_choice` is "none": the tools are still rendered into
the prompt, but the server's tool parser keeps its hands off text that starts mid-call,
and the cascade parses it. Without a prefix, calls the server parsed come back as
`tool_calls`; they are written back as `<tool_call>` text, so the cascade reads calls from
one place whichever side parsed them.

The ChatEngine protocol is synchronous (the cascade runs it in a worker thread), so this
uses a blocking httpx.Client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from model.errors import PlannerError
from model.llm import Completion, TextStream
from model.openai_wire import assistant_calls, chat_url, declarations, headers, tool_call_wire, usage_counts
from model.sse import check_response, iter_sse
from model.tool_stream import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ToolCallAssembler

__all__ = ["OpenAIEngine"]

UNREACHABLE = "the planner server at {url} cannot be reached: {error}"
BAD_RESPONSE = "the planner server at {url} answered without a choice: {body!r}"


def _wire_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The cascade's messages (Qwen-template shape: calls without ids, arguments as objects)
    in the OpenAI shape, with ids made up so every tool message answers a call."""
    out: list[dict[str, Any]] = []
    waiting: list[str] = []
    for number, message in enumerate(messages):
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = [
                tool_call_wire(c.get("id") or f"call_{number}_{i}", c["name"], c.get("arguments") or {})
                for i, c in enumerate(message["tool_calls"])
            ]
            waiting = [c["id"] for c in calls]
            out.append(assistant_calls(message.get("content") or "", calls))
        elif message.get("role") == "tool":
            call_id = message.get("tool_call_id") or (waiting.pop(0) if waiting else f"call_{number}")
            out.append({"role": "tool", "content": message.get("content", ""), "tool_call_id": call_id})
        else:
            out.append({"role": message["role"], "content": message.get("content", "")})
    return out


def _calls_as_text(calls: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f"{TOOL_CALL_OPEN}\n{json.dumps({'name': c['name'], 'arguments': c['arguments']})}\n{TOOL_CALL_CLOSE}"
        for c in calls
    )


class OpenAIEngine:
    """model.llm.ChatEngine over `POST {base_url}/chat/completions`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = 120.0,
        extra_body: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        """`extra_body`: sampling options merged into every request (temperature defaults to 0,
        the greedy decoding the local engine uses)."""
        self.url = chat_url(base_url)
        self.model = model
        self.name = name or f"openai:{model}"
        self._client = client or httpx.Client(timeout=timeout_s)
        self._headers = headers(api_key)
        self._extra = {"temperature": 0.0, **(extra_body or {})}

    def close(self) -> None:
        self._client.close()

    def _payload(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None, prefix: str, **more: Any
    ) -> dict[str, Any]:
        wire = _wire_messages(messages)
        payload: dict[str, Any] = {"model": self.model, "messages": wire, **self._extra, **more}
        if tools:
            payload["tools"] = declarations(tools)
            payload["tool_choice"] = "none" if prefix else "auto"
        if prefix:
            wire.append({"role": "assistant", "content": prefix})
            payload["continue_final_message"] = True
            payload["add_generation_prompt"] = False
        return payload

    def generate(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> Completion:
        started = time.perf_counter()
        payload = self._payload(messages, tools, prefix, max_tokens=max_new_tokens, stream=False)
        try:
            response = self._client.post(self.url, json=payload, headers=self._headers)
        except httpx.HTTPError as error:
            raise PlannerError(UNREACHABLE.format(url=self.url, error=error)) from error
        check_response(response, response.content)
        body = response.json()
        try:
            message = body["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise PlannerError(BAD_RESPONSE.format(url=self.url, body=str(body)[:200])) from None
        assembler = ToolCallAssembler()
        assembler.feed(message.get("tool_calls") or [])
        text = _strip_echo(message.get("content") or "", prefix) + _calls_as_text(assembler.calls())
        prompt_tokens, completion_tokens = usage_counts(body)
        return Completion(text, prompt_tokens, completion_tokens, (time.perf_counter() - started) * 1000)

    def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> TextStream:
        """Text as the server streams it; closing the stream drops the connection, which
        makes vLLM and SGLang abort the generation."""
        payload = self._payload(
            messages, tools, prefix, max_tokens=max_new_tokens, stream=True, stream_options={"include_usage": True}
        )
        cancel = threading.Event()

        def chunks() -> Iterator[str]:
            started = time.perf_counter()
            parts: list[str] = []
            usage = (0, 0)
            assembler = ToolCallAssembler()
            echo = prefix
            try:
                with self._client.stream("POST", self.url, json=payload, headers=self._headers) as response:
                    check_response(response, response.read() if response.status_code >= 400 else b"")
                    for chunk in iter_sse(response):
                        if cancel.is_set():
                            break
                        usage = usage_counts(chunk) if chunk.get("usage") else usage
                        for choice in chunk.get("choices") or []:
                            delta = choice.get("delta") or {}
                            assembler.feed(delta.get("tool_calls") or [])
                            piece = delta.get("content") or ""
                            if echo and piece:  # a server that repeats the prefix before continuing it
                                piece, echo = _eat_echo(piece, echo)
                            if piece:
                                parts.append(piece)
                                yield piece
            except httpx.HTTPError as error:
                raise PlannerError(UNREACHABLE.format(url=self.url, error=error)) from error
            if not cancel.is_set() and (calls := _calls_as_text(assembler.calls())):
                parts.append(calls)
                yield calls
            stream.completion = Completion("".join(parts), usage[0], usage[1], (time.perf_counter() - started) * 1000)

        stream = TextStream(chunks(), cancel)
        return stream


def _strip_echo(text: str, prefix: str) -> str:
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def _eat_echo(piece: str, echo: str) -> tuple[str, str]:
    """Drop the part of a streamed piece that repeats the rest of the prefix; stop at the first difference."""
    common = 0
    while common < min(len(piece), len(echo)) and piece[common] == echo[common]:
        common += 1
    if common == len(piece) or common == len(echo):
        return piece[common:], echo[common:]
    return piece, ""
