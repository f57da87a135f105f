"""`voicegraph bench latency`: what a client of the HTTP event stream waits for.

For each engine it starts `voicegraph serve` in a process of its own (so its start-up and
peak memory are that server's alone), waits until it answers, and asks spoken questions
(Piper, 2-3 s) of three kinds over `POST /v1/sessions/{id}/turns` with server-sent events:
no tool, one tool (the clock) and knowledge (a base the bench uploads), five of each, each
round in a new session. One warm-up round, with questions of its own, is not counted. For
every turn it times, from the request's first byte:

- first audio: the first `audio` event, whatever it says (the line said while a tool runs
  counts);
- answer audio: the first `audio` event that says part of the answer (not the line said
  while a tool runs);
- total: the `result` event;

and reads each turn's trace for the tokens its planning steps prefilled and reused, and for
where its first audio's time went: when the question was heard (transcribed), when the first
words to say were written (handed to the voice) and when the server had their audio. Both
engines run the same turns in the same run, so the ratio between them is fair.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from agent.tracing import CACHED_TOKENS, FIRST_AUDIO_MS, OPERATION, PREFILLED_TOKENS, iter_spans
from api.kb_bench_data import DOCUMENTS
from api.processes import ServerProcess, free_port
from api.settings import Settings
from model.audio import encode_wav

__all__ = [
    "KINDS",
    "WARM_UP",
    "FirstAudioStages",
    "first_audio_stages",
    "percentile",
    "question",
    "run_latency_bench",
    "serve_engine",
    "spoken_set",
]

KINDS: dict[str, list[str]] = {
    "no tool": [
        "Hello there, how are you doing today?",
        "Can you tell me a fun fact about octopuses?",
        "What is a good name for a grey cat?",
        "Why is the sky blue?",
        "Tell me a joke about penguins.",
    ],
    "one tool": [
        "What time is it in Tokyo right now?",
        "Can you tell me the time in Paris, please?",
        "What is the date today in Sydney?",
        "What time is it in Chicago right now?",
        "Can you tell me the time in Berlin?",
    ],
    "knowledge": [
        "Who is the head chef at the Copper Kettle restaurant?",
        "What is the wifi password for the Heron lab?",
        "Which part number is the replacement pump for the cooling loop?",
        "Who is the project lead of Project Heron?",
        "What is the nightly hotel limit in Berlin?",
    ],
}
"""The questions timed, each asked once in turn (more turns than questions ask them again)."""
WARM_UP: dict[str, str] = {
    "no tool": "Hi, can you hear me?",
    "one tool": "What time is it in London?",
    "knowledge": "How many hours of sun do tomatoes need?",
}
"""The round that is not counted asks these: a question asked again in a new session finds its
first steps' state kept from the first time, so a timed question must not be one warmed up."""
T = TypeVar("T")
_KB = "bench"
_KB_FILES = ("kettle.md", "heron.md", "parts.md", "garden.md", "travel.md")
_ENGINES = {"llama": "llama.cpp", "transformers": "transformers"}
_READY_TIMEOUT_S = 600.0
_TURN_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class FirstAudioStages:
    """Seconds from a turn's start on the server to: the question heard (its transcript), the
    first words to say written (handed to the voice), their audio made. NaN where a turn had none."""

    heard_s: float = math.nan
    written_s: float = math.nan
    voiced_s: float = math.nan


@dataclass
class _Turn:
    kind: str
    first_audio_s: float
    answer_audio_s: float
    total_s: float
    session: str
    trace_id: str
    tools: list[str]
    prefilled: int = 0
    reused: int = 0
    stages: FirstAudioStages = field(default_factory=FirstAudioStages)


@dataclass
class _Run:
    engine: str
    ready_s: float
    peak_rss_mib: float = 0.0
    turns: list[_Turn] = field(default_factory=list)


def spoken_set() -> dict[str, list[str]]:
    """Each kind's questions in the order `question` takes them: the warm-up's first."""
    return {kind: [WARM_UP[kind], *questions] for kind, questions in KINDS.items()}


def question(round_: int, asked: Sequence[T]) -> T:
    """Round 0 warms up (`asked[0]` is the warm-up's question); round r asks `asked[r]`, cycling."""
    return asked[0] if round_ == 0 else asked[1 + (round_ - 1) % (len(asked) - 1)]


def _questions() -> dict[str, list[bytes]]:
    """Every question as a WAV a client would send: Piper at its own pace, a little silence around."""
    from model.tts import PiperTTS

    tts = PiperTTS()
    pad = np.zeros(tts.sample_rate // 4, dtype=np.float32)
    return {
        kind: [encode_wav(np.concatenate([pad, *tts.synthesize(q), pad]), tts.sample_rate) for q in asked]
        for kind, asked in spoken_set().items()
    }


def serve_engine(settings: Settings, engine: str, data_dir: Path, log: Path) -> ServerProcess:
    """`voicegraph serve` for one engine, in its own process, once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "VOICEGRAPH_ENGINE": engine,
        "VOICEGRAPH_DATA_DIR": str(data_dir),
        "VOICEGRAPH_MODEL_DIR": str(settings.models_root),
        "VOICEGRAPH_HOST": "127.0.0.1",
        "VOICEGRAPH_PORT": str(port),
    }
    env.pop("VOICEGRAPH_KB_DIR", None)
    if engine == "transformers":
        env.setdefault("VOICEGRAPH_DEVICE", "cpu")
    command = [sys.executable, "-m", "api.cli", "serve"]
    return ServerProcess(command, env, log, port=port, ready_timeout_s=_READY_TIMEOUT_S)


def _events(client: httpx.Client, session: str, wav: bytes) -> Iterator[tuple[float, str, dict[str, Any]]]:
    """(seconds since the request, event name, data) for each server-sent event of a spoken turn."""
    started = time.perf_counter()
    files = {"audio": ("question.wav", wav, "audio/wav")}
    headers = {"accept": "text/event-stream"}
    with client.stream("POST", f"/v1/sessions/{session}/turns", files=files, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"turn refused: {response.status_code} {response.read().decode(errors='replace')}")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                yield time.perf_counter() - started, name, json.loads(line.split(":", 1)[1])


def _timed_turn(client: httpx.Client, kind: str, session: str, wav: bytes) -> _Turn:
    first_audio: float | None = None
    said: list[tuple[float, str]] = []
    for at, name, data in _events(client, session, wav):
        if name == "audio":
            first_audio = at if first_audio is None else first_audio
            if data["text"]:
                said.append((at, data["text"]))
        elif name == "error":
            raise RuntimeError(f"turn failed: {data}")
        elif name == "result":
            tools = [call["name"] for call in data["tool_calls"]]
            answer_audio = next((when for when, text in said if text in data["answer"]), at)
            return _Turn(kind, first_audio or at, answer_audio, at, session, data["trace_id"], tools)
    raise RuntimeError("the event stream ended without a result")


def first_audio_stages(root: dict[str, Any]) -> FirstAudioStages:
    """Where a turn's first audio's time went, from its trace (the root span of a TraceTree)."""
    spans = list(iter_spans(root))
    listen = next((s for s in spans if s["name"] == "listen"), None)
    said = [s["start_ms"] for s in spans if s["name"] == "synthesize"]
    return FirstAudioStages(
        heard_s=(listen["start_ms"] + listen["duration_ms"]) / 1000 if listen else math.nan,
        written_s=min(said) / 1000 if said else math.nan,
        voiced_s=float(root["attributes"].get(FIRST_AUDIO_MS, math.nan)) / 1000,
    )


def _read_traces(client: httpx.Client, turns: list[_Turn]) -> None:
    """Each turn's prefilled and reused tokens, summed over its planning steps, and where its
    first audio's time went, from its trace."""
    traces: dict[str, dict[str, Any]] = {}
    for session in {turn.session for turn in turns}:
        for trace in client.get(f"/v1/sessions/{session}/traces").json()["traces"]:
            traces[trace["trace_id"]] = trace
    for turn in turns:
        plans = [s for s in iter_spans(traces[turn.trace_id]["root"]) if s["attributes"].get(OPERATION) == "chat"]
        turn.prefilled = sum(int(s["attributes"].get(PREFILLED_TOKENS, 0)) for s in plans)
        turn.reused = sum(int(s["attributes"].get(CACHED_TOKENS, 0)) for s in plans)
        turn.stages = first_audio_stages(traces[turn.trace_id]["root"])


def _upload_knowledge(client: httpx.Client) -> None:
    if client.post("/v1/knowledge-bases", json={"name": _KB}).status_code not in (201, 409):
        raise RuntimeError("could not create the bench's knowledge base")
    files = [("files", (name, DOCUMENTS[name].encode(), "text/markdown")) for name in _KB_FILES]
    response = client.post(f"/v1/knowledge-bases/{_KB}/documents", files=files)
    if response.status_code != 200:
        raise RuntimeError(f"could not upload the bench's documents: {response.text}")


def _run(settings: Settings, engine: str, clips: dict[str, list[bytes]], turns: int, data_dir: Path) -> _Run:
    server = serve_engine(settings, engine, data_dir, data_dir / f"serve-{engine}.log")
    run = _Run(_ENGINES[engine], server.ready_s)
    try:
        with httpx.Client(base_url=server.url, timeout=_TURN_TIMEOUT_S) as client:
            _upload_knowledge(client)
            prefix = f"{engine}-{uuid.uuid4().hex[:6]}"
            for round_ in range(turns + 1):  # round 0 warms up and is not counted
                session = f"{prefix}-{round_}"
                for kind, wavs in clips.items():
                    turn = _timed_turn(client, kind, session, question(round_, wavs))
                    if round_:
                        run.turns.append(turn)
            _read_traces(client, run.turns)
    finally:
        run.peak_rss_mib = server.stop()
    return run


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _table(runs: list[_Run], turns: int) -> list[str]:
    lines = [
        f"voicegraph bench latency: {turns} warm turns of each kind over HTTP (server-sent events), "
        f"questions spoken by Piper; {os.cpu_count()} CPU cores",
        "",
        f"{'engine':<14}{'ready_s':>9}{'peak_rss_mib':>14}",
        *(f"{run.engine:<14}{run.ready_s:>9.1f}{run.peak_rss_mib:>14,.0f}" for run in runs),
        "",
        f"{'engine / kind':<26}{'first_audio_s':>17}{'answer_audio_s':>17}{'total_s':>17}"
        f"{'prefilled':>11}{'reused':>9}   tools",
        f"{'':<26}{'p50 / p90':>17}{'p50 / p90':>17}{'p50 / p90':>17}{'p50':>11}{'p50':>9}",
    ]
    for run in runs:
        for kind in KINDS:
            done = [t for t in run.turns if t.kind == kind]
            series = ([t.first_audio_s for t in done], [t.answer_audio_s for t in done], [t.total_s for t in done])
            cells = [f"{percentile(values, 50):.2f} / {percentile(values, 90):.2f}" for values in series]
            prefilled = statistics.median([t.prefilled for t in done])
            reused = statistics.median([t.reused for t in done])
            tools = ",".join(sorted({name for t in done for name in t.tools})) or "-"
            lines.append(
                f"{run.engine + '  ' + kind:<26}{cells[0]:>17}{cells[1]:>17}{cells[2]:>17}"
                f"{prefilled:>11.0f}{reused:>9.0f}   {tools}"
            )
    lines += [
        "",
        "where the first audio's time went, p50 in s: the server's clock from the turn's start, the "
        "client's from the request's first byte",
        f"{'engine / kind':<26}{'heard':>9}{'words written':>15}{'audio made':>12}{'audio received':>16}",
    ]
    for run in runs:
        for kind in KINDS:
            done = [t for t in run.turns if t.kind == kind]
            marks = [
                [t.stages.heard_s for t in done],
                [t.stages.written_s for t in done],
                [t.stages.voiced_s for t in done],
                [t.first_audio_s for t in done],
            ]
            cells = [f"{percentile([v for v in values if not math.isnan(v)], 50):.2f}" for values in marks]
            lines.append(f"{run.engine + '  ' + kind:<26}{cells[0]:>9}{cells[1]:>15}{cells[2]:>12}{cells[3]:>16}")
    if len(runs) == 2:
        base, other = runs
        ratios = []
        for kind in KINDS:
            mine = statistics.median([t.total_s for t in base.turns if t.kind == kind])
            theirs = statistics.median([t.total_s for t in other.turns if t.kind == kind])
            ratios.append(f"{kind} {theirs / mine:.1f}x")
        lines += ["", f"turn total p50, {other.engine} / {base.engine}: " + ", ".join(ratios)]
    return lines


def run_latency_bench(settings: Settings, *, turns: int, compare: bool) -> str:
    """The table; the llama.cpp engine, and transformers in the same run when `compare`."""
    clips = _questions()
    engines = ["llama", "transformers"] if compare else ["llama"]
    with tempfile.TemporaryDirectory(prefix="voicegraph-bench-") as tmp:
        data_dir = Path(tmp)
        serve_engine(settings, "llama", data_dir, data_dir / "prepare.log").stop()  # renders the voice library once
        runs = [_run(settings, engine, clips, turns, data_dir) for engine in engines]
    return "\n".join(_table(runs, turns))
