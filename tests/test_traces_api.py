"""Turn traces over real HTTP: the traces API, tenants, failures, truncation, /metrics, OTLP export,
Redis, and `voicegraph trace`, on a real server with the scripted planner and a recording TTS.

One service (SQLite, two tenants' keys, a Python tool that always fails, spans exported to a
loopback OTLP receiver) serves most tests; settings that change what a trace holds get a
service of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from agent.tracing import iter_spans
from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.base import PlanRequest, SpeechRecognizer
from model.errors import PlannerError
from model.testing import RecordingSynthesizer, ScriptedPlanner, Step, call, reply
from tests.http_server import running_server
from tests.otlp_receiver import OtlpReceiver, running_otlp_receiver
from tests.redis_server import free_port, running_redis
from tests.tool_fixtures import BACKEND_DOWN

KEY_A, KEY_B = "trace-key-a-5d1e0c7b", "trace-key-b-93a6f2e4"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"Authorization": f"Bearer {KEY_B}"}
TOOL_CHILDREN = ["listen", "plan", "execute_tool get_date_time", "plan"]
"""A tool turn's spans in the order they start; `speak` is among them too, from the line said while
the tool runs to the answer's last sentence (see `_children`)."""


def _children(root: dict[str, Any]) -> list[str]:
    """The names of the turn's child spans, `speak` aside (it starts about when the tool does)."""
    names = [child["name"] for child in root["children"]]
    assert names.count("speak") == 1, names
    return [name for name in names if name != "speak"]


TOKYO = "What time is it in Tokyo?"
ANSWER = "It is noon in Tokyo. Have a nice day."
CONTENT_KEYS = {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "voicegraph.transcript", "voicegraph.answer"}
FAILING_TOOL = "tests.tool_fixtures:out_of_service"


class UnusedASR(SpeechRecognizer):
    """These tests send text only; this keeps the real recognizer from being built."""

    name = "unused"

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        raise AssertionError("no audio turn here")


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, voices=False, web_search="off", **overrides)


@contextlib.contextmanager
def _service(settings: Settings, planner: ScriptedPlanner) -> Iterator[httpx.Client]:
    def services(s: Settings) -> Any:
        return open_services(s, planner=planner, tts=RecordingSynthesizer(), asr=UnusedASR())

    with running_server(create_app(settings, services)) as base_url, httpx.Client(base_url=base_url, timeout=60) as c:
        yield c


def _script(planner: ScriptedPlanner, *steps: Step | Any) -> None:
    """What the planner answers next (the steps already taken stay as they were)."""
    planner.steps = [*planner.steps[: len(planner.requests)], *steps]


def _turn(client: httpx.Client, session: str, text: str = TOKYO, headers: dict[str, str] | None = None) -> Any:
    response = client.post(f"/v1/sessions/{session}/turns", json={"text": text}, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def _tool_turn(client: httpx.Client, planner: ScriptedPlanner, session: str, **kwargs: Any) -> Any:
    _script(planner, call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER))
    return _turn(client, session, **kwargs)


def _traces(client: httpx.Client, session: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = client.get(f"/v1/sessions/{session}/traces", headers=headers or {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["session_id"] == session
    traces: list[dict[str, Any]] = body["traces"]
    return traces


def _span(trace: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [span for span in iter_spans(trace["root"]) if span["name"] == name]
    return found


# --- the shared service ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with running_otlp_receiver() as started:
        yield started


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces-data")


@pytest.fixture(scope="module")
def client(data_dir: Path, planner: ScriptedPlanner, receiver: OtlpReceiver) -> Iterator[httpx.Client]:
    settings = _settings(
        data_dir,
        api_keys=f"{KEY_A}:acme,{KEY_B}:globex",
        tools=[FAILING_TOOL],
        otlp_endpoint=receiver.url,
    )
    with _service(settings, planner) as started:
        yield started


@pytest.fixture(scope="module")
def tokyo(client: httpx.Client, planner: ScriptedPlanner) -> dict[str, Any]:
    """One tool turn of tenant acme's session `tokyo`, shared by the tests that read it back."""
    return dict(_tool_turn(client, planner, "tokyo", headers=A))


def test_a_tool_turn_has_one_trace_in_genai_terms(client: httpx.Client, tokyo: dict[str, Any]) -> None:
    [trace] = _traces(client, "tokyo", A)
    root = trace["root"]
    assert trace["trace_id"] == tokyo["trace_id"] and re.fullmatch(r"[0-9a-f]{32}", trace["trace_id"])
    assert trace["turn"] == 1 and trace["status"] == "ok" and trace["error"] is None
    assert abs(trace["started_at"] - time.time()) < 120 and trace["duration_ms"] == root["duration_ms"] > 0
    assert root["name"] == "turn" and root["status"] == "ok"
    assert _children(root) == TOOL_CHILDREN
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert root["attributes"]["gen_ai.conversation.id"] == "tokyo"
    assert root["attributes"]["gen_ai.request.model"] == "scripted"
    assert root["attributes"]["voicegraph.tenant"] == "acme" and root["attributes"]["voicegraph.turn"] == 1
    assert root["attributes"]["voicegraph.answer"] == ANSWER == tokyo["answer"]

    [tool_call] = tokyo["tool_calls"]
    tool = _span(trace, "execute_tool get_date_time")
    attributes = tool["attributes"]
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "get_date_time" and attributes["gen_ai.tool.type"] == "function"
    assert attributes["gen_ai.tool.call.id"] == tool_call["id"] and tool_call["id"]
    assert json.loads(attributes["gen_ai.tool.call.arguments"]) == {"timezone": "Asia/Tokyo"}
    assert "Asia/Tokyo" in attributes["gen_ai.tool.call.arguments"]
    assert "Tokyo" in attributes["gen_ai.tool.call.result"] and attributes["voicegraph.tool.status"] == "ok"
    assert tool["status"] == "ok" and "error.type" not in attributes and tool["children"] == []
    assert tool["duration_ms"] >= 0 and 0 <= tool["start_ms"] <= root["duration_ms"]
    for span in iter_spans(root):  # every span lies within its turn (times are rounded to 0.1 ms)
        assert span["start_ms"] >= 0 and span["start_ms"] + span["duration_ms"] <= root["duration_ms"] + 0.2
        assert re.fullmatch(r"[0-9a-f]{16}", span["span_id"])
    assert len({span["span_id"] for span in iter_spans(root)}) == len(list(iter_spans(root)))

    first_plan, second_plan = (c for c in root["children"] if c["name"] == "plan")
    assert first_plan["attributes"]["gen_ai.operation.name"] == "chat"
    assert first_plan["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert second_plan["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert first_plan["start_ms"] <= tool["start_ms"] <= second_plan["start_ms"]
    assert _span(trace, "listen")["attributes"]["voicegraph.transcript"] == TOKYO
    said = [s["attributes"]["voicegraph.tts.text"] for s in _span(trace, "speak")["children"]]
    assert said == ["Let me check the time in Tokyo.", "It is noon", "in Tokyo.", "Have a nice day."]


def test_each_turn_adds_a_trace_in_order(client: httpx.Client, planner: ScriptedPlanner) -> None:
    first = _tool_turn(client, planner, "two-turns", headers=A)
    _script(planner, reply("You are welcome."))
    second = _turn(client, "two-turns", "Thanks!", headers=A)
    traces = _traces(client, "two-turns", A)
    assert [(t["turn"], t["trace_id"], t["status"]) for t in traces] == [
        (1, first["trace_id"], "ok"),
        (2, second["trace_id"], "ok"),
    ]
    assert first["trace_id"] != second["trace_id"]
    assert [c["name"] for c in traces[1]["root"]["children"]] == ["listen", "plan", "speak"]
    assert traces[0]["started_at"] < traces[1]["started_at"]


def test_traces_are_the_tenants_own(client: httpx.Client, planner: ScriptedPlanner, tokyo: dict[str, Any]) -> None:
    never = client.get("/v1/sessions/never-was/traces", headers=B)
    other = client.get("/v1/sessions/tokyo/traces", headers=B)
    assert other.status_code == never.status_code == 404
    assert other.json()["detail"] == "no session 'tokyo'"
    assert tokyo["trace_id"] not in other.text
    assert client.delete("/v1/sessions/tokyo", headers=B).status_code == 404

    # B's own session of the same name holds only B's trace; A's is untouched.
    _script(planner, reply("Hello, B."))
    mine = _turn(client, "tokyo", "Hi", headers=B)
    assert [t["trace_id"] for t in _traces(client, "tokyo", B)] == [mine["trace_id"]]
    assert [t["trace_id"] for t in _traces(client, "tokyo", A)] == [tokyo["trace_id"]]

    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {KEY_A[:-1]}"}):
        refused = client.get("/v1/sessions/tokyo/traces", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert tokyo["trace_id"] not in refused.text
    bad = client.get("/v1/sessions/no%20spaces!/traces", headers=A)
    assert bad.status_code == 422 and "session id" in bad.json()["detail"]


def test_a_failed_tool_call_is_an_error_span_in_a_turn_that_goes_on(
    client: httpx.Client, planner: ScriptedPlanner
) -> None:
    _script(planner, call("out_of_service", city="Oslo"), reply("Sorry, the weather is out of reach."))
    result = _turn(client, "broken-tool", "Weather in Oslo?", headers=A)
    [record] = result["tool_calls"]
    assert record["name"] == "out_of_service" and record["status"] == "error"
    [trace] = _traces(client, "broken-tool", A)
    assert trace["status"] == "ok" and trace["root"]["status"] == "ok"
    assert "error.type" not in trace["root"]["attributes"]
    span = _span(trace, "execute_tool out_of_service")
    assert span["status"] == "error" and span["attributes"]["error.type"] == "error"
    assert BACKEND_DOWN in (span["error"] or "") and BACKEND_DOWN in span["attributes"]["gen_ai.tool.call.result"]
    assert span["attributes"]["voicegraph.tool.status"] == "error"
    assert span["attributes"]["gen_ai.tool.call.id"] == record["id"]
    assert json.loads(span["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Oslo"}
    assert _children(trace["root"]) == ["listen", "plan", "execute_tool out_of_service", "plan"]


def _explode(request: PlanRequest) -> Step:
    raise RuntimeError("the planner crashed")


def _backend_down(request: PlanRequest) -> Step:
    raise PlannerError("the planner server is unreachable")


def _failing_turn(client: httpx.Client, session: str, text: str, headers: dict[str, str]) -> httpx.Response:
    """A turn that fails with an unexpected error, on the client's pooled connection: the
    connection stays usable for the requests that follow at once."""
    response = client.post(f"/v1/sessions/{session}/turns", json={"text": text}, headers=headers)
    assert response.status_code == 500 and response.json() == {"detail": "internal error (RuntimeError)"}
    return response


def test_a_failed_turn_keeps_its_trace_and_leaves_the_session_as_it_was(
    client: httpx.Client, planner: ScriptedPlanner
) -> None:
    _script(planner, reply("First."))
    first = _turn(client, "crash", "one", headers=A)
    before = client.get("/v1/sessions/crash", headers=A).json()
    _script(planner, _explode)
    failed = _failing_turn(client, "crash", "two", A)
    assert "the planner crashed" not in failed.text  # the reason is in the trace, not the response

    assert client.get("/v1/sessions/crash", headers=A).json() == before  # rolled back
    assert before["turn_count"] == 1 and [t["transcript"] for t in before["turns"]] == ["one"]
    traces = _traces(client, "crash", A)
    assert [(t["turn"], t["status"]) for t in traces] == [(1, "ok"), (2, "error")]
    assert traces[0]["trace_id"] == first["trace_id"]
    broken = traces[1]
    assert broken["root"]["status"] == "error" and broken["root"]["attributes"]["error.type"] == "RuntimeError"
    assert "the planner crashed" in (broken["error"] or "")
    plan = _span(broken, "plan")
    assert plan["status"] == "error" and plan["attributes"]["error.type"] == "RuntimeError"

    # The next turn is turn 2 again, and gets a trace of its own.
    _script(planner, reply("Second."))
    again = _turn(client, "crash", "two", headers=A)
    assert again["turn"] == 2
    assert [(t["turn"], t["status"]) for t in _traces(client, "crash", A)] == [(1, "ok"), (2, "error"), (2, "ok")]


def test_a_session_whose_only_turn_failed_shows_that_trace(client: httpx.Client, planner: ScriptedPlanner) -> None:
    _script(planner, _backend_down)
    failed = client.post("/v1/sessions/stillborn/turns", json={"text": "hi"}, headers=A)
    assert failed.status_code == 503 and "the planner server is unreachable" in failed.json()["detail"]
    assert client.get("/v1/sessions/stillborn", headers=A).status_code == 404  # nothing landed
    [trace] = _traces(client, "stillborn", A)
    assert trace["status"] == "error" and trace["turn"] == 1
    assert trace["root"]["attributes"]["error.type"] == "PlannerError"
    assert "the planner server is unreachable" in (trace["error"] or "")
    assert client.get("/v1/sessions/stillborn/traces", headers=B).status_code == 404
    assert client.delete("/v1/sessions/stillborn", headers=A).status_code == 204
    assert client.get("/v1/sessions/stillborn/traces", headers=A).status_code == 404


# --- /metrics -------------------------------------------------------------------------------------


def _samples(client: httpx.Client) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    response = client.get("/metrics")  # open, like /healthz, though this service wants keys
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, values


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_turns_stages_and_tool_calls(client: httpx.Client, planner: ScriptedPlanner) -> None:
    _, before = _samples(client)
    _tool_turn(client, planner, "metered", headers=A)
    _script(planner, call("out_of_service", city="Lima"), reply("Sorry."))
    _turn(client, "metered", "Weather in Lima?", headers=A)
    _script(planner, _backend_down)
    assert client.post("/v1/sessions/metered/turns", json={"text": "boom"}, headers=A).status_code == 503
    text, after = _samples(client)

    ok_calls = _value(before, "voicegraph_tool_calls_total", status="ok", tool="get_date_time") + 1
    assert f'voicegraph_tool_calls_total{{status="ok",tool="get_date_time"}} {ok_calls:.1f}\n' in text
    assert _value(after, "voicegraph_tool_calls_total", status="error", tool="out_of_service") == (
        _value(before, "voicegraph_tool_calls_total", status="error", tool="out_of_service") + 1
    )
    assert _value(after, "voicegraph_tool_call_seconds_count", tool="get_date_time") == (
        _value(before, "voicegraph_tool_call_seconds_count", tool="get_date_time") + 1
    )
    for status, landed in (("ok", 2), ("error", 1)):
        assert _value(after, "voicegraph_turns_total", status=status) == (
            _value(before, "voicegraph_turns_total", status=status) + landed
        )
    # Stages come from the turns that landed; "plan" is timed once per turn.
    assert 'voicegraph_turn_stage_seconds_count{stage="plan"}' in text
    for stage in ("plan", "act", "speak", "total"):
        assert _value(after, "voicegraph_turn_stage_seconds_count", stage=stage) >= (
            _value(before, "voicegraph_turn_stage_seconds_count", stage=stage) + 2
        ), stage
    assert _value(after, "voicegraph_turn_stage_seconds_count", stage="asr") == 0  # text turns hear nothing
    assert _value(after, "voicegraph_time_to_first_audio_seconds_count") >= (
        _value(before, "voicegraph_time_to_first_audio_seconds_count") + 2
    )
    assert _value(after, "voicegraph_active_sessions") >= 1
    assert _value(after, "voicegraph_turns_in_progress") == 0
    kinds = ("input", "output", "prefilled", "reused")
    assert {("voicegraph_planner_tokens_total", (("type", kind),)) for kind in kinds} <= set(after)
    assert _value(after, "voicegraph_planner_queue_seconds_count") >= (
        _value(before, "voicegraph_planner_queue_seconds_count") + 2
    )
    assert KEY_A not in text and "metered" not in text  # no keys, no session ids as labels


# --- OTLP -----------------------------------------------------------------------------------------


def test_spans_are_exported_over_otlp_as_the_api_shows_them(
    client: httpx.Client, planner: ScriptedPlanner, receiver: OtlpReceiver
) -> None:
    result = _tool_turn(client, planner, "exported", headers=A)
    [trace] = _traces(client, "exported", A)
    trace_id = trace["trace_id"]
    assert trace_id == result["trace_id"]
    stored = {span["span_id"]: span for span in iter_spans(trace["root"])}

    assert receiver.wait_for(lambda r: len(r.of_trace(trace_id)) >= len(stored), timeout_s=15), (
        f"the receiver got {[s.name for s in receiver.of_trace(trace_id)]} of {trace_id}"
    )
    exported = {span.span_id: span for span in receiver.of_trace(trace_id)}
    assert set(exported) == set(stored)
    for span_id, span in exported.items():
        assert span.name == stored[span_id]["name"]
        assert span.attributes == stored[span_id]["attributes"], span.name
        assert span.resource["service.name"] == "voicegraph"
        assert span.failed is (stored[span_id]["status"] == "error")
    [root] = [span for span in exported.values() if span.name == "turn"]
    [tool] = [span for span in exported.values() if span.name == "execute_tool get_date_time"]
    assert root.parent_span_id == "" and tool.parent_span_id == root.span_id == trace["root"]["span_id"]
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.conversation.id"] == "exported"
    assert tool.attributes["gen_ai.tool.call.id"] == result["tool_calls"][0]["id"]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"timezone": "Asia/Tokyo"}
    assert "Tokyo" in tool.attributes["gen_ai.tool.call.result"]
    assert receiver.refused == 0


def test_an_unreachable_otlp_receiver_neither_fails_nor_slows_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exporter's own timeout (an OpenTelemetry setting) bounds how long a stop waits for it.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2")
    planner = ScriptedPlanner()
    settings = _settings(tmp_path, otlp_endpoint=f"http://127.0.0.1:{free_port()}")
    with _service(settings, planner) as client:
        for turn in (1, 2):
            started = time.monotonic()
            result = _tool_turn(client, planner, "offline")
            assert time.monotonic() - started < 3.0 and result["turn"] == turn
            time.sleep(1.2 if turn == 1 else 0)  # the first batch is being sent (and refused) meanwhile
        assert [t["turn"] for t in _traces(client, "offline")] == [1, 2]
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 10.0


# --- what a trace holds, by settings --------------------------------------------------------------


def test_attribute_values_are_cut_to_trace_max_chars(tmp_path: Path) -> None:
    planner = ScriptedPlanner()
    with _service(_settings(tmp_path, trace_max_chars=40), planner) as client:
        long_text = "Tell me the time in Tokyo, " + "please " * 20
        _script(planner, call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER))
        _turn(client, "cut", long_text)
        [trace] = _traces(client, "cut")
    tool = _span(trace, "execute_tool get_date_time")["attributes"]
    result = tool["gen_ai.tool.call.result"]
    assert 0 < len(result) <= 40 and result.startswith("It is ")
    assert len(tool["gen_ai.tool.description"]) <= 40
    assert _span(trace, "listen")["attributes"]["voicegraph.transcript"] == long_text[:40]
    for span in iter_spans(trace["root"]):
        assert all(len(v) <= 40 for v in span["attributes"].values() if isinstance(v, str)), span["name"]
    assert trace["root"]["attributes"]["gen_ai.conversation.id"] == "cut"


def test_without_trace_content_nothing_said_or_passed_is_kept(tmp_path: Path) -> None:
    planner = ScriptedPlanner()
    with _service(_settings(tmp_path, trace_content=False), planner) as client:
        result = _tool_turn(client, planner, "private")
        [trace] = _traces(client, "private")
    kept = {key for span in iter_spans(trace["root"]) for key in span["attributes"]}
    assert not kept & CONTENT_KEYS and "voicegraph.tts.text" not in kept
    dumped = json.dumps(trace)
    for said in ("What time is it", "noon", "Have a nice day"):  # asked, answered
        assert said not in dumped, said
    assert not re.search(r"\d:\d\d [AP]M", dumped)  # the tool's result, "It is 10:15 PM on ..."
    assert _children(trace["root"]) == TOOL_CHILDREN  # the shape and the names stay
    tool = _span(trace, "execute_tool get_date_time")["attributes"]
    assert tool["gen_ai.tool.name"] == "get_date_time" and tool["gen_ai.tool.call.id"] == result["tool_calls"][0]["id"]
    assert tool["voicegraph.tool.status"] == "ok"
    assert result["answer"] == ANSWER  # the turn itself is whole


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, ScriptedPlanner, str]]:
    planner = ScriptedPlanner()
    with running_redis() as url:
        settings = _settings(tmp_path_factory.mktemp("redis-data"), redis_url=url, session_ttl_s=3600)
        with _service(settings, planner) as client:
            yield client, planner, url


def test_traces_round_trip_through_redis_and_go_with_their_session(
    on_redis: tuple[httpx.Client, ScriptedPlanner, str],
) -> None:
    client, planner, url = on_redis
    first = _tool_turn(client, planner, "kept")
    _script(planner, reply("Bye."))
    second = _turn(client, "kept", "Bye!")
    traces = _traces(client, "kept")
    assert [(t["turn"], t["trace_id"]) for t in traces] == [(1, first["trace_id"]), (2, second["trace_id"])]
    assert _children(traces[0]["root"]) == TOOL_CHILDREN
    tool = _span(traces[0], "execute_tool get_date_time")["attributes"]
    assert tool["gen_ai.tool.call.id"] == first["tool_calls"][0]["id"]
    assert json.loads(tool["gen_ai.tool.call.arguments"]) == {"timezone": "Asia/Tokyo"}

    store = redis.Redis.from_url(url)
    try:
        key = "voicegraph:traces:local:kept"
        assert store.llen(key) == 2 and 0 < int(store.ttl(key)) <= 3600  # expires with the session
        assert client.delete("/v1/sessions/kept").status_code == 204
        assert client.get("/v1/sessions/kept/traces").status_code == 404
        assert not store.exists(key)
    finally:
        store.close()


# --- `voicegraph trace` ---------------------------------------------------------------------------


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEGRAPH_")}
    return {**env, **{f"VOICEGRAPH_{k.upper()}": v for k, v in settings.items()}}


def _trace_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "trace", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _trace_clis(env: dict[str, str], *runs: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Several `voicegraph trace` runs at once (each starts a Python of its own)."""
    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda args: _trace_cli(env, *args), runs))


def test_trace_cli_prints_the_sessions_trees(client: httpx.Client, data_dir: Path, tokyo: dict[str, Any]) -> None:
    api = client.get("/v1/sessions/tokyo/traces", headers=A).json()
    env = _env(data_dir=str(data_dir))
    tree, as_json, everything, other_tenant, unknown, bad_id, no_turn = _trace_clis(
        env,
        ("tokyo", "--tenant", "acme"),
        ("tokyo", "--tenant", "acme", "--json"),
        ("tokyo", "--tenant", "acme", "--all", "--turn", "1"),
        ("tokyo",),  # the local tenant has no such session
        ("nobody-here", "--tenant", "acme"),
        ("bad id!",),
        ("tokyo", "--tenant", "acme", "--turn", "9"),
    )
    for done in (tree, as_json, everything):
        assert done.returncode == 0, done.stderr
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("turn 1 ") and tokyo["trace_id"] in lines[0] and lines[0].endswith("ok")
    [tool_line] = [line for line in lines if "execute_tool get_date_time" in line]
    assert re.search(r"\d+\.\d ms", tool_line) and 'args={"timezone": "Asia/Tokyo"}' in tool_line
    assert "result=It is " in tool_line
    names = [re.sub(r"^[\s│├└─]*", "", line).split("  ")[0] for line in lines[1:]]
    assert [name for name in names if name not in ("speak", "synthesize")][:5] == ["turn", *TOOL_CHILDREN]
    assert "gen_ai.tool.call.id" not in tree.stdout

    printed = json.loads(as_json.stdout)
    assert printed["session_id"] == "tokyo" and printed["traces"] == api["traces"]
    assert printed["traces"][0]["trace_id"] == tokyo["trace_id"]

    assert f"gen_ai.tool.call.id = {tokyo['tool_calls'][0]['id']}" in everything.stdout
    assert "gen_ai.conversation.id = tokyo" in everything.stdout

    for done, message in (
        (other_tenant, "no traces for session 'tokyo' of tenant 'local'"),
        (unknown, "no traces for session 'nobody-here'"),
        (bad_id, "session id"),
        (no_turn, "has no trace of turn 9"),
    ):
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert done.stdout == ""


def test_trace_cli_reads_traces_from_redis(on_redis: tuple[httpx.Client, ScriptedPlanner, str], tmp_path: Path) -> None:
    client, planner, url = on_redis
    result = _tool_turn(client, planner, "from-redis")
    env = _env(data_dir=str(tmp_path / "empty"), redis_url=url)
    tree, unknown = _trace_clis(env, ("from-redis",), ("nobody-here",))
    assert tree.returncode == 0, tree.stderr
    assert result["trace_id"] in tree.stdout and "execute_tool get_date_time" in tree.stdout
    assert 'args={"timezone": "Asia/Tokyo"}' in tree.stdout
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: ") and "Traceback" not in unknown.stderr
    assert not (tmp_path / "empty" / "memory.sqlite").exists()  # it read Redis, not a data dir
