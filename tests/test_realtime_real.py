"""/v1/realtime and /v1/chat/completions on the real path: the packaged planner, Whisper,
Silero and Piper, with the openai SDK as the client and speech streamed in at the pace it
is spoken."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import openai
import pytest

from api.app import create_app
from api.settings import Settings
from model.asr import WhisperASR, packaged_recognizer
from model.audio import SAMPLE_RATE, resample
from model.wer import normalize_words
from tests.http_server import running_server
from tests.realtime_client import collect, connect, send_speech
from tests.speech import piper_wav

pytestmark = [pytest.mark.real, pytest.mark.anyio]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("realtime-real"), model_dir=data_dir, web_search="off")
    with running_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def checker(data_dir: Path) -> WhisperASR:
    """The larger packaged Whisper, to check what an answer's audio says: tiny.en once heard
    "Let me check the time. The current time in Tokyo is 4:08 AM on Monday, 7 December." with
    half its words left out."""
    return packaged_recognizer("base", data_dir)


def _heard_back(events: list[Any], checker: WhisperASR) -> str:
    """What the answer's audio says, transcribed by `checker`."""
    pcm = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    assert len(audio) / 24_000 > 0.5
    return checker.transcribe(resample(audio, 24_000, SAMPLE_RATE)).lower()


def _tells_the_time_in_tokyo(said: str) -> bool:
    """Whether `said` gives the hour it is in Tokyo (or the next, the minute having turned)."""
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    hours = {f"{h}:" for h in (now.hour, (now.hour + 1) % 24, now.hour % 12 or 12, (now.hour + 1) % 12 or 12)}
    return any(h in said for h in hours | {f"{now.hour:02d}:"})


async def test_a_spoken_question_streamed_live_is_answered_with_a_tool(server: str, checker: WhisperASR) -> None:
    async with connect(server, session_id="rt-real-tokyo") as connection:
        await connection.session.update(
            session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper"}}}}
        )
        await send_speech(connection, piper_wav("What time is it in Tokyo?"), real_time=True)
        events = await collect(connection)
    kinds = [e.type for e in events]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
    heard = next(e for e in events if e.type == "conversation.item.input_audio_transcription.completed")
    assert "tokyo" in heard.transcript.lower()
    call = next(e.item for e in events if e.type == "response.output_item.done" and e.item.type == "mcp_call")
    assert call.name == "get_date_time" and "tokyo" in call.arguments.lower()
    assert "response.mcp_call.completed" in kinds
    said = next(e for e in events if e.type == "response.output_audio_transcript.done").transcript
    assert _tells_the_time_in_tokyo(said), said
    back = _heard_back(events, checker)
    words, heard = normalize_words(said), set(normalize_words(back))
    assert sum(word in heard for word in words) >= 0.7 * len(words), (said, back)  # the audio says the answer
    assert events[-1].response.status == "completed" and events[-1].response.usage.output_tokens > 0


async def test_speaking_over_a_real_answer_cuts_it_and_the_follow_up_knows_what_was_heard(server: str) -> None:
    async with connect(server, session_id="rt-real-barge") as connection:
        await send_speech(connection, piper_wav("Tell me about the history of the Roman empire."), real_time=True)
        first = await collect(connection, until="response.output_audio.delta")
        await send_speech(connection, piper_wav("Sorry, stop. My name is Ada."), real_time=True)
        cut = await collect(connection, until="response.done")
        answer = await collect(connection, until="response.done")
    assert cut[-1].response.status == "cancelled", [e.type for e in first + cut]
    kinds = [e.type for e in cut]
    started = kinds.index("input_audio_buffer.speech_started")
    assert "response.output_audio.delta" not in kinds[started + 1 :]
    assert answer[-1].response.status == "completed"
    async with httpx.AsyncClient(base_url=server) as http:
        turns = (await http.get("/v1/sessions/rt-real-barge")).json()["turns"]
    assert len(turns) == 2 and "rom" in turns[0]["transcript"].lower()
    assert "name" in turns[1]["transcript"].lower()


async def test_typed_follow_ups_remember_the_spoken_turn(server: str) -> None:
    async with connect(server, session_id="rt-real-memory") as connection:
        await send_speech(connection, piper_wav("Hello, my name is Peter."), real_time=True)
        await collect(connection)
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is my name?"}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        events = await collect(connection)
    async with httpx.AsyncClient(base_url=server) as http:
        heard = (await http.get("/v1/sessions/rt-real-memory")).json()["turns"][0]["transcript"]
    name = heard.rstrip(".!? ").split()[-1].lower()  # the name as it was heard ("Peter", or close to it)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert name in text.lower(), (heard, text, json.dumps([e.type for e in events]))


async def test_the_audio_chat_completions_api_answers_a_spoken_question_out_loud(server: str) -> None:
    question = base64.b64encode(piper_wav("What time is it in Tokyo?")).decode()
    async with openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="unused") as client:
        completion = await client.chat.completions.create(
            model="voicegraph",
            modalities=["text", "audio"],
            audio={"voice": "default", "format": "wav"},
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": question, "format": "wav"}}],
                }
            ],
        )
    audio = completion.choices[0].message.audio
    assert audio is not None and _tells_the_time_in_tokyo(audio.transcript), audio
    assert completion.usage is not None and completion.usage.completion_tokens > 0
