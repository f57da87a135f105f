"""/v1/knowledge-bases on a real HTTP server, real Chroma, per-tenant API keys, scripted planner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner, call, reply
from tests.documents import write_mixed_folder, zip_bomb_docx
from tests.http_server import running_server

LIMIT = 60_000
ACME = {"authorization": "Bearer key-acme"}
GLOBEX = {"x-api-key": "key-globex"}


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, planner: ScriptedPlanner) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        max_upload_bytes=LIMIT,
        speak=False,
        api_keys="key-acme:acme,key-globex:globex",  # type: ignore[arg-type]
    )

    def services(settings: Settings) -> Any:
        return open_services(settings, planner=planner)

    with running_server(create_app(settings, services)) as url:
        yield url


def _files(folder: Path, *extra: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    parts = [("files", (p.name, p.read_bytes())) for p in sorted(folder.iterdir())]
    return parts + [("files", item) for item in extra]


def test_knowledge_base_lifecycle(base_url: str, tmp_path: Path, planner: ScriptedPlanner) -> None:
    folder = write_mixed_folder(tmp_path / "docs")
    with httpx.Client(base_url=base_url, timeout=120, headers=ACME) as client:
        assert client.post("/v1/knowledge-bases", json={"name": "company"}).status_code == 201
        duplicate = client.post("/v1/knowledge-bases", json={"name": "company"})
        assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
        assert client.post("/v1/knowledge-bases", json={"name": "bad name"}).status_code == 422

        bad = [("broken.pdf", b"%PDF-1.4 nope"), ("notes.exe", b"MZ"), ("big.txt", b"x " * LIMIT)]
        response = client.post("/v1/knowledge-bases/company/documents", files=_files(folder, *bad))
        assert response.status_code == 200, response.text
        report = response.json()
        outcome = {d["doc_id"]: (d["status"], d["reason"]) for d in report["documents"]}
        assert outcome["facilities.pdf"] == ("added", None) and outcome["security.docx"] == ("added", None)
        assert outcome["broken.pdf"] == ("failed", "corrupt") and outcome["notes.exe"] == ("failed", "unsupported")
        assert outcome["big.txt"] == ("failed", "too_large") and report["failed"] == 3
        total = report["total_chunks"]

        again = client.post("/v1/knowledge-bases/company/documents", files=_files(folder)).json()
        assert again["total_chunks"] == total and {d["status"] for d in again["documents"]} == {"unchanged"}
        listing = client.get("/v1/knowledge-bases").json()
        assert listing == [{"name": "company", "chunks": total}]
        docs = client.get("/v1/knowledge-bases/company/documents").json()
        assert {d["doc_id"] for d in docs} == {"facilities.pdf", "handbook.md", "kitchen.html", "security.docx"}

        text = {"text": "The spare key is under the blue flower pot.", "title": "Spare key"}
        assert client.post("/v1/knowledge-bases/company/documents", json=text).status_code == 200
        only_bad = client.post("/v1/knowledge-bases/company/documents", files=[("files", ("x.exe", b"MZ"))])
        assert only_bad.status_code == 415 and "x.exe" in only_bad.json()["detail"]
        assert client.post("/v1/knowledge-bases/nope/documents", json=text).status_code == 404
        untitled = client.post("/v1/knowledge-bases/company/documents", json={"text": "a fact"})
        assert untitled.status_code == 422 and "title" in untitled.json()["detail"]

        found = client.post("/v1/knowledge-bases/company/search", json={"query": "VX-5520", "top_k": 3}).json()
        assert found["hits"][0]["doc_id"] == "facilities.pdf" and found["hits"][0]["knowledge_base"] == "company"
        nothing = client.post("/v1/knowledge-bases/company/search", json={"query": "Who won the 2018 world cup?"})
        assert nothing.json()["hits"] == []
        cross = client.post("/v1/knowledge-bases/search", json={"query": "where is the spare key"}).json()
        assert cross["hits"][0]["doc_id"] == "Spare key"
        assert client.post("/v1/knowledge-bases/nope/search", json={"query": "x"}).status_code == 404

        planner.steps = [
            *planner.steps[: len(planner.requests)],
            call("knowledge_search", query="who services the backup generator"),
            reply("Voltaris Energy services it [1]."),
        ]
        turn = client.post(
            "/v1/sessions/kb-turn/turns",
            json={"text": "Who services the generator?", "speak": False, "knowledge_bases": ["company"]},
        )
        assert turn.status_code == 200, turn.text
        body = turn.json()
        assert body["citations"][0]["source"] == "facilities.pdf" and "Voltaris" in body["citations"][0]["snippet"]
        assert "[1] (facilities.pdf)" in planner.requests[-1].messages[-1]["content"]

        assert client.delete("/v1/knowledge-bases/company/documents/facilities.pdf").status_code == 204
        assert client.delete("/v1/knowledge-bases/company/documents/facilities.pdf").status_code == 404
        gone = client.post("/v1/knowledge-bases/company/search", json={"query": "VX-5520"}).json()["hits"]
        assert all(h["doc_id"] != "facilities.pdf" for h in gone)

    with httpx.Client(base_url=base_url, timeout=120, headers=GLOBEX) as other:
        assert other.get("/v1/knowledge-bases").json() == []
        assert other.post("/v1/knowledge-bases/search", json={"query": "where is the spare key"}).json()["hits"] == []
        assert other.post("/v1/knowledge-bases/company/search", json={"query": "spare key"}).status_code == 404
        assert other.delete("/v1/knowledge-bases/company").status_code == 404

    with httpx.Client(base_url=base_url, timeout=120, headers=ACME) as client:
        assert client.delete("/v1/knowledge-bases/company").status_code == 204
        assert client.get("/v1/knowledge-bases").json() == []


def test_a_zip_bomb_upload_is_refused_unread(base_url: str) -> None:
    bomb = zip_bomb_docx(20 * 1024 * 1024)
    assert len(bomb) < LIMIT
    with httpx.Client(base_url=base_url, timeout=120, headers=ACME) as client:
        client.post("/v1/knowledge-bases", json={"name": "bombs"})
        response = client.post("/v1/knowledge-bases/bombs/documents", files=[("files", ("bomb.docx", bomb))])
    assert response.status_code == 413, response.text
    assert "bomb.docx" in response.json()["detail"] and "compressed" in response.json()["detail"]
