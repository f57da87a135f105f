"""Without API keys, a page elsewhere cannot drive the service: Host and Origin checks (api/origins.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner
from tests.http_server import running_server

EVIL = "http://evil.example"


def _serve(data_dir: Path, **options: Any) -> Any:
    settings = Settings(data_dir=data_dir, speak=False, voices=False, web_search="off", **options)
    return running_server(create_app(settings, lambda s: open_services(s, planner=ScriptedPlanner())))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serve(tmp_path_factory.mktemp("data")) as url:
        yield url


REFUSED: list[tuple[str, dict[str, str], str]] = [
    ("rebound-host", {"host": "evil.example"}, "VOICEGRAPH_ALLOWED_HOSTS"),
    ("rebound-host-with-port", {"host": "evil.example:8000"}, "evil.example:8000"),
    ("foreign-origin", {"origin": EVIL}, "VOICEGRAPH_ALLOWED_ORIGINS"),
    ("null-origin", {"origin": "null"}, "cross-site"),
    ("same-host-other-port", {"origin": "http://127.0.0.1:1"}, "cross-site"),
]


@pytest.mark.parametrize(("case", "headers", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_foreign_host_or_origin_is_refused_and_does_nothing(
    base_url: str, case: str, headers: dict[str, str], message: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        response = client.post("/v1/knowledge-bases", json={"name": f"kb-{case}"}, headers=headers)
        assert response.status_code == 403, response.text
        assert message in response.json()["detail"]
        assert "Traceback" not in response.text
        assert client.get("/v1/knowledge-bases").json() == []


def test_loopback_hosts_and_the_own_origin_are_let_in(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.2"):
            assert client.get("/healthz", headers={"host": host}).status_code == 200, host
        made = client.post("/v1/knowledge-bases", json={"name": "own"}, headers={"origin": base_url})
        assert made.status_code == 201, made.text
        assert client.get("/", headers={"origin": base_url}).status_code == 200


def test_the_websocket_handshake_is_checked_too(base_url: str) -> None:
    url = base_url.replace("http", "ws") + "/v1/realtime"

    async def handshake(origin: str) -> int:
        try:
            async with websockets.connect(url, origin=origin, open_timeout=30):  # type: ignore[arg-type]
                return 101
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(handshake(EVIL)) == 403
    assert asyncio.run(handshake(base_url)) == 101


def test_allowed_hosts_and_origins_and_api_keys_let_others_in(tmp_path: Path) -> None:
    allowed = {"allowed_hosts": "voice.lan", "allowed_origins": "https://app.example/"}
    with _serve(tmp_path / "a", **allowed) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/healthz", headers={"host": "voice.lan:8000", "origin": "https://app.example"}).is_success
        assert client.get("/healthz", headers={"host": "other.lan"}).status_code == 403
    keyed = {"api_keys": "k:acme"}
    with _serve(tmp_path / "b", **keyed) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.get("/v1/knowledge-bases", headers={"host": "api.example", "origin": EVIL, "x-api-key": "k"})
        assert response.status_code == 200, response.text
