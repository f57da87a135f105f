"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.runner import MAX_TEXT_CHARS

__all__ = ["CitationPublic", "Health", "ToolCallPublic", "TurnCreate", "TurnPublic"]


class TurnCreate(BaseModel):
    """A text turn. (An audio turn is multipart/form-data with an `audio` file part.)"""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    speak: bool = True
    """Return the answer as audio too."""
    knowledge_bases: list[str] | None = None
    """The knowledge bases this turn may search; omitted: all of the tenant's."""


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


class TurnPublic(BaseModel):
    session_id: str
    turn: int
    transcript: str
    answer: str
    citations: list[CitationPublic]
    tool_calls: list[ToolCallPublic]
    voice: str | None
    timings_ms: dict[str, float]
    audio_wav_b64: str | None = None
    """The spoken answer as a base64 WAV file; null when not spoken."""
    sample_rate: int | None = None


class Health(BaseModel):
    status: str
    planner: str
    speech_native: bool
    tools: list[str]
