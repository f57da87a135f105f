"""Per-tenant quotas over HTTP (api/quotas.py): each answers 429 naming itself, before anything is written."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.compose import Services, open_services
from api.settings import Settings
from model.testing import ScriptedPlanner
from tests.http_server import running_server
from tests.mcp_server import app as mcp_app

SENTENCE = "The quarterly report lists revenue, costs and the outlook for every region in detail. "


class _FullLibrary:
    """A voice library whose tenant already has its one voice (rendering real voices takes minutes)."""

    def count_own(self, tenant: str) -> int:
        return 1


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        speak=False,
        voices=False,
        web_search="off",
        tool_allow_private_hosts="127.0.0.1",
        quota_sessions=2,
        quota_knowledge_bases=2,
        quota_documents=3,
        quota_chunks=4,
        quota_tools=1,
        quota_mcp_servers=1,
        quota_voices=1,
    )

    @contextlib.asynccontextmanager
    async def services(settings: Settings) -> AsyncIterator[Services]:
        async with open_services(settings, planner=ScriptedPlanner()) as built:
            yield dataclasses.replace(built, voices=_FullLibrary())  # type: ignore[arg-type]

    with running_server(create_app(settings, services)) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def _refused(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429, response.text
    detail = response.json()["detail"]
    assert detail.startswith("quota reached") and f"VOICEGRAPH_{setting}" in detail


def _turn(client: httpx.Client, session: str) -> httpx.Response:
    return client.post(f"/v1/sessions/{session}/turns", json={"text": "hello"})


def test_sessions(client: httpx.Client) -> None:
    assert _turn(client, "one").status_code == 200 and _turn(client, "two").status_code == 200
    _refused(_turn(client, "three"), "QUOTA_SESSIONS")
    assert _turn(client, "one").status_code == 200  # a session it has goes on
    assert client.delete("/v1/sessions/two").status_code == 204
    assert _turn(client, "three").status_code == 200


def _add(client: httpx.Client, kb: str, title: str, text: str) -> httpx.Response:
    return client.post(f"/v1/knowledge-bases/{kb}/documents", json={"title": title, "text": text})


def test_knowledge_bases_documents_and_chunks(client: httpx.Client) -> None:
    for name in ("notes", "reports"):
        assert client.post("/v1/knowledge-bases", json={"name": name}).status_code == 201
    _refused(client.post("/v1/knowledge-bases", json={"name": "more"}), "QUOTA_KNOWLEDGE_BASES")
    assert client.get("/v1/knowledge-bases").json() == [
        {"name": "notes", "chunks": 0},
        {"name": "reports", "chunks": 0},
    ]

    assert _add(client, "notes", "short", "The office opens at nine.").status_code == 200
    long = _add(client, "reports", "long", SENTENCE * 40)
    assert long.status_code == 200 and long.json()["total_chunks"] >= 3
    _refused(_add(client, "notes", "more", "Parking is free."), "QUOTA_CHUNKS")
    assert client.delete("/v1/knowledge-bases/reports/documents/long").status_code == 204
    assert _add(client, "notes", "second", "Parking is free.").status_code == 200
    assert _add(client, "reports", "third", "Lunch is at noon.").status_code == 200
    _refused(_add(client, "notes", "fourth", "Bikes go in the yard."), "QUOTA_DOCUMENTS")


def test_tools_and_mcp_servers(client: httpx.Client) -> None:
    with running_server(mcp_app()) as mcp_url:
        tool: dict[str, Any] = {"name": "crm", "description": "d", "url": f"{mcp_url}/x", "read_only": True}
        assert client.post("/v1/tools", json=tool).status_code == 201
        _refused(client.post("/v1/tools", json={**tool, "name": "crm2"}), "QUOTA_TOOLS")
        server = {"name": "inventory", "transport": "http", "url": f"{mcp_url}/mcp"}
        assert client.post("/v1/mcp-servers", json=server).status_code == 201, "the first is connected"
        _refused(client.post("/v1/mcp-servers", json={**server, "name": "stock"}), "QUOTA_MCP_SERVERS")


def test_voices(client: httpx.Client) -> None:
    sample = {"sample": ("me.wav", b"RIFF....WAVE", "audio/wav")}
    _refused(client.post("/v1/voices", data={"description": "mine"}, files=sample), "QUOTA_VOICES")
