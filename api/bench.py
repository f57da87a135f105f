"""`voicegraph bench`: a spoken turn timed stage by stage on this machine.

Prints the load time of each model, then per turn: ASR, plan, act, time to the first
audio chunk, speak and total, and the process's peak memory. The question is spoken by
the TTS (or read from --audio), so the whole real path runs: decode -> VAD -> ASR ->
planner -> tools -> TTS. Then what tracing costs: each turn's spans and stored size, and
scripted tool turns timed traced and untraced in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRequest, TurnRunner
from agent.tracing import Tracing, TurnTrace, iter_spans, untraced
from api.compose import open_services
from api.settings import Settings
from api.turn_cli import read_audio_file
from model.audio import SAMPLE_RATE, resample
from model.base import Message, Planner, PlanRequest, ToolSpecDict
from model.llm import TransformersEngine
from model.testing import ScriptedPlanner, call, reply
from tools.builtin.date_time import date_time_tool
from tools.registry import ToolRegistry

__all__ = ["run_bench"]

_STAGES = ("asr", "plan", "act", "first_audio", "speak", "total")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_bench(settings: Settings, *, question: str, audio: Path | None, turns: int) -> str:
    started = time.perf_counter()
    async with open_services(settings) as services:
        startup_s = time.perf_counter() - started
        deps = services.runner.deps
        if audio is not None:
            samples = read_audio_file(audio, settings)
        else:
            assert deps.tts is not None, "bench speaks its question with the TTS; enable speak"
            spoken = np.concatenate(list(deps.tts.synthesize(question)))
            samples = resample(spoken, deps.tts.sample_rate, SAMPLE_RATE)
        rows = []
        for index in range(turns):
            output = await services.runner.run_turn(TurnRequest(session_id=f"bench-{index}", audio=samples))
            rows.append((output.result, len(output.audio) / output.sample_rate))
        traced = [(await services.sessions.traces("local", f"bench-{i}") or [{}])[-1] for i in range(turns)]
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, planner device: {settings.device or 'auto'}",
        f"question audio: {len(samples) / SAMPLE_RATE:.2f} s",
        "model load (s): " + ", ".join(f"{k} {v:.2f}" for k, v in services.load_seconds.items()),
        f"start-up total: {startup_s:.2f} s",
        "turn  " + "  ".join(f"{s + '_ms':>14}" for s in _STAGES) + "  reply_audio_s  tools",
    ]
    for index, (result, reply_s) in enumerate(rows, 1):
        timings = result["timings_ms"]
        cells = "  ".join(f"{timings.get(stage, 0.0):>14.0f}" for stage in _STAGES)
        tools = ",".join(call["name"] for call in result["tool_calls"]) or "-"
        lines.append(f"{index:>4}  {cells}  {reply_s:>13.2f}  {tools}")
        lines.append(f"      transcript: {result['transcript']!r}  answer: {result['answer']!r}")
    for index, trace in enumerate(traced, 1):
        spans = sum(1 for _ in iter_spans(trace["root"])) if trace else 0
        lines.append(f"trace of turn {index}: {spans} spans, {len(json.dumps(trace))} bytes")
    lines.append(f"peak memory (RSS): {_peak_rss_mib():.0f} MiB")
    lines.append(await _tracing_cost())
    if ratio := await _prefix_cache_ratio(deps.planner, rows[0][0]["transcript"]):
        lines.append(ratio)
    return "\n".join(lines)


async def _prefix_cache_ratio(planner: Planner, question: str) -> str | None:
    """Time one tool-choice step with and without the system-prompt KV cache, in this run."""
    engine = getattr(planner, "engine", None)
    if not isinstance(engine, TransformersEngine) or engine.prefix_cache is None:
        return None
    tools = [ToolSpecDict(name="get_date_time", description="Current time in a city.", parameters={"type": "object"})]
    request = PlanRequest(messages=[Message(role="user", content=question)], tools=tools)
    cache, seconds = engine.prefix_cache, {}
    try:
        for label, used in (("warm", cache), ("cached", cache), ("uncached", None)):
            engine.prefix_cache = used
            started = time.perf_counter()
            async for _ in planner.plan(request):
                pass
            seconds[label] = time.perf_counter() - started
    finally:
        engine.prefix_cache = cache
    return (
        f"tool-choice step: {seconds['cached']:.2f} s with the prefix cache, {seconds['uncached']:.2f} s without"
        f" (ratio {seconds['cached'] / seconds['uncached']:.2f})"
    )


class _Untraced(Tracing):
    def start_turn(self, **_: Any) -> TurnTrace:
        return untraced()


async def _tracing_cost(turns: int = 300) -> str:
    """Scripted tool turns (no models) timed with tracing and without, in this run."""
    per_turn: dict[str, float] = {}
    for label, tracing in (("traced", Tracing()), ("untraced", _Untraced())):
        steps = [
            step for _ in range(turns + 20) for step in (call("get_date_time", timezone="Asia/Tokyo"), reply("Noon."))
        ]
        deps = AgentDeps(planner=ScriptedPlanner(steps), registry=ToolRegistry([date_time_tool()]))
        agent = TurnRunner(deps, InMemoryBackend(), tracing=tracing)
        for index in range(20):  # warm-up
            await agent.run_turn(TurnRequest(f"warm-{index}", text="Time in Tokyo?", speak=False))
        started = time.perf_counter()
        for index in range(turns):
            await agent.run_turn(TurnRequest(f"s-{index}", text="Time in Tokyo?", speak=False))
        per_turn[label] = (time.perf_counter() - started) * 1000 / turns
    return (
        f"tracing: {per_turn['traced']:.2f} ms per scripted tool turn traced, {per_turn['untraced']:.2f} ms untraced"
        f" (ratio {per_turn['traced'] / per_turn['untraced']:.2f}, {turns} turns each)"
    )
