"""What every OpenAI-compatible request shares: URL, headers, tool declarations, messages.

Kept apart from the engine and the planners so that the cascade's engine, the native
tool-calling planner and the Step-Audio 2 planner send one dialect, and a fix to it (a
server that wants arguments as a string, an id on every tool message) lands once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from model.base import Message, prompt_text

__all__ = [
    "assistant_calls",
    "chat_url",
    "declarations",
    "headers",
    "openai_messages",
    "tool_call_wire",
    "usage_counts",
]


def chat_url(base_url: str) -> str:
    """`{base}/chat/completions`; the base is the server's `/v1` URL, as OpenAI clients take it."""
    return base_url.rstrip("/") + "/chat/completions"


def headers(api_key: str | None) -> dict[str, str]:
    out = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    return out


def declarations(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool specs as OpenAI `tools` entries; entries already in that shape pass unchanged."""
    return [
        dict(spec) if spec.get("type") == "function" else {"type": "function", "function": dict(spec)} for spec in specs
    ]


def tool_call_wire(call_id: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """One call as the OpenAI format has it: arguments as a JSON string."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(dict(arguments))}}


def assistant_calls(text: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """An assistant message that calls tools; without text it has no `content` at all, since
    some servers (llama-cpp-python's) refuse the `null` that OpenAI's own API allows."""
    return {"role": "assistant", **({"content": text} if text else {}), "tool_calls": calls}


def openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our messages in the OpenAI chat shape (text only: these servers do not hear audio)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        text = prompt_text(message)
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = [tool_call_wire(c["id"], c["name"], c["arguments"]) for c in message["tool_calls"]]
            out.append(assistant_calls(text, calls))
        elif message["role"] == "tool":
            wire: dict[str, Any] = {"role": "tool", "content": text, "tool_call_id": message.get("tool_call_id", "")}
            if message.get("name"):
                wire["name"] = message["name"]
            out.append(wire)
        else:
            out.append({"role": message["role"], "content": text})
    return out


def usage_counts(body: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens from a response or its last stream chunk; zeros when absent."""
    usage = body.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
