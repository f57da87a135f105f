"""One realtime response: a turn's typed events written out as OpenAI Realtime server events.

A response's output is a list of items: an `mcp_call` item per voicegraph tool call
(server_label "voicegraph": the server ran it, the client has nothing to answer), then
the assistant's message, begun with its first audio (or text) and closed at the end. It
remembers what it said at which point of its audio, so that a cut answer can be kept as
far as it was heard.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

import numpy as np

from agent.events import AnswerText, Audio, Heard, ToolCalled, ToolFinished, TurnDone, TurnEvent, TurnFailed
from agent.runner import TurnRequest
from api.errors import error_answer
from api.realtime_protocol import RealtimeConfig, encode_pcm16, new_id
from api.realtime_protocol import server_event as ev

__all__ = ["PendingInput", "Response", "Spoken"]

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class PendingInput:
    """Input the next response answers: a user message (typed or spoken), or the outputs of
    the calls the client ran."""

    transcript: str
    audio: np.ndarray | None = None
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def request(self, config: RealtimeConfig, *, session_id: str, tenant: str) -> TurnRequest:
        """The agent's turn for this input, as the session's configuration asks for it."""
        given: dict[str, Any]
        if self.outputs:
            given = {"tool_outputs": tuple(self.outputs)}
        elif self.audio is not None:
            given = {"audio": self.audio, "transcript": self.transcript}
        else:
            given = {"text": self.transcript}
        voice = config.audio.output.voice
        return TurnRequest(
            session_id=session_id,
            tenant=tenant,
            speak=config.speaks,
            voice=None if voice in (None, "", "default") else voice,
            instructions=config.instructions,
            tool_choice=config.tool_choice,
            client_tools=config.client_tools(),
            **given,
        )


@dataclass
class Spoken:
    """What a response said, piece by piece, at which point of its audio."""

    pieces: list[tuple[float, str]] = field(default_factory=list)
    """(ms into the audio where the piece begins, its text)."""
    sent_ms: float = 0.0
    first_sent: float | None = None
    stopped_ms: float | None = None
    """Where playback was cut (the response was cancelled): it goes no further."""

    def heard(self, audio_end_ms: float) -> str:
        """The text said before `audio_end_ms`; a piece cut short keeps its share of words."""
        said: list[str] = []
        for index, (start, text) in enumerate(self.pieces):
            if start >= audio_end_ms:
                break
            end = self.pieces[index + 1][0] if index + 1 < len(self.pieces) else self.sent_ms
            share = 1.0 if end <= audio_end_ms else (audio_end_ms - start) / max(end - start, 1.0)
            words = text.split()
            said.append(" ".join(words[: math.floor(len(words) * share + 1e-9)]))
        return " ".join(part for part in said if part).strip()

    def played_ms(self) -> float:
        """How far a client playing the audio in real time from its first delta has got."""
        if self.stopped_ms is not None:
            return self.stopped_ms
        if self.first_sent is None:
            return 0.0
        return min(self.sent_ms, (time.monotonic() - self.first_sent) * 1000)

    def stop(self) -> None:
        """Playback was cut here (the client dropped what it had not played)."""
        self.stopped_ms = self.played_ms()

    def heard_so_far(self) -> str:
        return self.heard(self.played_ms())

    def still_playing(self) -> bool:
        return self.stopped_ms is None and self.played_ms() < self.sent_ms


@dataclass
class Response:
    id: str
    request: TurnRequest
    transcript: str
    send: Send
    client_tools: set[str]
    """Functions the client runs: a call to one is a function_call item for it to answer."""
    previous_item: str | None = None
    """The conversation's item before this response's message."""
    on_complete: Callable[[Response], None] | None = None
    """Told when the response has completed, before `response.done` goes out."""
    output: list[dict[str, Any]] = field(default_factory=list)
    message: dict[str, Any] | None = None
    spoken: Spoken = field(default_factory=Spoken)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "in_progress"
    text: list[str] = field(default_factory=list)

    def public(self, usage: dict[str, Any] | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "realtime.response",
            "status": self.status,
            "status_details": details,
            "output": self.output,
            "output_modalities": ["audio" if self.speaks else "text"],
            "usage": usage,
        }

    async def on_event(self, event: TurnEvent) -> None:
        match event:
            case Heard():
                pass  # told already, as the user item's transcription
            case ToolCalled():
                await self._called(event)
            case ToolFinished():
                await self._finished(event)
            case AnswerText(text=text):
                if not self.speaks:
                    await self._begin_message("output_text")
                    self.text.append(text)
                    await self._delta("response.output_text.delta", delta=text)
            case Audio():
                await self._audio(event)
            case TurnDone(result=result, tokens=tokens):
                await self.done(result["answer"], tokens)
            case TurnFailed(error=error):
                await self.failed(error)
            case _:
                assert_never(event)

    @property
    def speaks(self) -> bool:
        return self.request.speak

    async def _called(self, event: ToolCalled) -> None:
        arguments = json.dumps(event.call["arguments"], ensure_ascii=False)
        if event.call["name"] in self.client_tools:
            return await self._client_call(event, arguments)
        item: dict[str, Any] = {"id": new_id("item"), "type": "mcp_call", "server_label": "voicegraph"}
        item.update(name=event.call["name"], arguments=arguments, output=None, error=None)
        self.calls[event.call["id"]] = item
        index = len(self.output)
        self.output.append(item)
        common = {"response_id": self.id, "output_index": index}
        await self.send(ev("response.output_item.added", **common, item=item))
        await self.send(ev("response.mcp_call_arguments.done", **common, item_id=item["id"], arguments=arguments))
        await self.send(ev("response.mcp_call.in_progress", output_index=index, item_id=item["id"]))

    async def _client_call(self, event: ToolCalled, arguments: str) -> None:
        call_id, name = event.call["id"], event.call["name"]
        item: dict[str, Any] = {"id": new_id("item"), "type": "function_call", "object": "realtime.item"}
        item.update(status="completed", call_id=call_id, name=name, arguments=arguments)
        index = len(self.output)
        self.output.append(item)
        common = {"response_id": self.id, "output_index": index, "item_id": item["id"], "call_id": call_id}
        await self.send(ev("response.output_item.added", response_id=self.id, output_index=index, item=item))
        await self.send(ev("response.function_call_arguments.delta", **common, delta=arguments))
        await self.send(ev("response.function_call_arguments.done", **common, name=name, arguments=arguments))
        await self.send(ev("response.output_item.done", response_id=self.id, output_index=index, item=item))

    async def _finished(self, event: ToolFinished) -> None:
        record = event.record
        item = self.calls.get(record["id"])
        if item is None:
            return
        index = self.output.index(item)
        ok = record["status"] == "ok"
        item.update(output=f"{record['name']}: ok" if ok else None, error=record["error"])
        await self.send(
            ev(f"response.mcp_call.{'completed' if ok else 'failed'}", output_index=index, item_id=item["id"])
        )
        await self.send(ev("response.output_item.done", response_id=self.id, output_index=index, item=item))

    async def _begin_message(self, part_type: str) -> dict[str, Any]:
        """The assistant's message item, begun on first use."""
        if self.message is None:
            audio = part_type == "output_audio"
            part = {"type": part_type, "transcript" if audio else "text": ""}
            item: dict[str, Any] = {"id": new_id("item"), "type": "message", "object": "realtime.item"}
            item.update(role="assistant", status="in_progress", content=[part])
            self.message = item
            self.output.append(item)
            common = {"response_id": self.id, "output_index": len(self.output) - 1}
            await self.send(ev("response.output_item.added", **common, item=item))
            await self.send(ev("conversation.item.added", previous_item_id=self.previous_item, item=item))
            await self._delta("response.content_part.added", part=_part(part))
        return self.message

    async def _delta(self, kind: str, **fields: Any) -> None:
        assert self.message is not None
        common = {
            "response_id": self.id,
            "item_id": self.message["id"],
            "output_index": self.output.index(self.message),
        }
        await self.send(ev(kind, **common, content_index=0, **fields))

    async def _audio(self, event: Audio) -> None:
        message = await self._begin_message("output_audio")
        spoken = self.spoken
        if event.text:
            piece = event.text if not spoken.pieces else " " + event.text
            spoken.pieces.append((spoken.sent_ms, event.text))
            message["content"][0]["transcript"] += piece
            await self._delta("response.output_audio_transcript.delta", delta=piece)
        data, ms = encode_pcm16(event.audio, event.sample_rate)
        await self._delta("response.output_audio.delta", delta=data)
        spoken.sent_ms += ms
        spoken.first_sent = spoken.first_sent or time.monotonic()

    async def close_message(self, status: str) -> None:
        message = self.message
        if message is None:
            return
        part = message["content"][0]
        message["status"] = status
        if part["type"] == "output_audio":
            await self._delta("response.output_audio.done")
            await self._delta("response.output_audio_transcript.done", transcript=part["transcript"])
        else:
            part["text"] = "".join(self.text)
            await self._delta("response.output_text.done", text=part["text"])
        await self._delta("response.content_part.done", part=_part(part))
        index = self.output.index(message)
        await self.send(ev("response.output_item.done", response_id=self.id, output_index=index, item=message))
        await self.send(ev("conversation.item.done", previous_item_id=self.previous_item, item=message))

    async def done(self, answer: str, tokens: Mapping[str, int]) -> None:
        if self.message is None and answer:  # nothing was said: the answer as text
            await self._begin_message("output_text")
            self.text.append(answer)
        await self.close_message("completed")
        self.status = "completed"
        if self.on_complete is not None:
            self.on_complete(self)
        usage = {
            "total_tokens": tokens.get("input", 0) + tokens.get("output", 0),
            "input_tokens": tokens.get("input", 0),
            "output_tokens": tokens.get("output", 0),
            "input_token_details": {"cached_tokens": tokens.get("cached", 0)},
        }
        await self.send(ev("response.done", response=self.public(usage)))

    async def failed(self, error: Exception) -> None:
        status, detail = error_answer(error, "realtime")
        kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
        body = {"type": kind, "code": str(status), "message": detail, "param": None, "event_id": None}
        await self.send(ev("error", error=body))
        await self.close_message("incomplete")
        self.status = "failed"
        await self.send(ev("response.done", response=self.public(details={"type": "failed", "error": body})))

    async def cancelled(self, reason: str) -> None:
        self.status = "cancelled"
        await self.close_message("incomplete")
        await self.send(ev("response.done", response=self.public(details={"type": "cancelled", "reason": reason})))


def _part(content: dict[str, Any]) -> dict[str, Any]:
    """A message's content part as content_part events name it ("audio", "text")."""
    return {**content, "type": "audio" if content["type"] == "output_audio" else "text"}
