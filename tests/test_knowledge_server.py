"""Knowledge bases on a real Chroma server: `chroma run` from the chromadb package, on loopback.

The service picks the server when VOICEGRAPH_CHROMA_URL is set; the same store code then
speaks HTTP to Chroma (HttpClient) instead of running it embedded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.compose import open_knowledge
from api.settings import Settings
from retrieval.embedder import MiniLMEmbedder
from tests.chroma_server import running_chroma
from tests.documents import write_mixed_folder


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_chroma(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def test_store_on_a_chroma_server(chroma_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url)
    store = open_knowledge(settings, MiniLMEmbedder())
    assert store._client.heartbeat() > 0
    assert not (tmp_path / "data" / "chroma").exists(), "no embedded Chroma when a server is configured"
    folder = write_mixed_folder(tmp_path / "docs")
    store.create_base("acme", "docs")
    report = store.ingest_paths("acme", "docs", [folder])
    assert (report.files, report.failures) == (4, [])
    count = store.count("acme", "docs")
    assert store.ingest_paths("acme", "docs", [folder]).unchanged == 4 and store.count("acme", "docs") == count
    hits = store.search("acme", "Who services the backup generator in building C?")
    assert hits and hits[0].doc_id == "facilities.pdf"
    assert store.search("acme", "VX-5520")[0].doc_id == "facilities.pdf"
    assert store.search("globex", "Who services the backup generator in building C?") == []
    assert store.list_bases("globex") == []
    store.delete_document("acme", "docs", "facilities.pdf")
    assert all(h.doc_id != "facilities.pdf" for h in store.search("acme", "backup generator service contract"))
    assert store.delete_base("acme", "docs") and store.list_bases("acme") == []
