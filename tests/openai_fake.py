"""A loopback OpenAI-compatible server (and token2wav service) that answers from a script.

It records every request body, so tests check what a backend sent, and answers in the
documented shapes: a plain message, SSE deltas, `tool_calls` (whole, or as streamed
deltas), and Step-Audio 2's `tts_content` with `<audio_N>` tokens. Serve it with
tests/http_server.running_server.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from model.audio import encode_wav
from tests.http_server import running_server

VOCODER_RATE = 24000
SAMPLES_PER_TOKEN = 960
"""The fake vocoder's known waveform: 40 ms of a 0.25 constant per speech token."""


@dataclass
class Reply:
    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tts: bool = False
    """Put the text (and audio) in `tts_content`, as Step-Audio 2's servers do for speech."""
    audio: list[int] = field(default_factory=list)
    status: int = 200


@dataclass
class FakeServer:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    vocoder_requests: list[dict[str, Any]] = field(default_factory=list)
    piece_chars: int = 4

    def reset(self) -> FakeServer:
        """Forget the script and every recorded request, for the next test."""
        self.replies.clear()
        self.requests.clear()
        self.vocoder_requests.clear()
        return self

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            index = len(self.requests) - 1
            reply = self.replies[index] if index < len(self.replies) else Reply(text="(script exhausted)")
            if reply.status != 200:
                return JSONResponse({"error": {"message": "scripted failure"}}, status_code=reply.status)
            if body.get("stream"):
                return StreamingResponse(self._sse(reply, index), media_type="text/event-stream")
            return JSONResponse(self._message(reply, index))

        @app.post("/token2wav")
        async def token2wav(request: Request) -> Response:
            body = await request.json()
            self.vocoder_requests.append(body)
            audio = np.full(len(body["tokens"]) * SAMPLES_PER_TOKEN, 0.25, dtype=np.float32)
            return Response(encode_wav(audio, VOCODER_RATE), media_type="audio/wav")

        return app

    def _calls(self, reply: Reply, index: int) -> list[dict[str, Any]]:
        return [
            {"id": f"call_{index}_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(reply.calls)
        ]

    def _message(self, reply: Reply, index: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if reply.tts else reply.text}
        if reply.tts:
            audio = "".join(f"<audio_{t}>" for t in reply.audio)
            message["tts_content"] = {"tts_text": reply.text, "tts_audio": audio}
        if reply.calls:
            message["tool_calls"] = self._calls(reply, index)
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message}],
            "usage": usage,
        }

    def _sse(self, reply: Reply, index: int) -> Iterator[str]:
        def chunk(delta: dict[str, Any], **extra: Any) -> str:
            return (
                "data: "
                + json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra})
                + "\n\n"
            )

        yield ": keep-alive\n\n"
        yield chunk({"role": "assistant", "content": ""})
        pieces = [reply.text[i : i + self.piece_chars] for i in range(0, len(reply.text), self.piece_chars)]
        size = -(-len(reply.audio) // max(1, len(pieces)))  # in order, spread over the text pieces
        audio = [reply.audio[i * size : (i + 1) * size] for i in range(max(1, len(pieces)))]
        for i, piece in enumerate(pieces or [""]):
            if reply.tts:
                tokens = "".join(f"<audio_{t}>" for t in (audio[i] if i < len(audio) else []))
                yield chunk({"tts_content": {"tts_text": piece, "tts_audio": tokens}})
            elif piece:
                yield chunk({"content": piece})
        for i, call in enumerate(self._calls(reply, index)):
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        yield "data: " + json.dumps({"object": "chat.completion.chunk", "choices": [], "usage": usage}) + "\n\n"
        yield "data: [DONE]\n\n"


@contextlib.contextmanager
def serving() -> Iterator[tuple[FakeServer, str]]:
    """A FakeServer on a loopback port: the fake and its base URL."""
    fake = FakeServer()
    with running_server(fake.app()) as url:
        yield fake, url
