"""`voicegraph kb ...` in-process (Typer's runner), on real Chroma in a temporary data dir."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.compose import open_settings_memory
from api.settings import Settings
from tests.documents import write_mixed_folder


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VOICEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VOICEGRAPH_CHROMA_URL", raising=False)
    return CliRunner()


def test_kb_commands(run: CliRunner, tmp_path: Path) -> None:
    folder = write_mixed_folder(tmp_path / "docs")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    assert run.invoke(app, ["kb", "create", "notes"]).exit_code == 0
    duplicate = run.invoke(app, ["kb", "create", "notes"])
    assert duplicate.exit_code == 2 and "already exists" in duplicate.output

    added = run.invoke(app, ["kb", "add", "notes", str(folder)])
    assert added.exit_code == 1, added.output  # one bad file: the rest is in, the failure listed
    assert "4 added, 1 failed" in added.output and "broken.pdf: not a readable PDF" in added.output
    assert "chunks/s" in added.output  # the progress bar
    listing = run.invoke(app, ["kb", "list"]).output
    again = run.invoke(app, ["kb", "add", "notes", str(folder / "handbook.md")])
    assert again.exit_code == 0 and "1 unchanged" in again.output
    assert run.invoke(app, ["kb", "list"]).output == listing

    docs = run.invoke(app, ["kb", "docs", "notes"]).output
    assert "facilities.pdf" in docs and "security.docx" in docs
    found = run.invoke(app, ["kb", "search", "VX-5520", "--json", "--top-k", "2"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["hits"]
    assert hits[0]["doc_id"] == "facilities.pdf" and hits[0]["base"] == "notes"
    assert "no relevant passage" in run.invoke(app, ["kb", "search", "capital of Australia"]).output
    other = run.invoke(app, ["kb", "search", "VX-5520", "--json", "--tenant", "globex"])
    assert json.loads(other.output)["hits"] == []

    text = run.invoke(app, ["kb", "add", "notes", "--text", "The spare key is under the pot.", "--title", "Key"])
    assert text.exit_code == 0 and "1 added" in text.output
    assert run.invoke(app, ["kb", "remove", "notes", "Key"]).exit_code == 0
    unknown = run.invoke(app, ["kb", "add", "nope", str(folder)])
    assert unknown.exit_code == 2 and "no knowledge base named 'nope'" in unknown.output
    assert run.invoke(app, ["kb", "add", "notes", str(tmp_path / "missing")]).exit_code == 2
    assert run.invoke(app, ["kb", "delete", "notes"]).exit_code == 0
    assert run.invoke(app, ["kb", "delete", "notes"]).exit_code == 2


def test_kb_changes_move_the_tenants_generation(run: CliRunner, tmp_path: Path) -> None:
    """Running replicas keep the names in a tenant's bases while its generation stays: the
    CLI's changes move it in the session memory they share (here the embedded SQLite file)."""
    seen = [_generation("local")]
    assert run.invoke(app, ["kb", "create", "notes"]).exit_code == 0
    seen.append(_generation("local"))
    assert run.invoke(app, ["kb", "list"]).exit_code == 0
    assert _generation("local") == seen[-1]
    added = run.invoke(app, ["kb", "add", "notes", "--text", "The spare key is under the pot.", "--title", "Key"])
    assert added.exit_code == 0, added.output
    seen.append(_generation("local"))
    assert run.invoke(app, ["kb", "delete", "notes"]).exit_code == 0
    seen.append(_generation("local"))
    assert seen == sorted(set(seen)) and _generation("globex") == 0


def _generation(tenant: str) -> int:
    async def read() -> int:
        async with open_settings_memory(Settings()) as memory:
            return await memory.registrations.generation(tenant)

    return asyncio.run(read())
