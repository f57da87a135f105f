"""Talking to /v1/realtime the way users do: the official openai SDK, speech streamed in chunks."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import soundfile
from openai import AsyncOpenAI

from model.audio import resample

__all__ = ["collect", "connect", "pcm16_chunks", "send_speech", "silence_pcm16"]

WIRE_RATE = 24_000
CHUNK_MS = 100


@asynccontextmanager
async def connect(base_url: str, *, key: str = "local", session_id: str | None = None) -> AsyncIterator[Any]:
    query = {"session_id": session_id} if session_id else {}
    async with (
        AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key) as client,
        client.realtime.connect(model="voicegraph", extra_query=query) as connection,
    ):
        yield connection


def pcm16_chunks(wav: bytes, *, chunk_ms: int = CHUNK_MS) -> list[str]:
    """A WAV recording as base64 pcm16 chunks at 24 kHz, as a microphone sends them."""
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    wire = resample(audio if audio.ndim == 1 else audio.mean(axis=1), rate, WIRE_RATE)
    pcm = (np.clip(wire, -1, 1) * 32767).astype("<i2")
    step = WIRE_RATE * chunk_ms // 1000
    return [base64.b64encode(pcm[i : i + step].tobytes()).decode() for i in range(0, len(pcm), step)]


def silence_pcm16(ms: int) -> list[str]:
    step = WIRE_RATE * CHUNK_MS // 1000
    chunk = base64.b64encode(np.zeros(step, "<i2").tobytes()).decode()
    return [chunk] * (ms // CHUNK_MS)


async def send_speech(connection: Any, wav: bytes, *, silence_after_ms: int = 1200, real_time: bool = False) -> None:
    """Speak `wav` into the connection, then stay silent a while (so the server hears the end)."""
    for chunk in [*silence_pcm16(300), *pcm16_chunks(wav), *silence_pcm16(silence_after_ms)]:
        await connection.input_audio_buffer.append(audio=chunk)
        if real_time:
            await asyncio.sleep(CHUNK_MS / 1000)


async def collect(connection: Any, until: str = "response.done", timeout_s: float = 300.0) -> list[Any]:
    """Server events up to and including the first of type `until`."""
    events: list[Any] = []

    async def read() -> None:
        async for event in connection:
            events.append(event)
            if event.type == until:
                return

    await asyncio.wait_for(read(), timeout_s)
    return events
