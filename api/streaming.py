"""A turn as server-sent events: what the agent hears, calls, writes and says, as it happens.

    event: transcript   {"text"}                         what was heard (or typed)
    event: tool_call    {"id", "name", "arguments"}      a call the planner made
    event: tool_result  {"id", "name", ..., "status"}    how it went (as in `tool_calls`)
    event: text         {"text"}                         the answer as the planner writes it
    event: audio        {"audio_wav_b64", "sample_rate", "text"}  the spoken reply, chunk by chunk;
                                                     `text`: what the chunk begins to say ("" goes on)
    event: result       the turn, exactly as the JSON endpoint answers it (whole audio included)
    event: error        {"status", "detail"}             instead of `result` when the turn failed

Everything that can be refused before the turn starts (bad input, a busy session, a
wrong key) is refused with an ordinary HTTP error, not a stream: the first event is
awaited before the response begins. A client that goes away mid-turn cancels it, and the
session is left as it was.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, assert_never

import anyio
from fastapi.responses import StreamingResponse

from agent.events import AnswerText, Audio, Heard, ToolCalled, ToolFinished, TurnDone, TurnEvent, TurnFailed
from agent.outcome import ReplyAudio, TurnOutput
from agent.runner import TurnRequest, TurnRunner
from api.errors import error_answer
from api.schemas import TurnPublic
from model.audio import encode_wav

__all__ = ["EVENT_STREAM", "public_turn", "stream_turn"]

EVENT_STREAM = "text/event-stream"


def public_turn(output: TurnOutput) -> TurnPublic:
    """The turn's answer over HTTP: its result and the spoken reply as a base64 WAV."""
    result: dict[str, Any] = dict(output.result)
    if output.audio.size:
        result["audio_wav_b64"] = base64.b64encode(encode_wav(output.audio, output.sample_rate)).decode("ascii")
        result["sample_rate"] = output.sample_rate
    return TurnPublic.model_validate(result)


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _encode(event: TurnEvent, audio: ReplyAudio, where: str) -> bytes:
    match event:
        case Heard(text=text):
            return _event("transcript", {"text": text})
        case AnswerText(text=text):
            return _event("text", {"text": text})
        case ToolCalled(call=call):
            return _event("tool_call", dict(call))
        case ToolFinished(record=record):
            return _event("tool_result", dict(record))
        case Audio():
            audio.add(event.audio, event.sample_rate)
            wav = base64.b64encode(encode_wav(event.audio, event.sample_rate)).decode("ascii")
            return _event("audio", {"audio_wav_b64": wav, "sample_rate": event.sample_rate, "text": event.text})
        case TurnDone(result=result):
            return _event("result", public_turn(audio.output(result)).model_dump(mode="json"))
        case TurnFailed(error=error):
            status, detail = error_answer(error, where)
            return _event("error", {"status": status, "detail": detail})
        case _:
            assert_never(event)


async def stream_turn(
    agent: TurnRunner, turn: TurnRequest, where: str, ended: Callable[[], None] = lambda: None
) -> StreamingResponse:
    """The turn's events as a text/event-stream response; raises, as the JSON endpoint does,
    whatever refuses the turn before its first event. `ended` is called once the turn is over."""
    events = agent.stream_turn(turn)
    try:
        first = await anext(events)
    except BaseException:
        ended()
        raise

    async def body() -> AsyncIterator[bytes]:
        audio = ReplyAudio()
        try:
            yield _encode(first, audio, where)
            async for event in events:
                yield _encode(event, audio, where)
        except Exception as exc:
            status, detail = error_answer(exc, where)
            yield _event("error", {"status": status, "detail": detail})
        finally:
            with anyio.CancelScope(shield=True):  # a client gone mid-turn still gets its session rolled back
                await events.aclose()
            ended()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=EVENT_STREAM, headers=headers)
