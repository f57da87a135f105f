"""The knowledge-base story as a new user lives it, on the real models (marked `real`).

Create a base and add a folder of md, html, pdf and docx files with the CLI; ask a spoken
question whose answer is only in the pdf: the answer states it and cites the pdf. Adding
the same folder again leaves the chunk count unchanged; a second tenant finds nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.documents import write_mixed_folder
from tests.http_server import running_server
from tests.speech import piper_wav

pytestmark = pytest.mark.real


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICEGRAPH_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "kb", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    folder = write_mixed_folder(tmp_path_factory.mktemp("docs") / "company")
    assert _cli(data, "create", "company").returncode == 0
    added = _cli(data, "add", "company", str(folder))
    assert added.returncode == 0 and "4 added" in added.stdout, added.stdout + added.stderr
    listing = _cli(data, "list").stdout
    again = _cli(data, "add", "company", str(folder))
    assert again.returncode == 0 and "4 unchanged" in again.stdout
    assert _cli(data, "list").stdout == listing, "adding the same folder again must not change the chunk count"
    return data


@pytest.fixture(scope="module")
def base_url(data: Path, data_dir: Path) -> Iterator[str]:
    settings = Settings(data_dir=data, model_dir=data_dir, api_keys="key-a:local,key-b:globex")  # type: ignore[arg-type]
    with running_server(create_app(settings)) as url:
        yield url


def test_spoken_question_answered_from_the_pdf_and_cited(base_url: str) -> None:
    question = "Which company services the backup generator in building C?"
    with httpx.Client(base_url=base_url, timeout=600, headers={"x-api-key": "key-a"}) as client:
        response = client.post(
            "/v1/sessions/kb-e2e/turns", files={"audio": ("q.wav", piper_wav(question), "audio/wav")}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["name"] for c in body["tool_calls"]][:1] == ["knowledge_search"], body["tool_calls"]
    assert "voltaris" in body["answer"].lower(), body["answer"]
    assert any(c["source"] == "facilities.pdf" for c in body["citations"]), body["citations"]


def test_a_second_tenant_finds_nothing(base_url: str, data: Path) -> None:
    with httpx.Client(base_url=base_url, timeout=120, headers={"x-api-key": "key-b"}) as client:
        assert client.get("/v1/knowledge-bases").json() == []
        found = client.post("/v1/knowledge-bases/search", json={"query": "backup generator building C"})
    assert found.json()["hits"] == []
    cli = _cli(data, "search", "backup generator building C", "--json", "--tenant", "globex")
    assert json.loads(cli.stdout)["hits"] == []
