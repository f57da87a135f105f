"""`voicegraph eval`'s runs: dialogues through the whole agent, and BFCL through the planner alone.

The shipped set runs in a scratch data dir (memory, Chroma with the shipped knowledge base,
the voice library's samples), with the planner model from the configured one and the web
and the weather served on loopback by api/eval_fakes.py, so the user's own data is neither
read nor written and nothing leaves the machine. A user's cases run with their settings and
tenant, so that the tools they registered are on offer and run as in a real turn; sessions
are kept in memory and forgotten.

Each turn of a dialogue is spoken by the hearing set's voices in turn (Piper at four rates,
espeak-ng voices and accents, every third under noise; api/hearing_set.py), heard by the
recognizer as in service, or typed with `typed`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import AnyHttpUrl

from agent.runner import TurnRequest, TurnRunner
from api.compose import open_services
from api.eval_bfcl import BfclResult, load_bfcl, run_bfcl
from api.eval_cases import KB_DIR, shipped_dialogues
from api.eval_fakes import fake_web_and_weather
from api.eval_score import Dialogue, TurnOutcome
from api.hearing_set import VOICES, render
from api.settings import Settings
from model.base import Planner, SpeechRecognizer
from model.errors import InputError, VoicegraphError

__all__ = ["EvalRun", "Progress", "run_dialogues", "run_eval"]

Progress = Callable[[str], None]
"""Told the label of each unit (a turn, a BFCL case) as it is done."""
_UNKNOWN_TOOL = "{case}: no tool {tool!r} is on offer to tenant {tenant!r}; the tools are: {names}"


@dataclass
class EvalRun:
    """What one `voicegraph eval` did, for the table and the JSON."""

    planner: str = ""
    asr: str = ""
    spoken: list[TurnOutcome] = field(default_factory=list)
    spoken_source: str = ""
    """"shipped" or the cases file's path."""
    skipped: list[str] = field(default_factory=list)
    """Dialogues not run, and why (a tool turned off in the settings)."""
    bfcl: list[BfclResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _speech(text: str, index: int) -> tuple[np.ndarray, str]:
    voice = VOICES[index % len(VOICES)]
    utterance = render(text, voice, np.random.default_rng([11, index]), noisy=index % 3 == 0)
    return np.array(utterance.audio), voice.name + (f" ({utterance.noise})" if utterance.noise else "")


async def run_dialogues(
    runner: TurnRunner, dialogues: Sequence[Dialogue], progress: Progress, *, tenant: str = "local", typed: bool = False
) -> list[TurnOutcome]:
    """Each dialogue in a session of its own; a failed turn is an outcome with its error."""
    outcomes: list[TurnOutcome] = []
    for number, dialogue in enumerate(dialogues):
        session = f"eval-{number}"  # sessions are kept in memory, for this run alone
        for expected in dialogue.turns:
            index = len(outcomes)
            audio, voice = (None, "typed") if typed else _speech(expected.say, index)
            request = TurnRequest(
                session_id=session, text=expected.say if typed else None, audio=audio, tenant=tenant, speak=False
            )
            try:
                result: Mapping[str, Any] = (await runner.run_turn(request)).result
            except VoicegraphError as error:
                outcomes.append(
                    TurnOutcome(dialogue.id, expected, voice=voice, error=f"{type(error).__name__}: {error}")
                )
            else:
                outcomes.append(
                    TurnOutcome(
                        dialogue.id,
                        expected,
                        calls=tuple((c["name"], dict(c.get("arguments") or {})) for c in result["tool_calls"]),
                        answer=result.get("answer") or "",
                        heard=None if typed else result.get("transcript") or "",
                        voice=voice,
                    )
                )
            progress(f"{dialogue.id}: {expected.say}")
    return outcomes


def _offered(dialogues: Sequence[Dialogue], names: set[str]) -> tuple[list[Dialogue], list[str]]:
    kept, skipped = [], []
    for dialogue in dialogues:
        missing = sorted({t.tool for t in dialogue.turns if t.tool and t.tool not in names})
        if missing:
            skipped.append(f"{dialogue.id} (needs {', '.join(missing)}, which is off)")
        else:
            kept.append(dialogue)
    return kept, skipped


def _shipped_settings(settings: Settings, scratch: Path, fakes: str) -> Settings:
    url = AnyHttpUrl(fakes)
    return settings.model_copy(
        update={
            "data_dir": scratch,
            "model_dir": settings.models_root,
            "memory": "memory",
            "redis_url": None,
            "chroma_url": None,
            "kb_dir": KB_DIR,
            "speak": False,
            "tenant": "local",
            "api_keys": None,
            "tools": [],
            "mcp_servers": [],
            "web_search": "searxng",
            "searxng_url": url,
            "weather_geocoding_url": url,
            "weather_forecast_url": url,
            "otlp_endpoint": None,
        }
    )


def _count(dialogues: Sequence[Dialogue]) -> int:
    return sum(len(d.turns) for d in dialogues)


async def run_eval(
    settings: Settings,
    *,
    cases: Sequence[Dialogue] | None = None,
    cases_source: str = "",
    spoken: bool = True,
    only: Sequence[str] | None = None,
    bfcl: bool = True,
    limit: int | None = None,
    typed: bool = False,
    tenant: str | None = None,
    planner: Planner | None = None,
    asr: SpeechRecognizer | None = None,
    start: Callable[[int], Progress] = lambda total: lambda label: None,
) -> EvalRun:
    """Run what was asked (`only`: these dialogues alone); `start(total)` is called once the
    number of units is known and returns the progress callback. `planner`/`asr` replace the
    configured ones (tests)."""
    run = EvalRun()
    bfcl_cases = load_bfcl(limit=limit) if bfcl else []
    dialogues = list(cases) if cases is not None else shipped_dialogues() if spoken else []
    if only is not None:
        dialogues = [d for d in dialogues if d.id in only]
    with tempfile.TemporaryDirectory(prefix="voicegraph-eval-") as scratch, fake_web_and_weather() as fakes:
        if cases is not None:
            config = settings.model_copy(update={"memory": "memory", "speak": False})
            run.spoken_source, tenant = cases_source, tenant or settings.tenant
        else:
            config, run.spoken_source, tenant = _shipped_settings(settings, Path(scratch), fakes), "shipped", "local"
            if not dialogues:  # BFCL alone needs neither the documents nor the voices
                config = config.model_copy(update={"kb_dir": None, "voices": False})
        started = time.perf_counter()
        async with open_services(config, planner=planner, asr=asr) as services:
            run.seconds["start"] = round(time.perf_counter() - started, 1)
            deps = services.runner.deps
            run.planner, run.asr = deps.planner.name, deps.asr.name if deps.asr else "none (the planner hears)"
            tenant_tools = await services.tenant_tools.tools_for(tenant) if services.tenant_tools else []
            names = set(deps.registry.names()) | {tool.spec.name for tool in tenant_tools}
            if cases is not None:
                for dialogue in dialogues:
                    for turn in dialogue.turns:
                        if turn.tool and turn.tool not in names:
                            found = ", ".join(sorted(names))
                            raise InputError(
                                _UNKNOWN_TOOL.format(case=dialogue.id, tool=turn.tool, tenant=tenant, names=found)
                            )
            else:
                dialogues, run.skipped = _offered(dialogues, names)
            progress = start(_count(dialogues) + len(bfcl_cases))
            started = time.perf_counter()
            run.spoken = await run_dialogues(services.runner, dialogues, progress, tenant=tenant, typed=typed)
            run.seconds["dialogues"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            run.bfcl = await run_bfcl(deps.planner, bfcl_cases, progress, relevance=deps.relevance)
            run.seconds["bfcl"] = round(time.perf_counter() - started, 1)
    return run
