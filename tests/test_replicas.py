"""Two replicas on loopback sharing one real Redis and one real Chroma server: what one is
told, the other knows.

Each replica is a whole service (its own data dir, its own process state, the scripted
planner); only Redis and Chroma are shared, as behind a load balancer. A tool or MCP server
registered on one is listed and called on the other, a deletion on one holds on both, a
session continues across them, a voice added on one is listed, found and spoken on the
other, a knowledge base filled on one is listed, searched and read by the other's turns,
and a replica killed mid-turn leaves the session as it was, usable on the other once its
lock's lease runs out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner, call, reply
from tests.chroma_server import running_chroma
from tests.http_server import running_server
from tests.mcp_server import app as mcp_app
from tests.redis_server import free_port, running_redis
from tests.speech import espeak_wav

LEASE_S = 2.0


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_chroma(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def _settings(data_dir: Path, redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "data_dir": data_dir,
        "speak": False,
        "voices": False,
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "session_lock_s": LEASE_S,
        "tool_allow_private_hosts": "127.0.0.1",
    }


def _replica(data_dir: Path, redis_url: str, prefix: str, planner: ScriptedPlanner, **options: Any) -> FastAPI:
    settings = Settings(**_settings(data_dir, redis_url, prefix), **options)
    return create_app(settings, lambda s: open_services(s, planner=planner))


def _target(received: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/weather")
    async def weather(request: Request) -> dict[str, str]:
        received.append(await request.json())
        return {"forecast": "light snow"}

    return app


def _turn(url: str, text: str, session: str = "s1") -> httpx.Response:
    return httpx.post(f"{url}/v1/sessions/{session}/turns", json={"text": text}, timeout=120)


def test_registrations_and_sessions_are_shared_by_replicas(tmp_path: Path, redis_url: str) -> None:
    prefix = f"r-{uuid.uuid4().hex[:8]}"
    received: list[dict[str, Any]] = []
    planner_a = ScriptedPlanner([reply("Hi Ada.")])
    planner_b = ScriptedPlanner([call("weather", city="Oslo"), reply("Snow."), call("inventory_stock_level", item="x")])
    quotas = {"quota_tools": 2, "quota_mcp_servers": 1}
    with (
        running_server(_target(received)) as target,
        running_server(mcp_app()) as mcp,
        running_server(_replica(tmp_path / "a", redis_url, prefix, planner_a, **quotas)) as a,
        running_server(_replica(tmp_path / "b", redis_url, prefix, planner_b, **quotas)) as b,
    ):
        definition = {"name": "weather", "description": "The forecast.", "url": f"{target}/weather", "read_only": True}
        assert httpx.post(f"{a}/v1/tools", json=definition).status_code == 201
        assert httpx.post(f"{b}/v1/tools", json=definition).status_code == 409  # one name across replicas
        server = {"name": "inventory", "transport": "http", "url": f"{mcp}/mcp"}
        assert httpx.post(f"{a}/v1/mcp-servers", json=server, timeout=60).status_code == 201
        # The quotas count what the tenant registered on any replica.
        assert httpx.post(f"{b}/v1/tools", json={**definition, "name": "tides"}).status_code == 201
        assert httpx.post(f"{a}/v1/tools", json={**definition, "name": "currents"}).status_code == 429
        assert httpx.post(f"{b}/v1/mcp-servers", json={**server, "name": "stock"}, timeout=60).status_code == 429

        # B was never told of either: it reads them from Redis and opens the MCP session itself.
        listed = {t["name"]: t["source"] for t in httpx.get(f"{b}/v1/tools", timeout=60).json()}
        assert listed["weather"] == "http" and listed["inventory_stock_level"] == "mcp"
        [served] = httpx.get(f"{b}/v1/mcp-servers", timeout=60).json()
        assert served["name"] == "inventory" and "inventory_stock_level" in served["tools"]

        # A session started on A continues on B, which calls the tool A registered.
        assert _turn(a, "My name is Ada.").json()["turn"] == 1
        second = _turn(b, "Weather in Oslo?").json()
        assert second["turn"] == 2 and second["tool_calls"][0]["status"] == "ok"
        assert received == [{"city": "Oslo"}]
        assert [m["content"] for m in planner_b.requests[0].messages][:2] == ["My name is Ada.", "Hi Ada."]

        # Deleting on B holds on A, for the HTTP tool and the MCP server alike.
        assert httpx.delete(f"{b}/v1/tools/weather").status_code == 204
        assert httpx.delete(f"{b}/v1/mcp-servers/inventory").status_code == 204
        names = {t["name"] for t in httpx.get(f"{a}/v1/tools").json()}
        assert "weather" not in names and "inventory_stock_level" not in names
        assert httpx.get(f"{a}/v1/mcp-servers").json() == []
        assert httpx.delete(f"{a}/v1/tools/weather").status_code == 404
        third = _turn(b, "Stock of x?").json()
        assert third["tool_calls"][0]["status"] != "ok"  # the server is gone on B too


def _wait_for(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, "the replica exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the replica never started"
        time.sleep(0.2)


def test_a_replica_killed_mid_turn_loses_nothing(tmp_path: Path, redis_url: str) -> None:
    prefix = f"k-{uuid.uuid4().hex[:8]}"
    port, marker = free_port(), tmp_path / "planning"
    configured = _settings(tmp_path / "a", redis_url, prefix)
    env = {**os.environ, **{f"VOICEGRAPH_{key.upper()}": str(value) for key, value in configured.items()}}
    doomed = subprocess.Popen([sys.executable, "-m", "tests.replica_app", str(port), str(marker)], env=env)
    a = f"http://127.0.0.1:{port}"
    try:
        _healthy(a, doomed, 300)
        assert _turn(a, "My name is Ada.").json()["turn"] == 1
        threading.Thread(target=lambda: _turn_quietly(a), daemon=True).start()
        _wait_for(marker, 60)  # the second turn is being planned on A
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        killed_at = time.monotonic()
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(10)

    planner = ScriptedPlanner([reply("You are Ada.")])
    with running_server(_replica(tmp_path / "b", redis_url, prefix, planner)) as b:
        while (answer := _turn(b, "Who am I?")).status_code == 409:  # A's lease has not run out yet
            assert time.monotonic() - killed_at < LEASE_S + 5, "the dead replica's lock never expired"
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert answer.json()["turn"] == 2  # the killed turn left nothing behind
        assert [m["content"] for m in planner.requests[0].messages] == ["My name is Ada.", "Hi Ada.", "Who am I?"]
        session = httpx.get(f"{b}/v1/sessions/s1").json()
        assert [t["turn"] for t in session["turns"]] == [1, 2]


def _turn_quietly(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the replica dies under it
        _turn(url, "What is the weather?")


def test_a_voice_added_on_one_replica_is_listed_found_and_spoken_on_the_other(tmp_path: Path, redis_url: str) -> None:
    prefix = f"v-{uuid.uuid4().hex[:8]}"
    voiced = {"voices": True, "speak": True, "quota_voices": 1}

    def replica(name: str, planner: ScriptedPlanner) -> FastAPI:
        settings = Settings(**{**_settings(tmp_path / name, redis_url, prefix), **voiced})
        return create_app(settings, lambda s: open_services(s, planner=planner))

    clip = espeak_wav("This is my own voice, a little sample of how I speak to people.")
    planner_b = ScriptedPlanner([reply("Hello from the other replica.")])
    with (
        running_server(replica("a", ScriptedPlanner([]))) as a,
        running_server(replica("b", planner_b)) as b,
    ):
        added = httpx.post(
            f"{a}/v1/voices",
            files={"sample": ("me.wav", clip, "audio/wav")},
            data={"description": "my own calm office voice", "name": "Me"},
            timeout=120,
        )
        assert added.status_code == 201, added.text
        mine = added.json()["id"]
        again = httpx.post(f"{b}/v1/voices", files={"sample": ("me.wav", clip, "audio/wav")}, timeout=60)
        assert again.status_code == 429 and "QUOTA_VOICES" in again.json()["detail"]  # A's voice counts on B

        # B was never told: it lists and finds the voice kept in Redis, and speaks its sample.
        assert mine in [v["id"] for v in httpx.get(f"{b}/v1/voices", timeout=60).json() if not v["builtin"]]
        found = httpx.get(f"{b}/v1/voices", params={"q": "my own calm office voice"}, timeout=60).json()
        assert found[0]["id"] == mine
        sample = httpx.get(f"{b}/v1/voices/sample", params={"voice": mine}, timeout=60)
        assert sample.status_code == 200 and sample.content[:4] == b"RIFF"
        spoken = httpx.post(f"{b}/v1/sessions/v1/turns", json={"text": "Hi", "voice": mine}, timeout=120)
        assert spoken.status_code == 200, spoken.text
        assert spoken.json()["voice"] == mine and spoken.json()["audio_wav_b64"]


VAULT = (
    "Opening the Quillmore vault. The Quillmore vault in the east wing opens only with the dial code "
    "VQ-7731, and only on Thursdays at dawn. Its keeper is Orsolya Brandtwick, who signs the vault log."
)


def test_a_knowledge_base_filled_on_one_replica_is_searched_on_the_other(
    tmp_path: Path, redis_url: str, chroma_url: str
) -> None:
    prefix = f"kb-{uuid.uuid4().hex[:8]}"
    question = "Who keeps the Quillmore vault and what is its dial code?"
    planner_a = ScriptedPlanner([reply("Noted."), reply("Nothing to search now.")])
    planner_b = ScriptedPlanner(
        [
            reply("Hello."),
            reply("Ask me about the vaults."),
            call("knowledge_search", query=question),
            reply("Orsolya Brandtwick; VQ-7731 [1]."),
        ]
    )
    shared = {"chroma_url": chroma_url, "quota_knowledge_bases": 2}
    with (
        running_server(_replica(tmp_path / "a", redis_url, prefix, planner_a, **shared)) as a,
        running_server(_replica(tmp_path / "b", redis_url, prefix, planner_b, **shared)) as b,
    ):
        # B keeps what the tenant's tools know: no document yet, so the search is not offered.
        assert _turn(b, "Hello.", "kb").status_code == 200
        assert "knowledge_search" in planner_b.requests[0].unavailable
        assert httpx.post(f"{a}/v1/knowledge-bases", json={"name": "vaults"}, timeout=60).status_code == 201
        document = {"text": VAULT, "title": "Vault rules"}
        added = httpx.post(f"{a}/v1/knowledge-bases/vaults/documents", json=document, timeout=120)
        assert added.status_code == 200, added.text
        report = added.json()
        assert report["documents"][0]["status"] == "added" and report["total_chunks"] > 0
        # One name and one quota across replicas: B sees the base A made.
        assert httpx.post(f"{b}/v1/knowledge-bases", json={"name": "vaults"}, timeout=60).status_code == 409
        assert httpx.post(f"{b}/v1/knowledge-bases", json={"name": "other"}, timeout=60).status_code == 201
        assert httpx.post(f"{a}/v1/knowledge-bases", json={"name": "third"}, timeout=60).status_code == 429
        assert httpx.delete(f"{a}/v1/knowledge-bases/other", timeout=60).status_code == 204

        # B was never told: its next turn is offered the search and its names, and A's too.
        assert _turn(b, "What can you tell me about?", "kb").status_code == 200
        assert "knowledge_search" not in planner_b.requests[1].unavailable
        assert "Quillmore" in planner_b.requests[1].notes
        assert _turn(a, "Hello.", "kb-a").status_code == 200
        assert "Quillmore" in planner_a.requests[0].notes

        # It lists the base and its document, and finds the passage.
        listed = httpx.get(f"{b}/v1/knowledge-bases", timeout=60).json()
        assert listed == [{"name": "vaults", "chunks": report["total_chunks"]}]
        documents = httpx.get(f"{b}/v1/knowledge-bases/vaults/documents", timeout=60).json()
        assert [d["doc_id"] for d in documents] == ["Vault rules"]
        search = {"query": "who is the keeper of the Quillmore vault"}
        hits = httpx.post(f"{b}/v1/knowledge-bases/search", json=search, timeout=60).json()["hits"]
        assert hits and hits[0]["doc_id"] == "Vault rules" and hits[0]["knowledge_base"] == "vaults"
        assert "Orsolya Brandtwick" in hits[0]["text"]

        # A turn on B searches it: the planner is told the document's names, then reads the passage.
        turn = httpx.post(
            f"{b}/v1/sessions/kb/turns", json={"text": question, "knowledge_bases": ["vaults"]}, timeout=120
        )
        assert turn.status_code == 200, turn.text
        body = turn.json()
        assert [(c["name"], c["status"]) for c in body["tool_calls"]] == [("knowledge_search", "ok")]
        assert body["citations"][0]["doc_id"] == "Vault rules" and "VQ-7731" in body["citations"][0]["snippet"]
        assert "Quillmore" in planner_b.requests[2].notes
        passage = planner_b.requests[3].messages[-1]["content"]
        assert "[1] (Vault rules)" in passage and "Orsolya Brandtwick" in passage and "VQ-7731" in passage

        # Deleting the base on B holds on A.
        assert httpx.delete(f"{b}/v1/knowledge-bases/vaults", timeout=60).status_code == 204
        assert httpx.get(f"{a}/v1/knowledge-bases", timeout=60).json() == []
        assert httpx.post(f"{a}/v1/knowledge-bases/vaults/search", json=search, timeout=60).status_code == 404
        assert httpx.post(f"{a}/v1/knowledge-bases/search", json=search, timeout=60).json()["hits"] == []
        assert httpx.delete(f"{a}/v1/knowledge-bases/vaults", timeout=60).status_code == 404
        # A, which kept the names, hears of the deletion on its next turn.
        assert _turn(a, "Anything new?", "kb-a").status_code == 200
        assert "Quillmore" not in planner_a.requests[1].notes
        assert "knowledge_search" in planner_a.requests[1].unavailable
