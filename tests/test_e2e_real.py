"""The whole real path: spoken questions (Piper, slowed) in, real planner, tools, Piper speech out.

Runs on the packaged models on CPU; each turn takes seconds, so the cases are few and each
checks a lot: the tool chosen and its arguments, the answer, citations, and that the reply
audio is speech saying the answer (transcribed back with Whisper).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import soundfile

from api.app import create_app
from api.settings import Settings
from model.asr import WhisperASR
from model.audio import SAMPLE_RATE, resample
from tests.http_server import running_server
from tests.redis_server import free_port, running_redis
from tests.speech import piper_wav, voice_wav

pytestmark = pytest.mark.real

FACT = "The head chef at the Copper Kettle restaurant is Marta Lindqvist."
KB_FILES = {
    "kettle.md": f"# The Copper Kettle\n\n{FACT} She has cooked there since 2019.\n\n"
    "## Opening hours\n\nThe restaurant opens at noon on weekdays.\n",
    "garden.txt": "Tomatoes need six hours of sun a day. Water them at the roots, not the leaves.\n",
}


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kb")
    for name, text in KB_FILES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, kb_dir: Path) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), model_dir=data_dir, kb_dir=kb_dir)
    with running_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def asr() -> WhisperASR:
    return WhisperASR()


def _ask_spoken(base_url: str, session: str, question: str) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=600) as client:
        response = client.post(
            f"/v1/sessions/{session}/turns", files={"audio": ("q.wav", piper_wav(question), "audio/wav")}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3 or w.isdigit()}


def _assert_speaks_answer(body: dict[str, Any], asr: WhisperASR) -> str:
    """The reply WAV is speech, and what it says overlaps the answer's words."""
    audio, rate = soundfile.read(io.BytesIO(base64.b64decode(body["audio_wav_b64"])), dtype="float32")
    assert len(audio) / rate > 0.5
    heard = asr.transcribe(resample(audio, rate, SAMPLE_RATE))
    expected = _words(body["answer"])
    overlap = expected & _words(heard)
    assert len(overlap) >= min(2, len(expected)), (body["answer"], heard)
    return heard


def test_spoken_time_in_tokyo(base_url: str, asr: WhisperASR) -> None:
    body = _ask_spoken(base_url, "e2e-tokyo", "What time is it in Tokyo?")
    assert "tokyo" in body["transcript"].lower()
    calls = [c for c in body["tool_calls"] if c["name"] == "get_date_time"]
    assert calls and calls[0]["status"] == "ok", body["tool_calls"]
    assert "tokyo" in json.dumps(calls[0]["arguments"]).lower()
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    hours = {now.strftime("%H:"), now.strftime("%-I:"), f"{now.hour}:"}
    later = (now.hour + 1) % 24  # the minute may roll over during the turn
    hours |= {f"{later:02d}:", f"{later}:", f"{(later - 1) % 12 + 1}:"}
    assert any(h in body["answer"] for h in hours), body["answer"]
    _assert_speaks_answer(body, asr)


def test_spoken_question_answered_from_the_knowledge_base(base_url: str, asr: WhisperASR) -> None:
    body = _ask_spoken(base_url, "e2e-kb", "Who is the head chef at the Copper Kettle restaurant?")
    assert [c["name"] for c in body["tool_calls"]][:1] == ["knowledge_search"], body["tool_calls"]
    assert "marta" in body["answer"].lower(), body["answer"]
    assert any(c["source"] == "kettle.md" and "Marta" in c["snippet"] for c in body["citations"]), body["citations"]
    _assert_speaks_answer(body, asr)


def test_greeting_calls_no_tool(base_url: str, asr: WhisperASR) -> None:
    body = _ask_spoken(base_url, "e2e-hello", "Hello there!")
    assert body["tool_calls"] == []
    assert body["answer"].strip()
    _assert_speaks_answer(body, asr)


def test_how_a_question_was_said_reaches_the_planner(base_url: str) -> None:
    """The same voice asks slow and low, then again fast and high (impatient): the figures tell
    the turns apart, the second turn's prompt carries the cue, and its reply is said calmer and
    slower."""
    bodies = []
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for question, voice in (
            ("Tell me a joke about computers.", "piper:joe:p0.85-r0.7"),
            ("Tell me a joke about computers.", "piper:joe:p1.25-r1.4"),
        ):
            files = {"audio": ("q.wav", voice_wav(question, voice), "audio/wav")}
            response = client.post("/v1/sessions/e2e-cues/turns", files=files)
            assert response.status_code == 200, response.text
            bodies.append(response.json())
        traces = client.get("/v1/sessions/e2e-cues/traces").json()["traces"]
    slow, fast = (body["paralinguistics"] for body in bodies)
    assert "joke" in bodies[1]["transcript"].lower()
    assert slow["rate_wps"] * 1.5 < fast["rate_wps"] and slow["pitch_hz"] * 1.25 < fast["pitch_hz"], (slow, fast)
    assert "faster than before" in fast["cue"] and "pitch higher than before" in fast["cue"], fast
    assert fast["delivery"] == {"pitch": 0.95, "rate": 0.88}
    plan = next(c for c in traces[-1]["root"]["children"] if c["name"] == "plan")
    assert f"[{fast['cue']}]" in json.loads(plan["attributes"]["gen_ai.input.messages"])[0]["content"]
    assert bodies[1]["tool_calls"] == [] and bodies[1]["answer"].strip()  # the cue is no request


def _cli(data: Path, models: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICEGRAPH_DATA_DIR": str(data), "VOICEGRAPH_MODEL_DIR": str(models)}
    command = [sys.executable, "-m", "api.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)


def test_memory_survives_a_restart_of_the_process(tmp_path: Path, data_dir: Path) -> None:
    first = _cli(tmp_path, data_dir, "ask", "--session", "ada", "--text", "My name is Ada.", "--json", "--no-speak")
    assert first.returncode == 0, first.stderr
    second = _cli(tmp_path, data_dir, "ask", "--session", "ada", "--text", "What is my name?", "--json")
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["turn"] == 2
    assert "ada" in result["answer"].lower(), result["answer"]
    assert result["audio_path"] and Path(result["audio_path"]).stat().st_size > 10_000


def test_tenant_memory_on_redis_survives_restarts_with_the_real_model(tmp_path: Path, data_dir: Path) -> None:
    """With keys and Redis: "My name is Ada", the service and Redis restart, and the answer knows."""
    port, aof = free_port(), tmp_path / "redis"
    aof.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        model_dir=data_dir,
        redis_url=f"redis://127.0.0.1:{port}/0",  # type: ignore[arg-type]
        api_keys="key-a:acme,key-b:globex",  # type: ignore[arg-type]
        speak=False,
    )
    answers = []
    for key, text in (("key-a", "My name is Ada."), ("key-a", "What is my name?"), ("key-b", "What is my name?")):
        with running_redis(port, aof), running_server(create_app(settings)) as url:
            response = httpx.post(
                f"{url}/v1/sessions/ada/turns", json={"text": text}, headers={"X-API-Key": key}, timeout=600
            )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert answers[1]["turn"] == 2 and "ada" in answers[1]["answer"].lower(), answers[1]["answer"]
    assert answers[2]["turn"] == 1 and "ada" not in answers[2]["answer"].lower(), answers[2]["answer"]


def test_a_spoken_tool_turn_streams_its_announcement_first_and_reads_each_token_once(base_url: str) -> None:
    """Over server-sent events: the line said while the clock runs is heard first, the answer's
    audio after it, and the answer step reuses the whole tool-choice step's KV state."""
    events: list[tuple[str, dict[str, Any]]] = []
    files = {"audio": ("q.wav", piper_wav("What time is it in London?"), "audio/wav")}
    url, headers = "/v1/sessions/e2e-stream/turns", {"accept": "text/event-stream"}
    with (
        httpx.Client(base_url=base_url, timeout=600) as client,
        client.stream("POST", url, files=files, headers=headers) as r,
    ):
        assert r.status_code == 200
        name = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
        traces = client.get("/v1/sessions/e2e-stream/traces").json()["traces"]
    names = [n for n, _ in events]
    # the clock's line is said as soon as it is chosen, before its arguments are written
    assert names[:3] == ["transcript", "audio", "tool_call"] and names[-1] == "result", names
    said = [data["text"] for name, data in events if name == "audio" and data["text"]]
    assert said[0] == "Let me check the time.", said  # the line first, as soon as the clock is chosen; then the answer
    answer = events[-1][1]["answer"]
    assert len(said) > 1 and all(text in answer for text in said[1:]), (said, answer)
    assert events[2][1]["name"] == "get_date_time" and "london" in json.dumps(events[2][1]["arguments"]).lower()
    plans = [c for c in traces[-1]["root"]["children"] if c["name"] == "plan"]
    choice, answer = (p["attributes"] for p in plans)
    assert answer["gen_ai.usage.cache_read.input_tokens"] >= choice["gen_ai.usage.input_tokens"]
    assert answer["voicegraph.plan.prefilled_tokens"] < 100  # the call's end, the result, the reply's opening
