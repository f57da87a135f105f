"""Step-Audio 2 against a loopback server: the request dialect, the streamed and whole
answers (text, `<tool_call>` text, `tool_calls`, speech tokens), the vocoder, and a spoken
turn through the real turn runner with the planner built from settings."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRequest, TurnRunner
from api.compose import build_planner
from api.settings import Settings
from model.audio import SAMPLE_RATE, encode_wav
from model.base import AudioPart, Message, PlanEvent, PlanRequest, SpeechChunk, SpeechTokens, TextDelta, ToolCallEvent
from model.errors import PlannerError
from model.step_audio2 import StepAudio2Planner
from model.step_audio2_format import VOICE_CLIP_NOTE
from model.testing import RecordingSynthesizer
from model.vocoder import HttpToken2Wav
from tests.openai_fake import SAMPLES_PER_TOKEN, VOCODER_RATE, FakeServer, Reply, serving
from tools.base import Tool, ToolContext, ToolResult, ToolSpec
from tools.registry import ToolRegistry

CLOCK_SCHEMA = {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}
TODAY = datetime(2026, 11, 24, 14, 0)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeServer, str]]:
    with serving() as pair:
        yield pair


@pytest.fixture
def fake(served: tuple[FakeServer, str]) -> FakeServer:
    return served[0].reset()


@pytest.fixture
def url(served: tuple[FakeServer, str]) -> str:
    return served[1]


def _wav_b64(seconds: float) -> str:
    return base64.b64encode(encode_wav(np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)).decode()


def _seconds(part: dict[str, Any]) -> float:
    with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, SAMPLE_RATE)
        return reader.getnframes() / SAMPLE_RATE


def _run(planner: StepAudio2Planner, request: PlanRequest) -> list[PlanEvent]:
    async def collect() -> list[PlanEvent]:
        try:
            return [event async for event in planner.plan(request)]
        finally:
            await planner.aclose()

    return asyncio.run(collect())


def _spoken_turn(voice: str | None = None) -> PlanRequest:
    audio = Message(role="user", content=[AudioPart(type="input_audio", data=_wav_b64(60.0))])
    spec = {"name": "get_date_time", "description": "The time somewhere.", "parameters": CLOCK_SCHEMA}
    return PlanRequest(messages=[audio], tools=[spec], speak=True, voice=voice)  # type: ignore[list-item]


def test_a_spoken_request_in_stepfuns_dialect(fake: FakeServer, url: str) -> None:
    fake.replies.append(Reply(text="Hi.", tts=True, audio=[5, 6]))
    clip = encode_wav(np.zeros(SAMPLE_RATE * 2, np.float32), SAMPLE_RATE)
    planner = StepAudio2Planner(f"{url}/v1", today=lambda: TODAY, voice_clip=lambda voice: clip if voice else None)
    _run(planner, _spoken_turn(voice="a calm low male voice"))
    [body] = fake.requests
    system, user, tts = body["messages"]
    assert system["role"] == "system" and "Tuesday 24 November 2026" in system["content"]
    assert "a calm low male voice" in system["content"]
    assert user["role"] == "human"
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["input_audio"] * 4 + ["text"]  # 60 s in 25 s chunks, then the voice clip, then text
    assert [_seconds(p) for p in user["content"][:4]] == [25.0, 25.0, 10.0, 2.0]
    assert user["content"][-1]["text"] == VOICE_CLIP_NOTE
    assert tts == {"role": "assistant", "content": "<tts_start>", "eot": False}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert [t["function"]["name"] for t in body["tools"]] == ["get_date_time"]
    assert body["skip_special_tokens"] is False and body["stream"] is True


def test_tools_can_be_declared_as_a_message_after_the_system_message(fake: FakeServer, url: str) -> None:
    fake.replies.append(Reply(text="Hi."))
    _run(StepAudio2Planner(f"{url}/v1", tools_as_message=True, tts_output_flag=True), _spoken_turn())
    [body] = fake.requests
    assert [m["role"] for m in body["messages"]] == ["system", "tool_json_schemas", "human"]
    assert "get_date_time" in body["messages"][1]["content"] and "tools" not in body
    assert body["tts_output"] is True and "continue_final_message" not in body


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_text_tool_calls_and_speech_tokens_are_read(fake: FakeServer, url: str, stream: bool) -> None:
    text = 'Let me check the time.<tool_call>function\nget_date_time\n{"timezone": "Asia/Tokyo"}</tool_call>'
    fake.replies.append(Reply(text=text, tts=True, audio=[10, 11, 6561, 12, 6562]))
    events = _run(StepAudio2Planner(f"{url}/v1", stream=stream), _spoken_turn())
    said = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert said == "Let me check the time."  # the filler, spoken while the tool runs
    tokens = [t for e in events if isinstance(e, SpeechTokens) for t in e.tokens]
    assert tokens == [10, 11, 6561, 12, 6562]  # as written: history re-sends them
    [call] = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert (call["name"], call["arguments"]) == ("get_date_time", {"timezone": "Asia/Tokyo"})
    assert not any(isinstance(e, SpeechChunk) for e in events)  # no vocoder: the local TTS speaks


def test_the_vocoder_speaks_the_tokens_in_the_session_voice(fake: FakeServer, url: str) -> None:
    fake.replies.append(Reply(text="It is noon.", tts=True, audio=[1, 2, 6561, 3]))
    clip = encode_wav(np.full(SAMPLE_RATE, 0.1, np.float32), SAMPLE_RATE)
    planner = StepAudio2Planner(f"{url}/v1", vocoder=HttpToken2Wav(f"{url}/token2wav"), voice_clip=lambda v: clip)
    events = _run(planner, _spoken_turn(voice="warm"))
    [chunk] = [e for e in events if isinstance(e, SpeechChunk)]
    assert chunk.sample_rate == VOCODER_RATE and len(chunk.audio) == 3 * SAMPLES_PER_TOKEN
    assert np.allclose(chunk.audio, 0.25, atol=1e-3)
    [sent] = fake.vocoder_requests
    assert sent["tokens"] == [1, 2, 3] and base64.b64decode(sent["prompt_wav"]) == clip


def test_history_resends_audio_speech_and_tool_results_in_role_input(fake: FakeServer, url: str) -> None:
    fake.replies.append(Reply(text="Noon."))
    call = {"id": "call_9", "name": "get_date_time", "arguments": {"timezone": "Asia/Tokyo"}}
    messages = [
        Message(role="user", content=[AudioPart(type="input_audio", data=_wav_b64(1.0))]),
        Message(role="assistant", content="One moment.", tool_calls=[call], speech_tokens=[4, 5]),  # type: ignore[list-item]
        Message(role="tool", content="12:00 JST", tool_call_id="call_9", name="get_date_time"),
    ]
    _run(StepAudio2Planner(f"{url}/v1"), PlanRequest(messages=messages, tools=[]))
    wire = fake.requests[0]["messages"]
    assert [m["role"] for m in wire] == ["system", "human", "assistant", "input"]
    assert wire[1]["content"][0]["type"] == "input_audio"
    assert wire[2]["tts_content"] == {"tts_text": "One moment.", "tts_audio": "<audio_4><audio_5>"}
    assert wire[2]["tool_calls"][0]["function"] == {"name": "get_date_time", "arguments": '{"timezone": "Asia/Tokyo"}'}
    assert wire[3] == {"role": "input", "tool_call_id": "call_9", "content": [{"type": "text", "text": "12:00 JST"}]}


def test_a_server_error_is_a_planner_error(fake: FakeServer, url: str) -> None:
    fake.replies.append(Reply(status=503))
    with pytest.raises(PlannerError, match="HTTP 503"):
        _run(StepAudio2Planner(f"{url}/v1"), _spoken_turn())


async def _clock(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
    return ToolResult(f"It is 12:00 in {arguments['timezone']}.")


@pytest.mark.parametrize("vocoder", [True, False], ids=["vocoder", "local-tts"])
def test_a_spoken_turn_through_the_agent(fake: FakeServer, url: str, vocoder: bool) -> None:
    """Settings pick Step-Audio 2; the turn's audio and tools go to the server, the call runs
    and goes back in role `input`, and the answer is spoken from tokens or by the TTS."""
    filler = 'One moment.<tool_call>function\nget_date_time\n{"timezone": "Asia/Tokyo"}</tool_call>'
    fake.replies += [Reply(text=filler, tts=True, audio=[7, 8]), Reply(text="It is noon.", tts=True, audio=[1, 2, 3])]
    settings = Settings(
        planner="step-audio-2",
        planner_url=f"{url}/v1",  # type: ignore[arg-type]
        vocoder_url=f"{url}/token2wav" if vocoder else None,  # type: ignore[arg-type]
    )
    tts = RecordingSynthesizer()
    clock = Tool(ToolSpec("get_date_time", "The time somewhere.", CLOCK_SCHEMA, 5.0), _clock)
    deps = AgentDeps(planner=build_planner(settings), registry=ToolRegistry([clock]), tts=tts)
    audio = np.full(SAMPLE_RATE, 0.05, np.float32)

    async def turn() -> Any:
        try:
            return await TurnRunner(deps, InMemoryBackend()).run_turn(TurnRequest(session_id="s1", audio=audio))
        finally:
            await deps.planner.aclose()

    out = asyncio.run(turn())
    first, second = fake.requests
    assert first["messages"][1]["content"][0]["type"] == "input_audio" and first["tools"]
    assert second["messages"][-2]["role"] == "input" and "12:00" in second["messages"][-2]["content"][0]["text"]
    assert second["messages"][2]["tts_content"]["tts_audio"] == "<audio_7><audio_8>"
    assert out.result["answer"] == "It is noon." and out.result["tool_calls"][0]["status"] == "ok"
    if vocoder:
        assert out.sample_rate == VOCODER_RATE and [r["tokens"] for r in fake.vocoder_requests] == [[7, 8], [1, 2, 3]]
        assert len(out.audio) == 5 * SAMPLES_PER_TOKEN and not tts.said
    else:
        assert [text for text, _ in tts.said] == ["One moment.", "It is noon."]
