"""Runs one turn of a session through the graph and reports it as a TurnResult.

A turn either lands whole or leaves the session as it was: input is checked before the
graph runs, and if the graph fails midway the thread is restored to its state before the
turn. Turns of one session run one at a time (in this process).
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import numpy as np
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from agent.context import AgentDeps, TurnContext
from agent.graph import build_graph
from agent.speech import SentenceSpeaker
from agent.state import fresh_turn
from model.audio import resample
from model.errors import InputError
from tools.base import Citation
from tools.runtime import CallRecord

__all__ = ["MAX_TEXT_CHARS", "Agent", "TurnOutput", "TurnRequest", "TurnResult", "validate_session_id"]

MAX_TEXT_CHARS = 4000
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BAD_SESSION_ID = "session id must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def validate_session_id(session_id: str) -> None:
    if not _SESSION_ID.match(session_id):
        raise InputError(BAD_SESSION_ID)


@dataclass(frozen=True)
class TurnRequest:
    session_id: str
    text: str | None = None
    audio: np.ndarray | None = None
    """16 kHz mono float32, decoded and within limits (see model.audio.decode_audio)."""
    tenant: str = "local"
    speak: bool = True
    knowledge_bases: tuple[str, ...] | None = None


class TurnResult(TypedDict):
    session_id: str
    turn: int
    transcript: str
    answer: str
    citations: list[Citation]
    tool_calls: list[CallRecord]
    voice: str | None
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class TurnOutput:
    result: TurnResult
    audio: np.ndarray
    """The spoken reply, float32 mono at `sample_rate`; empty when not spoken."""
    sample_rate: int


class Agent:
    """The graph with its deps and memory; the one object both faces (HTTP, CLI) call."""

    def __init__(self, deps: AgentDeps, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self.deps = deps
        self.checkpointer = checkpointer
        self.graph = build_graph(checkpointer)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @staticmethod
    def validate(request: TurnRequest) -> None:
        validate_session_id(request.session_id)
        if (request.text is None) == (request.audio is None):
            raise InputError("a turn takes either text or audio, not both or neither")
        if request.text is not None:
            if not request.text.strip():
                raise InputError("text is empty")
            if len(request.text) > MAX_TEXT_CHARS:
                raise InputError(f"text is longer than {MAX_TEXT_CHARS} characters")
        if request.audio is not None and request.audio.size == 0:
            raise InputError("audio is empty")

    async def history(self, tenant: str, session_id: str) -> StateSnapshot:
        validate_session_id(session_id)
        return await self.graph.aget_state(_config(tenant, session_id))

    async def stream_turn(self, request: TurnRequest) -> AsyncIterator[dict[str, Any]]:
        """Events as they happen (transcript, text, tool_call, tool_result, audio), then `result`."""
        self.validate(request)
        thread_id = f"{request.tenant}:{request.session_id}"
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            async for event in self._run(request):
                yield event

    async def run_turn(self, request: TurnRequest) -> TurnOutput:
        chunks: list[np.ndarray] = []
        rate = 0
        result: TurnResult | None = None
        async for event in self.stream_turn(request):
            if event["type"] == "audio":
                rate = rate or event["sample_rate"]
                chunks.append(resample(event["audio"], event["sample_rate"], rate))
            elif event["type"] == "result":
                result = event["result"]
        assert result is not None
        audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        return TurnOutput(result=result, audio=audio, sample_rate=rate or 16000)

    async def _run(self, request: TurnRequest) -> AsyncIterator[dict[str, Any]]:
        config = _config(request.tenant, request.session_id)
        context = TurnContext(
            deps=self.deps,
            tenant=request.tenant,
            session_id=request.session_id,
            text=request.text,
            audio=request.audio,
            speak=request.speak,
            knowledge_bases=request.knowledge_bases,
            speaker=SentenceSpeaker(self.deps.tts) if request.speak and self.deps.tts else None,
        )
        before = await self.graph.aget_state(config)
        started = time.perf_counter()
        first_audio_ms: float | None = None
        values: dict[str, Any] = {}
        try:
            async for mode, data in self.graph.astream(
                fresh_turn(), config, context=context, stream_mode=["custom", "values"], durability="exit"
            ):
                event: dict[str, Any] = cast(dict[str, Any], data)
                if mode == "values":
                    values = event
                    continue
                if event["type"] == "audio" and first_audio_ms is None:
                    first_audio_ms = round((time.perf_counter() - started) * 1000, 1)
                yield event
        except BaseException:
            await self._restore(before)
            raise
        timings = dict(values["timings_ms"])
        timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        if first_audio_ms is not None:
            timings["first_audio"] = first_audio_ms
        result = TurnResult(
            session_id=request.session_id,
            turn=values["turn"],
            transcript=values["transcript"],
            answer=values["answer"],
            citations=values["citations"],
            tool_calls=values["tool_calls"],
            voice=values.get("voice"),
            timings_ms=timings,
        )
        yield {"type": "result", "result": result}

    async def _restore(self, before: StateSnapshot) -> None:
        """Put the thread back as it was before a failed turn."""
        thread_id = before.config["configurable"]["thread_id"]
        if before.config["configurable"].get("checkpoint_id") is None:
            await self.checkpointer.adelete_thread(thread_id)
        else:
            await self.graph.aupdate_state(before.config, None)


def _config(tenant: str, session_id: str) -> Any:
    return {"configurable": {"thread_id": f"{tenant}:{session_id}"}}
