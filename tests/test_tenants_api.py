"""Tenants, API keys, the sessions API and Redis outages, over real HTTP on a real Redis.

The scripted planner answers "What is my name?" from the conversation it is shown, so a
session that was lost would answer differently. Redis runs with an append-only file, so
stopping it and the service between turns must lose nothing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.base import PlanRequest
from model.testing import ScriptedPlanner, Step, reply
from tests.http_server import running_server
from tests.redis_server import free_port, running_redis

KEY_A, KEY_B = "key-a-7f3c9e1d-secret", "key-b-0b5a44c2-secret"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"X-API-Key": KEY_B}


def _remembers(request: PlanRequest) -> Step:
    said = " ".join(m["content"] for m in request.messages if m["role"] == "user" and isinstance(m["content"], str))
    found = re.search(r"My name is (\w+)", said)
    return reply(f"Your name is {found.group(1)}." if found else "I do not know your name.")


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner([_remembers] * 100)


@contextlib.contextmanager
def _service(settings: Settings, planner: ScriptedPlanner) -> Iterator[httpx.Client]:
    app = create_app(settings, lambda s: open_services(s, planner=planner))
    with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


def _turn(client: httpx.Client, headers: dict[str, str], text: str, session: str = "ada") -> httpx.Response:
    return client.post(f"/v1/sessions/{session}/turns", json={"text": text}, headers=headers)


def test_tenant_memory_survives_restarts_of_service_and_redis_and_outages(
    tmp_path: Path, planner: ScriptedPlanner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    port, aof = free_port(), tmp_path / "redis"
    aof.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=f"redis://127.0.0.1:{port}/0",  # type: ignore[arg-type]
        api_keys=f"{KEY_A}:acme,{KEY_B}:globex",  # type: ignore[arg-type]
        speak=False,
    )
    with running_redis(port, aof), _service(settings, planner) as client:
        first = _turn(client, A, "My name is Ada.")
        assert first.status_code == 200, first.text
    # Both the service and Redis were stopped; start both again.
    outage = running_redis(port, aof)
    outage.__enter__()
    with _service(settings, planner) as client:
        second = _turn(client, A, "What is my name?")
        assert second.status_code == 200, second.text
        assert second.json()["turn"] == 2 and "Ada" in second.json()["answer"]

        # Tenant B sees nothing of A's, and cannot delete it.
        assert client.get("/v1/sessions/ada", headers=B).status_code == 404
        assert client.delete("/v1/sessions/ada", headers=B).status_code == 404
        assert client.get("/v1/sessions", headers=B).json() == {"sessions": []}
        assert "Ada" not in _turn(client, B, "What is my name?").json()["answer"]  # B's own "ada" session
        listed = client.get("/v1/sessions", headers=A).json()["sessions"]
        assert [(s["session_id"], s["turns"]) for s in listed] == [("ada", 2)]
        session = client.get("/v1/sessions/ada", headers=A).json()
        assert session["turn_count"] == 2
        assert [(t["turn"], t["transcript"]) for t in session["turns"]] == [
            (1, "My name is Ada."),
            (2, "What is my name?"),
        ]
        assert "Ada" in session["turns"][1]["answer"] and session["turns"][1]["tool_calls"] == []

        # Redis goes away: turns answer 503 (the failed-key limit, counted there, is the first to
        # find it gone), and work again once it is back.
        outage.__exit__(None, None, None)
        down = _turn(client, A, "Still there?")
        assert down.status_code == 503 and "Redis is unavailable" in down.json()["detail"]
        assert client.get("/v1/sessions", headers=A).status_code == 503
        with running_redis(port, aof) as url:
            back = _turn(client, A, "What is my name?")
            assert back.status_code == 200, back.text
            assert back.json()["turn"] == 3 and "Ada" in back.json()["answer"]
            assert client.delete("/v1/sessions/ada", headers=A).status_code == 204
            assert client.get("/v1/sessions/ada", headers=A).status_code == 404
            assert client.delete("/v1/sessions/ada", headers=A).status_code == 404
            flush = redis.Redis.from_url(url)
            flush.flushdb()
            flush.close()
    assert KEY_A not in caplog.text and KEY_B not in caplog.text


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, planner: ScriptedPlanner) -> Iterator[tuple[httpx.Client, str]]:
    """One service on Redis with two keys and a limit of 5 requests a minute per key."""
    with running_redis() as url:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("data"),
            redis_url=url,  # type: ignore[arg-type]
            api_keys=f"{KEY_A}:acme,{KEY_B}:globex",  # type: ignore[arg-type]
            rate_limit_per_minute=5,
            speak=False,
        )
        with _service(settings, planner) as client:
            yield client, url


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "needs an API key"),
        ({"Authorization": "Bearer nope"}, "not valid"),
        ({"X-API-Key": KEY_A[:-1]}, "not valid"),
        ({"Authorization": f"Basic {KEY_A}"}, "needs an API key"),
    ],
    ids=["none", "wrong-bearer", "prefix-of-a-key", "basic-scheme"],
)
def test_requests_without_a_valid_key_get_401(
    keyed: tuple[httpx.Client, str], headers: dict[str, str], detail: str
) -> None:
    client, _ = keyed
    for response in (client.get("/v1/sessions", headers=headers), _turn(client, headers, "hi")):
        assert response.status_code == 401 and detail in response.json()["detail"]
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert KEY_A not in response.text


def test_a_turn_of_a_busy_session_gets_409(keyed: tuple[httpx.Client, str]) -> None:
    client, url = keyed
    other_replica = redis.Redis.from_url(url)
    other_replica.set("voicegraph:lock:globex:busy", "someone-else", px=10_000)  # a turn running elsewhere
    try:
        response = _turn(client, B, "hello", session="busy")
        assert response.status_code == 409 and "already running a turn" in response.json()["detail"]
        assert client.delete("/v1/sessions/busy", headers=B).status_code == 409
    finally:
        other_replica.delete("voicegraph:lock:globex:busy")
        other_replica.close()
    assert _turn(client, B, "hello", session="busy").status_code == 200


def test_each_key_is_rate_limited_on_its_own(keyed: tuple[httpx.Client, str]) -> None:
    client, url = keyed
    codes: list[int] = []
    retry: Any = None
    for _ in range(8):
        response = client.get("/v1/sessions", headers=A)
        codes.append(response.status_code)
        retry = response.headers.get("Retry-After", retry)
    assert 200 in codes and codes[-1] == 429 and "too many requests" in response.json()["detail"]
    assert retry is not None and 1 <= int(retry) <= 60
    assert client.get("/healthz").status_code == 200  # not behind a key
    flush = redis.Redis.from_url(url)
    assert not [k for k in flush.scan_iter(match="*") if KEY_A.encode() in k]  # counters never name the key
    flush.close()


def test_without_keys_the_local_tenant_needs_none_and_limits_apply(tmp_path: Path, planner: ScriptedPlanner) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_per_minute=3, speak=False)
    with _service(settings, planner) as client:
        assert _turn(client, {}, "My name is Ada.", session="local-s").status_code == 200
        body = client.get("/v1/sessions/local-s").json()
        assert body["session_id"] == "local-s" and len(body["turns"]) == 1
        assert client.get("/v1/sessions").status_code == 200
        limited = client.get("/v1/sessions")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
