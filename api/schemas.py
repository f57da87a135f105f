"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.runner import MAX_TEXT_CHARS
from api.kb_schemas import BaseNames

__all__ = [
    "CitationPublic",
    "DeliveryPublic",
    "Health",
    "ParalinguisticsPublic",
    "Problem",
    "Ready",
    "SessionPublic",
    "SessionSummary",
    "SessionTurnPublic",
    "SessionsPublic",
    "SpanPublic",
    "ToolCallPublic",
    "TracePublic",
    "TracesPublic",
    "TurnCreate",
    "TurnPublic",
]


class TurnCreate(BaseModel):
    """A text turn. (An audio turn is multipart/form-data with an `audio` file part.)"""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    speak: bool = True
    """Return the answer as audio too."""
    knowledge_bases: BaseNames | None = None
    """The knowledge bases this turn may search (at most 16); omitted: all of the tenant's."""
    voice: str | None = Field(default=None, max_length=200)
    """Speak in this voice (an id from GET /v1/voices) from this turn on; "": the default voice."""


class Problem(BaseModel):
    """Every error the service answers (but /v1/chat/completions, which answers in OpenAI's shape)."""

    detail: str
    """What is wrong, in a sentence: the field and the rule, the limit and its setting, ..."""


class CitationPublic(BaseModel):
    id: str
    source: str
    title: str
    snippet: str
    url: str | None = None
    doc_id: str | None = None


class ToolCallPublic(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]
    status: str
    duration_ms: float
    error: str | None = None
    attempts: int = 1


class DeliveryPublic(BaseModel):
    pitch: float
    """Factor on the session voice's pitch for this reply (1.0: as it is)."""
    rate: float
    """Factor on its speaking rate."""


class ParalinguisticsPublic(BaseModel):
    """How a spoken turn was said, measured from its audio."""

    speech_s: float
    """Time spoken, pauses left out."""
    pauses: int
    """Silences of 250 ms or more between words."""
    pause_s: float
    loudness_dbfs: float | None
    """RMS level of the speech in dB full scale."""
    pitch_hz: float | None
    """Median pitch; null when nothing was voiced."""
    pitch_range_st: float | None
    """Between the 10th and 90th percentile of the pitch, in semitones."""
    pitch_end: Literal["rising", "falling", "level"] | None
    rate_wps: float | None
    """Words per second spoken."""
    hesitations: int
    """Filler words and words said twice in a row."""
    cue: str
    """The line the planner read after the words ("spoken faster than before; pitch higher
    than before"); "" when nothing stood out, against the speaker's earlier turns where there
    are some."""
    delivery: DeliveryPublic | None
    """How the reply's voice followed the cue; null: the session voice as it is."""


class TurnFields(BaseModel):
    """What a turn answered: shared by the turn's response and the session's turn log."""

    turn: int
    transcript: str
    paralinguistics: ParalinguisticsPublic | None = None
    """How the turn was said; null for a typed turn."""
    answer: str
    citations: list[CitationPublic]
    tool_calls: list[ToolCallPublic]
    voice: str | None
    """The session voice after this turn; null: the default voice."""
    timings_ms: dict[str, float]
    trace_id: str | None = None
    """The turn's trace: GET /v1/sessions/{id}/traces, `voicegraph trace`, and OTLP when exported."""


class TurnPublic(TurnFields):
    session_id: str
    audio_wav_b64: str | None = None
    """The spoken answer as a base64 WAV file; null when not spoken."""
    sample_rate: int | None = None


class Health(BaseModel):
    status: str
    planner: str
    speech_native: bool
    tools: list[str]


class Ready(BaseModel):
    status: str
    memory: str
    """The session memory that answered: sqlite, redis or memory."""


class SessionSummary(BaseModel):
    session_id: str
    created_at: datetime
    updated_at: datetime
    """When the last turn landed; an idle session expires `VOICEGRAPH_SESSION_TTL_S` later."""
    turns: int


class SessionsPublic(BaseModel):
    sessions: list[SessionSummary]
    """The caller's tenant's sessions, most recently updated first."""


class SessionTurnPublic(TurnFields):
    """A kept turn as it was answered (without its audio)."""

    at: datetime


class SessionPublic(BaseModel):
    session_id: str
    created_at: datetime
    updated_at: datetime
    turn_count: int
    """Turns the session has had; `turns` keeps the last `VOICEGRAPH_MAX_STORED_TURNS` of them."""
    voice: str | None = None
    """The session voice now (after its last turn); null: the default voice."""
    turns: list[SessionTurnPublic]
    """Oldest first."""


class SpanPublic(BaseModel):
    name: str
    """turn, listen, asr, plan, execute_tool NAME, speak, synthesize."""
    span_id: str
    start_ms: float
    """When the span started, after the start of its turn."""
    duration_ms: float
    status: Literal["ok", "error"]
    error: str | None = None
    attributes: dict[str, Any]
    """OpenTelemetry GenAI attributes (gen_ai.*, error.type) and voicegraph.* figures."""
    children: list[SpanPublic]
    """In the order they started; they may overlap (the answer is spoken while it streams)."""


class TracePublic(BaseModel):
    trace_id: str
    turn: int | None
    status: Literal["ok", "error"]
    """error: the turn failed and left the session as it was; `error` and error.type say why."""
    error: str | None = None
    started_at: float
    """Seconds since the epoch."""
    duration_ms: float
    root: SpanPublic


class TracesPublic(BaseModel):
    session_id: str
    traces: list[TracePublic]
    """One per turn (failed ones too), oldest first; the last `VOICEGRAPH_MAX_STORED_TURNS` are kept."""
