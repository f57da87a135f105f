"""Request-body limits and the key check come before any body is read (api/limits.py), on a real server."""

from __future__ import annotations

import json
import socket
import tracemalloc
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner
from tests.http_server import running_server

KEY = {"authorization": "Bearer key-acme"}
JSON_LIMIT = 4096
UPLOAD_LIMIT = 100_000
DOCUMENTS_LIMIT = 300_000
DOCUMENT_CHARS = 2000
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        api_keys="key-acme:acme",  # type: ignore[arg-type]
        max_json_bytes=JSON_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
        max_documents_bytes=DOCUMENTS_LIMIT,
        max_document_chars=DOCUMENT_CHARS,
        speak=False,
        voices=False,
        web_search="off",
    )
    with running_server(create_app(settings, lambda s: open_services(s, planner=ScriptedPlanner()))) as url:
        yield url


def _raw(base_url: str, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """Send a request's head and the start of its body, never the rest; the status and JSON answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname or "", address.port or 80), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536) or b"!closed"
        top, _, rest = answer.partition(b"\r\n\r\n")
        lines = top.lower().split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
        while len(rest) < length:
            rest += sock.recv(65536)
    return int(top.split()[1]), json.loads(rest[:length])


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    piece = b"x" * size
    for _ in range(total // size):
        yield piece


def test_a_declared_length_over_the_limit_is_refused_at_once(base_url: str) -> None:
    head = "POST /v1/tools HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
    head += "Authorization: Bearer key-acme\nContent-Length: 10000000000\n"
    code, body = _raw(base_url, head, b'{"name": ')
    assert code == 413
    assert str(JSON_LIMIT) in body["detail"] and "VOICEGRAPH_MAX_JSON_BYTES" in body["detail"]


def test_without_a_key_the_answer_is_401_before_the_body_is_read(base_url: str) -> None:
    head = "POST /v1/mcp-servers HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
    code, body = _raw(base_url, head + "Content-Length: 10000000000\n", b'{"name": ')
    assert code == 401 and "API key" in body["detail"]
    code, body = _raw(base_url, head + "Authorization: Bearer wrong\nContent-Length: 100\n", b"{")
    assert code == 401 and body["detail"] == "the API key is not valid"


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(base_url: str) -> None:
    """The body is never finished: only a server that stops at the limit can answer."""
    head = "POST /v1/knowledge-bases HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
    head += "Authorization: Bearer key-acme\nTransfer-Encoding: chunked\n"
    chunk = b"x" * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(JSON_LIMIT // 1024 + 1))
    code, answer = _raw(base_url, head, body)
    assert code == 413 and "VOICEGRAPH_MAX_JSON_BYTES" in answer["detail"]


OVERSIZE: list[tuple[str, str, dict[str, Any], str]] = [
    ("tool-json", "/v1/tools", {"json": {"name": "x" * JSON_LIMIT}}, "VOICEGRAPH_MAX_JSON_BYTES"),
    ("chunked-json", "/v1/mcp-servers", {"content": _chunks(JSON_LIMIT * 4, 1024)}, "VOICEGRAPH_MAX_JSON_BYTES"),
    ("search", "/v1/knowledge-bases/search", {"json": {"query": "q" * JSON_LIMIT}}, "VOICEGRAPH_MAX_JSON_BYTES"),
    (
        "audio-upload",
        "/v1/sessions/s/turns",
        {"files": {"audio": ("q.wav", b"\x00" * (UPLOAD_LIMIT + 70_000), "audio/wav")}},
        "VOICEGRAPH_MAX_UPLOAD_BYTES",
    ),
    (
        "documents",
        "/v1/knowledge-bases/docs/documents",
        {"files": [("files", (f"{i}.txt", b"a " * 50_000)) for i in range(4)]},
        "VOICEGRAPH_MAX_DOCUMENTS_BYTES",
    ),
    (
        "document-chars",
        "/v1/knowledge-bases/docs/documents",
        {"json": {"title": "long", "text": "a" * (DOCUMENT_CHARS + 1)}},
        "VOICEGRAPH_MAX_DOCUMENT_CHARS",
    ),
]


@pytest.mark.parametrize(("case", "path", "request_args", "setting"), OVERSIZE, ids=[c[0] for c in OVERSIZE])
def test_an_oversize_body_gets_a_413_naming_its_setting(
    base_url: str, case: str, path: str, request_args: dict[str, Any], setting: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=60, headers=KEY) as client:
        client.post("/v1/knowledge-bases", json={"name": "docs"})
        response = client.post(path, **request_args)
    assert response.status_code == 413, response.text
    assert setting in response.json()["detail"] and "Traceback" not in response.text


def test_bodies_within_the_limits_still_work(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=60, headers=KEY) as client:
        client.post("/v1/knowledge-bases", json={"name": "docs"})
        text = {"title": "short", "text": "The spare key is under the blue pot. " * 20}
        added = client.post("/v1/knowledge-bases/docs/documents", json=text)
        assert added.status_code == 200, added.text
        parts = iter([b'{"query": ', b'"spare key"}'])
        json_type = {"content-type": "application/json"}
        chunked = client.post("/v1/knowledge-bases/docs/search", content=parts, headers=json_type)
        assert chunked.status_code == 200 and chunked.json()["hits"], chunked.text


def test_a_huge_chunked_body_is_not_buffered(base_url: str) -> None:
    """32 MiB streamed at a JSON route: the server's memory must not grow with it."""
    tracemalloc.start()
    try:
        with httpx.Client(base_url=base_url, timeout=120, headers=KEY) as client:
            response = client.post("/v1/tools", content=_chunks(32 * MIB), headers={"content-type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"peak traced memory under a 32 MiB chunked body: {peak / MIB:.1f} MiB")
    assert response.status_code == 413
    assert peak < 4 * MIB
