"""`POST /v1/chat/completions` for clients of OpenAI's audio Chat Completions: the agent,
stateless, with `input_audio` parts in and the spoken answer out.

The request carries the whole conversation. Its system (or developer) messages become the
agent's instructions, its earlier user and assistant messages are laid down as the turns
of a session of its own, and its last message, a user's (text or `input_audio`), is the
turn the agent runs, with its tools; the session is forgotten afterwards. With `modalities`
["text", "audio"] the answer comes as `message.audio` (`data`, base64 in `audio.format`,
and `transcript`), and `message.content` is null, as OpenAI answers; with `stream` the
answer comes as chunks (audio as pcm16 at 24 kHz), then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field

from agent.events import AnswerText, Audio, Heard, ToolCalled, ToolFinished, TurnDone, TurnEvent, TurnFailed
from agent.runner import TurnRequest, TurnRunner
from agent.session_service import SessionService
from api.errors import error_answer
from api.realtime_protocol import encode_pcm16, new_id
from api.settings import Settings
from model.audio import decode_audio, encode_wav
from model.errors import InputError

__all__ = ["ChatRequest", "completion", "completion_chunks"]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _InputAudio(_Loose):
    data: str = Field(max_length=20 * 1024 * 1024)
    format: Literal["wav", "mp3"] = "wav"


class _Part(_Loose):
    type: Literal["text", "input_audio"]
    text: str | None = None
    input_audio: _InputAudio | None = None


class _Message(_Loose):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_Part] | None = None


class _AudioOut(_Loose):
    voice: str | None = None
    format: Literal["wav", "pcm16"] = "wav"


class ChatRequest(_Loose):
    model: str = "voicegraph"
    messages: list[_Message] = Field(min_length=1, max_length=200)
    modalities: list[Literal["text", "audio"]] = Field(default_factory=lambda: list[Literal["text", "audio"]](["text"]))
    audio: _AudioOut | None = None
    stream: bool = False

    @property
    def speaks(self) -> bool:
        return "audio" in self.modalities


def _text(message: _Message) -> str:
    if isinstance(message.content, str) or message.content is None:
        return (message.content or "").strip()
    return " ".join((part.text or "").strip() for part in message.content if part.type == "text").strip()


def _has_audio(message: _Message) -> bool:
    return not isinstance(message.content, str) and any(p.input_audio is not None for p in message.content or [])


def _audio(message: _Message, settings: Settings) -> Any:
    parts = [p.input_audio for p in message.content or [] if not isinstance(p, str) and p.input_audio is not None]
    if not parts:
        return None
    if len(parts) > 1:
        raise InputError("a message takes at most one input_audio part")
    try:
        data = base64.b64decode(parts[0].data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InputError("input_audio.data is not valid base64") from error
    if len(data) > settings.max_upload_bytes:
        raise InputError(f"input_audio is larger than {settings.max_upload_bytes} bytes")
    return decode_audio(data, max_seconds=settings.max_audio_seconds)


async def _prepare(
    agent: TurnRunner, sessions: SessionService, body: ChatRequest, tenant: str, settings: Settings
) -> TurnRequest:
    """The last message as a turn, on a session holding the conversation before it."""
    *earlier, last = body.messages
    if last.role != "user":
        raise InputError("the last message must be the user's")
    instructions = "\n\n".join(_text(m) for m in earlier if m.role in ("system", "developer") and _text(m))
    audio = await asyncio.to_thread(_audio, last, settings)
    text = _text(last)
    voice = body.audio.voice if body.audio and body.audio.voice not in (None, "default") else None
    session = new_id("chat")
    given: dict[str, Any] = {"audio": audio} if audio is not None else {"text": text}
    request = TurnRequest(session, tenant=tenant, speak=body.speaks, voice=voice, instructions=instructions, **given)
    agent.validate(request)
    try:
        await _lay_down(agent, request, [m for m in earlier if m.role in ("user", "assistant")])
    except BaseException:
        await sessions.delete_session(tenant, session)
        raise
    return request


async def _lay_down(agent: TurnRunner, request: TurnRequest, turns: list[_Message]) -> None:
    """The conversation before its last message, as the session's turns."""
    for index, message in enumerate(turns):
        if message.role != "user":
            continue
        if _has_audio(message):
            raise InputError("only the last message may carry input_audio; send earlier turns as text")
        following = turns[index + 1] if index + 1 < len(turns) else None
        answer = _text(following) if following and following.role == "assistant" else ""
        if _text(message):
            await agent.record_exchange(request, _text(message), answer)


def _usage(tokens: dict[str, int]) -> dict[str, Any]:
    prompt, completion_ = tokens.get("input", 0), tokens.get("output", 0)
    details = {"cached_tokens": tokens.get("cached", 0)}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_,
        "total_tokens": prompt + completion_,
        "prompt_tokens_details": details,
    }


async def completion(
    agent: TurnRunner, sessions: SessionService, body: ChatRequest, tenant: str, settings: Settings
) -> dict[str, Any]:
    request = await _prepare(agent, sessions, body, tenant, settings)
    try:
        output = await agent.run_turn(request)
    finally:
        await sessions.delete_session(tenant, request.session_id)
    answer, tokens = output.result["answer"], dict(output.tokens)
    message: dict[str, Any] = {"role": "assistant", "content": answer, "refusal": None}
    if body.speaks and output.audio.size:
        if body.audio and body.audio.format == "pcm16":
            data, _ = encode_pcm16(output.audio, output.sample_rate)
        else:
            data = base64.b64encode(encode_wav(output.audio, output.sample_rate)).decode("ascii")
        message.update(
            content=None,
            audio={"id": new_id("audio"), "data": data, "transcript": answer, "expires_at": int(time.time()) + 3600},
        )
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(tokens),
    }


async def completion_chunks(
    agent: TurnRunner, sessions: SessionService, body: ChatRequest, tenant: str, settings: Settings
) -> AsyncIterator[bytes]:
    """The answer as server-sent chunks; what refuses the request is raised before the first."""
    request = await _prepare(agent, sessions, body, tenant, settings)
    events = agent.stream_turn(request)
    try:
        first = await anext(events)
    except BaseException:
        await sessions.delete_session(tenant, request.session_id)
        raise

    async def chunks() -> AsyncIterator[bytes]:
        base = {
            "id": new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.model,
        }
        audio_id = new_id("audio")

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return f"data: {json.dumps({**base, 'choices': [choice], **extra})}\n\n".encode()

        try:
            yield chunk({"role": "assistant", "content": None if body.speaks else ""})
            pending: list[TurnEvent] = [first]
            while True:
                event = pending.pop() if pending else await anext(events, None)
                if event is None:
                    break
                match event:
                    case AnswerText(text=text) if not body.speaks:
                        yield chunk({"content": text})
                    case Audio() if body.speaks:
                        data, _ = encode_pcm16(event.audio, event.sample_rate)
                        piece = {"id": audio_id, "data": data}
                        if event.text:
                            piece["transcript"] = event.text + " "
                        yield chunk({"audio": piece})
                    case TurnDone(tokens=tokens):
                        yield chunk({}, "stop", usage=_usage(dict(tokens)))
                    case TurnFailed(error=error):
                        status, detail = error_answer(error, "POST /v1/chat/completions")
                        yield f"data: {json.dumps({'error': {'message': detail, 'code': status}})}\n\n".encode()
                    case Heard() | ToolCalled() | ToolFinished() | AnswerText() | Audio():
                        pass
                    case _:
                        assert_never(event)
            yield b"data: [DONE]\n\n"
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()
            await sessions.delete_session(tenant, request.session_id)

    return chunks()
