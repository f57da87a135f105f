"""POST /v1/chat/completions with the openai SDK as the client: audio in, spoken answer out,
the conversation in the request. A scripted planner; real hearing (Whisper) and voice (Piper)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import soundfile

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner, call, reply
from tests.http_server import running_server
from tests.speech import piper_wav


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, planner: ScriptedPlanner) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("chat"), voices=False, web_search="off")

    def services(s: Settings) -> Any:
        return open_services(s, planner=planner)

    with running_server(create_app(settings, services)) as url:
        yield url


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused")


def _script(planner: ScriptedPlanner, *steps: Any) -> None:
    planner.steps = [*planner.steps[: len(planner.requests)], *steps]


def test_a_spoken_question_in_a_conversation_gets_a_spoken_answer(
    client: openai.OpenAI, planner: ScriptedPlanner, server: str
) -> None:
    _script(planner, call("get_date_time", timezone="Asia/Tokyo"), reply("It is noon in Tokyo, Ada."))
    question = base64.b64encode(piper_wav("What time is it in Tokyo?")).decode()
    completion = client.chat.completions.create(
        model="voicegraph",
        modalities=["text", "audio"],
        audio={"voice": "default", "format": "wav"},
        messages=[
            {"role": "system", "content": "Call the user by name."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": question, "format": "wav"}}]},
        ],
    )
    message = completion.choices[0].message
    assert message.content is None and message.audio is not None
    assert message.audio.transcript == "It is noon in Tokyo, Ada."
    audio, rate = soundfile.read(io.BytesIO(base64.b64decode(message.audio.data)))
    assert len(audio) / rate > 1.0
    asked = planner.requests[-2]
    assert asked.instructions == "Call the user by name."
    assert [m["content"] for m in asked.messages[:2]] == ["My name is Ada.", "Hello Ada."]
    assert "tokyo" in str(asked.messages[-1]["content"]).lower()  # heard by Whisper
    assert httpx.get(f"{server}/v1/sessions").json()["sessions"] == []  # nothing kept


def test_a_text_answer_streams_as_chunks(client: openai.OpenAI, planner: ScriptedPlanner) -> None:
    _script(planner, reply("One. Two. Three."))
    stream = client.chat.completions.create(
        model="voicegraph", stream=True, messages=[{"role": "user", "content": "Count to three."}]
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "One. Two. Three."
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_spoken_chunks_carry_pcm16_audio_and_its_transcript(client: openai.OpenAI, planner: ScriptedPlanner) -> None:
    _script(planner, reply("First sentence. Second sentence."))
    stream = client.chat.completions.create(
        model="voicegraph",
        stream=True,
        modalities=["text", "audio"],
        audio={"voice": "default", "format": "pcm16"},
        messages=[{"role": "user", "content": "Say two sentences."}],
    )
    audio = [getattr(c.choices[0].delta, "audio", None) for c in stream if c.choices]
    pieces = [a for a in audio if a]
    assert "".join(p.transcript or "" for p in pieces).strip() == "First sentence. Second sentence."
    assert sum(len(base64.b64decode(p.data or "")) for p in pieces) / 2 / 24_000 > 1.0


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([{"role": "assistant", "content": "Hi."}], "the last message must be the user's"),
        ([{"role": "user", "content": "   "}], "text is empty"),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "@@", "format": "wav"}}]}],
            "not valid base64",
        ),
        ([{"role": "tool", "content": "x"}], "messages.0.role"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(client: openai.OpenAI, messages: list[Any], says: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.chat.completions.create(model="voicegraph", messages=messages)
    assert says in str(refused.value)
