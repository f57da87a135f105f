"""The HTTP face on a real server, with the scripted planner and the real ASR and TTS."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from api.app import create_app
from api.compose import Services, open_services
from api.settings import Settings
from model.audio import SAMPLE_RATE, encode_wav
from model.testing import ScriptedPlanner, call, reply
from tests.http_server import running_server
from tests.speech import espeak_wav

LIMIT_BYTES = 400_000
LIMIT_SECONDS = 8.0


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, planner: ScriptedPlanner) -> Iterator[tuple[str, Services]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        max_upload_bytes=LIMIT_BYTES,
        max_audio_seconds=LIMIT_SECONDS,
    )
    built: list[Services] = []

    def services(settings: Settings) -> Any:
        context = open_services(settings, planner=planner)

        class _Capture:
            async def __aenter__(self) -> Services:
                built.append(await context.__aenter__())
                return built[0]

            async def __aexit__(self, *exc: object) -> None:
                await context.__aexit__(*exc)

        return _Capture()

    with running_server(create_app(settings, services)) as base_url:
        yield base_url, built[0]


def _client(server: tuple[str, Services]) -> httpx.Client:
    return httpx.Client(base_url=server[0], timeout=120)


def _stored_turns(server: tuple[str, Services], session: str) -> int:
    import asyncio

    snapshot = asyncio.run(server[1].runner.history("local", session))
    return int(snapshot.values.get("turn", 0))


def test_readyz_on_sqlite(server: tuple[str, Services]) -> None:
    with _client(server) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "memory": "sqlite"}


def test_healthz(server: tuple[str, Services]) -> None:
    with _client(server) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["tools"] == [
        "audio_search",
        "get_date_time",
        "get_weather",
        "knowledge_search",
        "web_search",
    ]


def test_text_turn_runs_a_tool_and_returns_speech(server: tuple[str, Services], planner: ScriptedPlanner) -> None:
    planner.steps = [*planner.steps[: len(planner.requests)], call("get_date_time", timezone="Tokyo"), reply("Noon.")]
    with _client(server) as client:
        response = client.post("/v1/sessions/http-text/turns", json={"text": "What time is it in Tokyo?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["turn"] == 1 and body["answer"] == "Noon." and body["session_id"] == "http-text"
    [tool_call] = body["tool_calls"]
    assert tool_call["name"] == "get_date_time" and tool_call["status"] == "ok"
    assert re.search(r"It is \d+:\d\d [AP]M on .* in Tokyo\.", planner.requests[-1].messages[-1]["content"])
    audio, rate = soundfile.read(io.BytesIO(base64.b64decode(body["audio_wav_b64"])))
    assert rate == body["sample_rate"] and len(audio) / rate > 0.2
    assert set(body["timings_ms"]) >= {"plan", "act", "speak", "total"}


def test_audio_turn_is_transcribed(server: tuple[str, Services], planner: ScriptedPlanner) -> None:
    planner.steps = [*planner.steps[: len(planner.requests)], reply("Hello to you.")]
    wav = espeak_wav("Hello there, how are you today?")
    with _client(server) as client:
        response = client.post(
            "/v1/sessions/http-audio/turns", files={"audio": ("q.wav", wav, "audio/wav")}, data={"speak": "false"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "hello" in body["transcript"].lower() and body["audio_wav_b64"] is None
    assert body["timings_ms"]["asr"] > 0


def _silence(seconds: float) -> bytes:
    return encode_wav(np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)


BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("no-audio-part", {"data": {"speak": "true"}, "files": {"other": ("x", b"1")}}, 400, "'audio' file part"),
    ("empty-audio", {"files": {"audio": ("q.wav", b"", "audio/wav")}}, 400, "empty"),
    ("corrupt-audio", {"files": {"audio": ("q.wav", b"RIFF\x00\x00garbage" * 50, "audio/wav")}}, 422, "audio"),
    ("png", {"files": {"audio": ("q.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 300, "image/png")}}, 422, "audio"),
    ("id3-bomb", {"files": {"audio": ("q.mp3", (b"ID3\x04" + bytes(6)) * 30_000, "audio/mpeg")}}, 422, "ID3 tags"),
    ("too-large", {"files": {"audio": ("q.wav", b"\x00" * (LIMIT_BYTES + 10), "audio/wav")}}, 413, "larger than"),
    ("too-long", {"files": {"audio": ("q.wav", _silence(LIMIT_SECONDS + 2), "audio/wav")}}, 413, "more than 8 s"),
    ("silence", {"files": {"audio": ("q.wav", _silence(2), "audio/wav")}}, 422, "no speech"),
    ("empty-text", {"json": {"text": ""}}, 422, "text"),
    ("blank-text", {"json": {"text": "   "}}, 422, "text is empty"),
    ("unknown-field", {"json": {"text": "hi", "colour": "red"}}, 422, "colour"),
    ("not-json", {"content": b"{nope", "headers": {"content-type": "application/json"}}, 422, "json"),
    ("plain-text", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "multipart/form-data"),
]


@pytest.mark.parametrize(("case", "request_args", "code", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    server: tuple[str, Services],
    planner: ScriptedPlanner,
    case: str,
    request_args: dict[str, Any],
    code: int,
    message: str,
) -> None:
    asked = len(planner.requests)
    with _client(server) as client:
        response = client.post(f"/v1/sessions/bad-{case}/turns", **request_args)
    assert response.status_code == code, response.text
    assert message.lower() in response.json()["detail"].lower()
    assert "Traceback" not in response.text
    assert len(planner.requests) == asked
    assert _stored_turns(server, f"bad-{case}") == 0


def test_malformed_session_id(server: tuple[str, Services]) -> None:
    with _client(server) as client:
        response = client.post("/v1/sessions/no%20spaces!/turns", json={"text": "hi"})
    assert response.status_code == 422 and "session id" in response.json()["detail"]


def test_data_dir_holds_the_session(server: tuple[str, Services]) -> None:
    assert Path(server[1].settings.sqlite_path).exists()
