"""`voicegraph bench realtime`: what a caller of /v1/realtime waits for, and how fast it can interrupt.

It starts `voicegraph serve` (the default engine) in a process of its own and talks to it
as a hands-free client does: Piper-spoken questions streamed as pcm16 in 100 ms chunks at
the pace of speech, then silence, with the server's VAD deciding when the turn ended. One
warm-up round is not counted. For every turn it times, on the client's clock:

- end of speech to first audio: from the moment the last chunk holding speech was sent to
  the first `response.output_audio.delta` (the server's wait for `silence_duration_ms` of
  silence is part of it, as it is for a user);
- barge-in: the client asks for a story and, as its first audio arrives, speaks over it;
  from `input_audio_buffer.speech_started` to the last audio delta of that response, and
  whether the response was cut (`response.done` cancelled) or had already been sent whole.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from api.latency_bench import percentile, question, serve_engine, spoken_set
from api.realtime_protocol import WIRE_RATE
from api.settings import Settings
from model.audio import resample

__all__ = ["run_realtime_bench"]

_CHUNK_MS = 100
_SILENCE_MS = 500
_TIMEOUT_S = 300.0
_LONG = "Please tell me a story about a brave little dragon."
_BARGE = "Wait, stop there please."
_KIND_NAMES = ("no tool", "one tool")


@dataclass
class _Turn:
    kind: str
    first_audio_s: float
    barge_s: float | None = None
    cut: bool = False


def _pcm16(text: str, *, pad_ms: int = 200) -> list[bytes]:
    """`text` spoken by Piper as 24 kHz pcm16 chunks of 100 ms."""
    from model.tts import PiperTTS

    tts = PiperTTS()
    audio = resample(np.concatenate(list(tts.synthesize(text))), tts.sample_rate, WIRE_RATE)
    pad = np.zeros(WIRE_RATE * pad_ms // 1000, np.float32)
    pcm = (np.clip(np.concatenate([pad, audio]), -1, 1) * 32767).astype("<i2").tobytes()
    step = WIRE_RATE * _CHUNK_MS // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


class _Client:
    """One realtime connection, its events read into a queue as they arrive."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            await self.events.put((time.perf_counter(), json.loads(message)))

    async def speak(self, chunks: list[bytes], silence_ms: int) -> float:
        """Stream the chunks at the pace of speech, then silence; when the last speech chunk went."""
        silence = bytes(len(chunks[0]))
        for chunk in chunks:
            await self._append(chunk)
        spoke_until = time.perf_counter()
        for _ in range(silence_ms // _CHUNK_MS):
            await self._append(silence)
        return spoke_until

    async def _append(self, chunk: bytes) -> None:
        event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
        await self.socket.send(json.dumps(event))
        await asyncio.sleep(_CHUNK_MS / 1000)

    async def until(self, kind: str) -> tuple[float, dict[str, Any]]:
        while True:
            at, event = await asyncio.wait_for(self.events.get(), _TIMEOUT_S)
            if event["type"] == "error":
                raise RuntimeError(f"the server sent an error: {event['error']}")
            if event["type"] == kind:
                return at, event


async def _turn(client: _Client, kind: str, question: list[bytes]) -> _Turn:
    speaking = asyncio.create_task(client.speak(question, 2000))
    first_at, _ = await client.until("response.output_audio.delta")
    turn = _Turn(kind, first_at - await speaking)
    await client.until("response.done")
    return turn


async def _barge_in(client: _Client, question: list[bytes], barge: list[bytes]) -> _Turn:
    """Ask for a long answer and speak over it as soon as it starts."""
    speaking = asyncio.create_task(client.speak(question, 600))
    first_at, first = await client.until("response.output_audio.delta")
    turn = _Turn("barge-in", first_at - await speaking)
    answering = first["response_id"]
    talking = asyncio.create_task(client.speak(barge, 1500))
    started_at = last_audio = None
    cut_done = False
    while True:
        at, event = await asyncio.wait_for(client.events.get(), _TIMEOUT_S)
        kind = event["type"]
        if kind == "input_audio_buffer.speech_started" and started_at is None:
            started_at = at
        elif kind == "response.output_audio.delta" and event["response_id"] == answering:
            last_audio = at
        elif kind == "response.done" and event["response"]["id"] == answering:
            turn.cut, cut_done = event["response"]["status"] == "cancelled", True
        elif kind == "response.done" and cut_done:
            break  # the answer to what was said over it
    if turn.cut and started_at is not None:
        turn.barge_s = max(0.0, (last_audio or started_at) - started_at)
    await talking
    return turn


async def _session(
    url: str, clips: dict[str, list[list[bytes]]], long_question: list[bytes], barge: list[bytes], rounds: int
) -> list[_Turn]:
    from websockets.asyncio.client import connect

    turns: list[_Turn] = []
    for round_ in range(rounds + 1):  # round 0 warms up and is not counted
        session = f"bench-rt-{uuid.uuid4().hex[:6]}"
        async with connect(f"{url}/v1/realtime?session_id={session}", max_size=None) as socket:
            client = _Client(socket)
            await client.until("session.created")
            detection = {"type": "server_vad", "silence_duration_ms": _SILENCE_MS}
            update = {"type": "realtime", "audio": {"input": {"turn_detection": detection}}}
            await socket.send(json.dumps({"type": "session.update", "session": update}))
            done = [await _turn(client, kind, question(round_, qs)) for kind, qs in clips.items()]
            done.append(await _barge_in(client, long_question, barge))
            if round_:
                turns += done
            client.reader.cancel()
    return turns


def _table(turns: list[_Turn], ready_s: float, peak_mib: float, rounds: int) -> list[str]:
    lines = [
        f"voicegraph bench realtime: {rounds} warm turns of each kind over /v1/realtime (server VAD, "
        f"silence {_SILENCE_MS} ms), questions spoken by Piper in real time; {os.cpu_count()} CPU cores",
        f"ready {ready_s:.1f} s, peak RSS {peak_mib:,.0f} MiB",
        "",
        f"{'kind':<12}{'end of speech to first audio s':>34}",
        f"{'':<12}{'p50 / p90':>34}",
    ]
    for kind in _KIND_NAMES:
        values = [t.first_audio_s for t in turns if t.kind == kind]
        lines.append(f"{kind:<12}{f'{percentile(values, 50):.2f} / {percentile(values, 90):.2f}':>34}")
    barges = [t for t in turns if t.kind == "barge-in"]
    cut = [t.barge_s for t in barges if t.barge_s is not None]
    lines += [
        "",
        f"barge-in (speaking over {_LONG!r} as its answer starts): {len(cut)} of {len(barges)} answers cut; "
        f"speech_started to the last audio delta p50 {percentile(cut, 50) * 1000:.0f} ms, "
        f"p90 {percentile(cut, 90) * 1000:.0f} ms",
    ]
    return lines


def run_realtime_bench(settings: Settings, *, turns: int) -> str:
    clips = {kind: [_pcm16(q) for q in spoken_set()[kind]] for kind in _KIND_NAMES}
    long_question, barge = _pcm16(_LONG), _pcm16(_BARGE)
    with tempfile.TemporaryDirectory(prefix="voicegraph-bench-") as tmp:
        data_dir = Path(tmp)
        server = serve_engine(settings, "llama", data_dir, data_dir / "serve.log")
        try:
            done = asyncio.run(_session(server.url.replace("http://", "ws://"), clips, long_question, barge, turns))
        finally:
            peak = server.stop()
    return "\n".join(_table(done, server.ready_s, peak, turns))
