"""Knowledge bases on a real Chroma server: `chroma run` from the chromadb package, on loopback.

The service picks the server when VOICEGRAPH_CHROMA_URL is set; the same store code then
speaks HTTP to Chroma (HttpClient) instead of running it embedded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.compose import open_knowledge
from api.settings import Settings
from retrieval.embedder import MiniLMEmbedder
from tests.documents import write_mixed_folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    assert chroma, "the chromadb package ships the `chroma` CLI"
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    command = [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "chroma server did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


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
