"""How it was said, through a turn: the result, the session, the trace, the planner's prompt and
the reply's voice (scripted planner and recognizer, real measurement)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRequest, TurnRunner
from agent.session_service import SessionService
from agent.tracing import CUE, INPUT_MESSAGES, PARALINGUISTICS, Tracing, iter_spans
from model.audio import decode_audio
from model.base import SpeechRecognizer, message_text
from model.testing import RecordingSynthesizer, ScriptedPlanner, reply
from tests.speech import espeak_wav
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

QUESTION = "Could you tell me what the weather will be like tomorrow?"


class KnownWords(SpeechRecognizer):
    """Hears what was said: the test knows the words, and the recognizer is not what is tested."""

    name = "known-words"

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        return QUESTION


def _agent(**deps: Any) -> tuple[TurnRunner, ScriptedPlanner, RecordingSynthesizer]:
    planner = ScriptedPlanner([reply("Sunny and mild.")] * 4)
    tts = RecordingSynthesizer()
    built = AgentDeps(planner=planner, registry=ToolRegistry(), asr=KnownWords(), tts=tts, **deps)
    return TurnRunner(built, InMemoryBackend(), tracing=Tracing()), planner, tts


def _spoken(speed: int, pitch: int) -> np.ndarray:
    return decode_audio(espeak_wav(QUESTION, speed=speed, pitch=pitch))


async def _turn(agent: TurnRunner, audio: np.ndarray | None, text: str | None = None) -> dict[str, Any]:
    output = await agent.run_turn(TurnRequest(session_id="s", audio=audio, text=text))
    return dict(output.result)


def _span(trace: dict[str, Any], name: str) -> dict[str, Any]:
    return next(span for span in iter_spans(trace["root"]) if span["name"] == name)


async def test_a_slow_low_turn_and_a_fast_high_one_are_told_apart() -> None:
    agent, planner, tts = _agent()
    slow_low = await _turn(agent, _spoken(speed=110, pitch=20))
    fast_high = await _turn(agent, _spoken(speed=260, pitch=85))

    first, second = slow_low["paralinguistics"], fast_high["paralinguistics"]
    assert first["rate_wps"] * 1.6 < second["rate_wps"]
    assert first["pitch_hz"] * 1.3 < second["pitch_hz"]
    assert second["cue"] == "spoken faster than before; pitch higher than before"
    assert second["delivery"] == {"pitch": 0.95, "rate": 0.88}

    # The planner read the cue after the words; the reply was said calmer and slower.
    user = message_text(planner.requests[1].messages[-1])
    assert user == f"{QUESTION}\n[{second['cue']}]"
    assert tts.said[-1] == ("Sunny and mild.", "piper:joe:p0.95-r0.88")
    assert fast_high["voice"] is None  # the session voice itself is unchanged

    # The session's turn log and the trace carry it too.
    turns = await agent.memory.sessions.turns("local", "s")
    assert [t["paralinguistics"]["rate_wps"] for t in turns] == [first["rate_wps"], second["rate_wps"]]
    traces = await SessionService(agent.memory).traces("local", "s")
    assert traces is not None
    listen = _span(traces[-1], "listen")["attributes"]
    assert listen[CUE] == second["cue"]
    assert listen[PARALINGUISTICS.format(name="pitch_hz")] == second["pitch_hz"]
    assert second["cue"] in _span(traces[-1], "plan")["attributes"][INPUT_MESSAGES]


async def test_typed_turns_and_ordinary_speech_leave_the_prompt_alone() -> None:
    agent, planner, tts = _agent()
    typed = await _turn(agent, None, text=QUESTION)
    assert typed["paralinguistics"] is None
    await _turn(agent, _spoken(speed=160, pitch=50))
    same_again = await _turn(agent, _spoken(speed=160, pitch=50))
    assert same_again["paralinguistics"]["cue"] == ""
    assert message_text(planner.requests[-1].messages[-1]) == QUESTION
    assert tts.said[-1][1] is None


async def test_settings_turn_it_off() -> None:
    agent, planner, tts = _agent(adapt_delivery=False)
    await _turn(agent, _spoken(speed=300, pitch=85))
    assert "[spoken fast" in message_text(planner.requests[-1].messages[-1])
    assert tts.said[-1][1] is None  # heard, but the voice stays as it is

    agent, planner, _ = _agent(paralinguistics=False)
    result = await _turn(agent, _spoken(speed=300, pitch=85))
    assert result["paralinguistics"] is None
    assert message_text(planner.requests[-1].messages[-1]) == QUESTION
