"""A turn streamed as server-sent events, on a real server with the scripted planner."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.base import PlanRequest
from model.errors import PlannerError
from model.testing import RecordingSynthesizer, ScriptedPlanner, Step, call, reply
from tests.http_server import running_server

ANSWER = "It is noon in Tokyo. Have a nice day. Goodbye."
STREAM = {"Accept": "text/event-stream"}


class GatedSynthesizer(RecordingSynthesizer):
    """Speaks like RecordingSynthesizer; while `gate` is clear, the second sentence waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def synthesize(self, text: str, voice: str | None = None) -> Iterator[np.ndarray]:
        if self.said:
            self.gate.wait(30)
        yield from super().synthesize(text, voice)


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner(seconds_per_word=0.05)


@pytest.fixture(scope="module")
def tts() -> GatedSynthesizer:
    return GatedSynthesizer()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, planner: ScriptedPlanner, tts: GatedSynthesizer) -> Iterator[Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("stream"), voices=False, web_search="off")

    def services(s: Settings) -> Any:
        return open_services(s, planner=planner, tts=tts)

    with running_server(create_app(settings, services)) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def _script(planner: ScriptedPlanner, *steps: Any) -> None:
    planner.steps = [*planner.steps[: len(planner.requests)], *steps]


def _events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    name = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def _stream(client: httpx.Client, session: str, text: str) -> list[tuple[str, Any]]:
    with client.stream("POST", f"/v1/sessions/{session}/turns", json={"text": text}, headers=STREAM) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        return list(_events(response))


def _seconds(b64: str) -> float:
    audio, rate = soundfile.read(io.BytesIO(base64.b64decode(b64)))
    return float(len(audio) / rate)


def test_a_turn_streams_as_it_happens_and_ends_with_the_json_answer(
    client: httpx.Client, planner: ScriptedPlanner, tts: GatedSynthesizer
) -> None:
    _script(planner, call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER))
    said_before = len(tts.said)
    events = _stream(client, "streamed", "What time is it in Tokyo?")
    names = [name for name, _ in events]
    # the line said while the tool runs is heard first, then the answer written after the result
    assert names[:2] == ["transcript", "tool_call"] and names[-1] == "result"
    assert names.index("tool_result") < names.index("text")
    assert tts.said[said_before][0] == "Let me check the time in Tokyo."
    assert events[0][1] == {"text": "What time is it in Tokyo?"}
    assert events[1][1]["name"] == "get_date_time" and events[1][1]["arguments"] == {"timezone": "Asia/Tokyo"}
    result_event = events[names.index("tool_result")][1]
    assert result_event["status"] == "ok" and result_event["id"] == events[1][1]["id"]
    assert "".join(data["text"] for name, data in events if name == "text").strip() == ANSWER
    chunks = [data for name, data in events if name == "audio"]
    # the line said while the tool ran, then the answer as it streams: its first phrase, the rest of its
    # first sentence, and each sentence after
    assert len(chunks) == 5
    answer_audio = names.index("audio", names.index("text"))
    assert answer_audio < len(names) - 1 - names[::-1].index("text")  # the answer's first, before its last text
    result = events[-1][1]
    assert result["answer"] == ANSWER and result["turn"] == 1 and len(result["trace_id"]) == 32
    assert _seconds(result["audio_wav_b64"]) == pytest.approx(sum(_seconds(c["audio_wav_b64"]) for c in chunks))
    stored = client.get("/v1/sessions/streamed").json()
    assert stored["turns"][0]["answer"] == ANSWER and stored["turns"][0]["trace_id"] == result["trace_id"]


def test_what_is_refused_before_the_turn_starts_is_an_ordinary_http_error(client: httpx.Client) -> None:
    response = client.post("/v1/sessions/refused/turns", json={"text": "   "}, headers=STREAM)
    assert response.status_code == 422 and response.json() == {"detail": "text is empty"}
    response = client.post("/v1/sessions/bad id!/turns", json={"text": "hi"}, headers=STREAM)
    assert response.status_code == 422 and "session id" in response.json()["detail"]


def test_a_turn_that_fails_midway_ends_with_an_error_event_and_keeps_nothing(
    client: httpx.Client, planner: ScriptedPlanner
) -> None:
    def down(request: PlanRequest) -> Step:
        raise PlannerError("the planner server is unreachable")

    _script(planner, reply("First."), down)
    assert _stream(client, "failing", "one")[-1][0] == "result"
    events = _stream(client, "failing", "two")
    assert [name for name, _ in events] == ["transcript", "error"]
    assert events[-1][1] == {"status": 503, "detail": "the planner failed to answer: the planner server is unreachable"}
    assert client.get("/v1/sessions/failing").json()["turn_count"] == 1
    traces = client.get("/v1/sessions/failing/traces").json()["traces"]
    assert [t["status"] for t in traces] == ["ok", "error"]


def test_a_client_that_leaves_mid_turn_cancels_it_and_the_session_stays_as_it_was(
    client: httpx.Client, planner: ScriptedPlanner, tts: GatedSynthesizer
) -> None:
    _script(planner, reply("Hello."), reply(ANSWER), reply("Back again."))
    assert _stream(client, "leaving", "one")[-1][0] == "result"
    tts.said.clear()
    tts.gate.clear()  # the second sentence waits: the turn is still running when the client leaves
    try:
        with client.stream("POST", "/v1/sessions/leaving/turns", json={"text": "two"}, headers=STREAM) as response:
            for name, _ in _events(response):
                if name == "audio":
                    break  # leave after the first sentence is heard
    finally:
        tts.gate.set()
    for _ in range(100):  # the server notices the closed connection and rolls the turn back
        traces = client.get("/v1/sessions/leaving/traces").json()["traces"]
        if len(traces) == 2:
            break
        threading.Event().wait(0.1)
    assert [t["status"] for t in traces] == ["ok", "error"]
    assert client.get("/v1/sessions/leaving").json()["turn_count"] == 1
    third = client.post("/v1/sessions/leaving/turns", json={"text": "three"})  # the session is free again
    assert third.status_code == 200 and third.json()["turn"] == 2 and third.json()["answer"] == "Back again."


def test_the_json_endpoint_is_unchanged_without_the_header(client: httpx.Client, planner: ScriptedPlanner) -> None:
    _script(planner, reply("Plain."))
    response = client.post("/v1/sessions/plain/turns", json={"text": "hi"})
    assert response.headers["content-type"] == "application/json" and response.json()["answer"] == "Plain."


def test_the_stream_is_in_the_openapi_document(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/sessions/{session_id}/turns"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(content)
