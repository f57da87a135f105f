"""The OpenAI Realtime protocol (GA event names) as voicegraph speaks it: the session's
settings, the client events it reads, the server events and items it writes, and audio.

Audio is pcm16 mono at 24 kHz, base64, both ways; inside, hearing runs at 16 kHz and the
voice at its own rate, so audio is resampled at the edge. A client event that does not
parse gets an `error` event naming what is wrong, and the connection goes on.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.audio import SAMPLE_RATE, resample
from model.base import ToolSpecDict
from model.turn_detection import TurnDetector

__all__ = [
    "WIRE_RATE",
    "ClientError",
    "RealtimeConfig",
    "TurnDetection",
    "decode_pcm16",
    "encode_pcm16",
    "function_output",
    "new_id",
    "parse_client_event",
    "server_event",
    "user_message",
]

WIRE_RATE = 24_000
"""The sample rate of audio on the wire, both ways."""
MAX_EVENT_BYTES = 15 * 1024 * 1024
"""The largest client event read (OpenAI's own limit for one append)."""

_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """A unique id such as `item_3f9c…`, in the style of the protocol's ids."""
    return f"{prefix}_{secrets.token_hex(6)}{next(_counter):04d}"


def server_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": new_id("event"), **fields}


class ClientError(Exception):
    """A client event that cannot be taken: sent back as an `error` event."""

    def __init__(self, message: str, *, code: str = "invalid_request_error", param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param
        self.event_id: str | None = None

    def event(self) -> dict[str, Any]:
        error = {"type": "invalid_request_error", "code": self.code, "message": self.message, "param": self.param}
        return server_event("error", error={**error, "event_id": self.event_id})


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TurnDetection(_Loose):
    """`server_vad`: the server hears when a turn ends (and when the user barges in)."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    prefix_padding_ms: int = Field(default=300, ge=0, le=2000)
    silence_duration_ms: int = Field(default=500, ge=100, le=5000)
    create_response: bool = True
    interrupt_response: bool = True

    def detector(self) -> TurnDetector:
        return TurnDetector(
            threshold=self.threshold, prefix_ms=self.prefix_padding_ms, silence_ms=self.silence_duration_ms
        )


class _AudioFormat(_Loose):
    type: str = "audio/pcm"
    rate: int = WIRE_RATE


class _Transcription(_Loose):
    model: str | None = None
    language: str | None = None


class _Input(_Loose):
    format: _AudioFormat | None = None
    turn_detection: TurnDetection | None = Field(default_factory=lambda: TurnDetection())
    transcription: _Transcription | None = None


class _Output(_Loose):
    format: _AudioFormat | None = None
    voice: str | None = None


class _Audio(_Loose):
    input: _Input = Field(default_factory=_Input)
    output: _Output = Field(default_factory=_Output)


Modality = Literal["audio", "text"]


class FunctionTool(_Loose):
    """A tool the client runs itself: the server asks for it with a function_call item."""

    type: Literal["function"] = "function"
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class RealtimeConfig(_Loose):
    """The session's settings, as `session.update` sets them and `session.updated` reports them."""

    type: Literal["realtime"] = "realtime"
    instructions: str = Field(default="", max_length=8000)
    output_modalities: list[Modality] = Field(default_factory=lambda: list[Modality](["audio"]))
    audio: _Audio = Field(default_factory=_Audio)
    tools: list[FunctionTool] = Field(default_factory=list, max_length=32)
    tool_choice: Literal["auto", "none"] = "auto"

    def merged(self, update: dict[str, Any]) -> RealtimeConfig:
        """These settings with the fields `update` names replaced (the rest kept)."""
        current = self.model_dump()
        _deep_merge(current, update)
        try:
            config = RealtimeConfig.model_validate(current)
        except ValidationError as error:
            raise _invalid(error, "session") from error
        for side in (config.audio.input.format, config.audio.output.format):
            if side is not None and (side.type != "audio/pcm" or side.rate != WIRE_RATE):
                raise ClientError("only audio/pcm at 24000 Hz is supported", param="session.audio")
        return config

    def public(self, session_id: str, model: str) -> dict[str, Any]:
        body = self.model_dump()
        body["audio"]["input"]["format"] = body["audio"]["output"]["format"] = {"type": "audio/pcm", "rate": WIRE_RATE}
        return {"id": session_id, "object": "realtime.session", "model": model, **body}

    def client_tools(self) -> tuple[ToolSpecDict, ...]:
        return tuple(ToolSpecDict(name=t.name, description=t.description, parameters=t.parameters) for t in self.tools)

    @property
    def speaks(self) -> bool:
        return "audio" in self.output_modalities

    @property
    def transcribes(self) -> bool:
        return self.audio.input.transcription is not None


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _invalid(error: ValidationError, prefix: str) -> ClientError:
    first = error.errors()[0]
    where = ".".join(str(part) for part in (prefix, *first["loc"]))
    return ClientError(f"{where}: {first['msg']}", param=where)


CLIENT_EVENTS = {
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "response.create",
    "response.cancel",
}


def parse_client_event(raw: str | bytes) -> dict[str, Any]:
    """A client event as a dict with a known `type`; ClientError says what is wrong with it."""
    if len(raw) > MAX_EVENT_BYTES:
        raise ClientError(f"an event may be at most {MAX_EVENT_BYTES} bytes")
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ClientError(f"the event is not JSON: {error}") from error
    if not isinstance(event, dict):
        raise ClientError("an event is a JSON object with a 'type'")
    kind = event.get("type")
    if kind not in CLIENT_EVENTS:
        raise ClientError(f"unknown event type {kind!r}", code="unknown_event", param="type")
    event_id = event.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise ClientError("event_id must be a string", param="event_id")
    return event


def user_message(item: Any) -> tuple[list[str], np.ndarray | None]:
    """A `conversation.item.create` user message: its texts, and its audio (16 kHz) if any."""
    if not isinstance(item, dict) or item.get("type", "message") != "message" or item.get("role") != "user":
        raise ClientError("conversation.item.create takes a user message or a function_call_output", param="item")
    texts: list[str] = []
    audio: list[np.ndarray] = []
    for part in item.get("content") or []:
        if isinstance(part, dict) and part.get("type") == "input_text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and part.get("type") == "input_audio":
            audio.append(decode_pcm16(part.get("audio"), param="item.content.audio"))
        else:
            raise ClientError("a user message's content is input_text or input_audio parts", param="item.content")
    return texts, np.concatenate(audio) if audio else None


def function_output(item: dict[str, Any]) -> tuple[str, str]:
    """A `function_call_output` item's call id and output."""
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str) or not isinstance(output, str):
        raise ClientError("a function_call_output has a call_id and an output, both strings", param="item")
    return call_id, output


def decode_pcm16(data: Any, *, param: str = "audio") -> np.ndarray:
    """Base64 pcm16 at 24 kHz as 16 kHz float32."""
    if not isinstance(data, str):
        raise ClientError(f"{param} must be base64 pcm16 audio", param=param)
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as error:
        raise ClientError(f"{param} is not valid base64", param=param) from error
    if len(raw) % 2:
        raise ClientError(f"{param} must hold whole 16-bit samples", param=param)
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return resample(samples, WIRE_RATE, SAMPLE_RATE)


def encode_pcm16(audio: np.ndarray, sample_rate: int) -> tuple[str, float]:
    """Float32 audio as base64 pcm16 at 24 kHz, and its length in ms."""
    wire = resample(np.asarray(audio, np.float32), sample_rate, WIRE_RATE)
    pcm = (np.clip(wire, -1.0, 1.0) * 32767.0).astype("<i2")
    return base64.b64encode(pcm.tobytes()).decode("ascii"), len(pcm) * 1000 / WIRE_RATE
