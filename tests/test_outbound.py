"""What we read back from tenants' HTTP tools and MCP servers is bounded, on real loopback servers."""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse

from agent.memory.in_memory import InMemoryRegistrations
from tests.http_server import running_server
from tests.mcp_server import app as mcp_app
from tests.tool_fixtures import reply_body
from tools.base import MAX_RESULT_CHARS, ToolContext, ToolError, ToolResult, TransientToolError
from tools.custom import TenantTools
from tools.errors import UnsafeTargetError
from tools.http_tools import HttpToolDefinition, http_tool
from tools.mcp_tools import McpConnection, McpServerConfig
from tools.outbound import PinnedTransport, TargetGuard, redact

pytestmark = pytest.mark.anyio

CONTEXT = ToolContext(tenant="acme", session_id="s1")
LONG_BYTES = 32 * 1024 * 1024
BOMB_BYTES = 256 * 1024 * 1024
CHUNK = 64 * 1024


def _gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped (about a thousandth of that on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(CHUNK * 16)
    parts = [packer.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join([*parts, packer.flush()])


def _hostile_web() -> FastAPI:
    app = FastAPI()
    bomb = _gzip_bomb(BOMB_BYTES)

    @app.post("/long")
    async def long() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(LONG_BYTES // CHUNK):
                yield b"a" * CHUNK

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.post("/bomb")
    async def gzip_bomb() -> Response:
        return Response(bomb, media_type="text/plain", headers={"Content-Encoding": "gzip"})

    @app.post("/brotli")
    async def brotli() -> Response:
        return Response(b"\x0b\x02\x80hello\x03", media_type="text/plain", headers={"Content-Encoding": "br"})

    @app.post("/json")
    async def small_json() -> Response:
        return Response(b'{\n  "forecast": "light snow"\n}', media_type="application/json")

    return app


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with running_server(_hostile_web()) as url:
        yield url


async def _call(url: str, **options: Any) -> tuple[ToolResult, int]:
    """The tool's result for one call to `url`, and the Python heap's peak (bytes) during it."""
    definition = HttpToolDefinition(name="t", description="t", url=url, timeout_s=30)
    async with httpx.AsyncClient(transport=PinnedTransport(TargetGuard(["127.0.0.1"]))) as client:
        tool = http_tool(definition, client, **options)
        tracemalloc.start()
        try:
            result = await tool.handler({}, CONTEXT)
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


async def test_a_long_response_is_read_only_up_to_the_byte_limit(hostile: str) -> None:
    url = hostile
    result, peak = await _call(f"{url}/long", max_response_bytes=100_000)
    body = reply_body(result.content)
    assert body.startswith("a" * MAX_RESULT_CHARS) and body.endswith("left out]")
    assert len(body) < MAX_RESULT_CHARS + 100
    assert peak < 4_000_000, f"{peak} bytes held for a 32 MB response"


async def test_a_gzip_bomb_is_inflated_only_up_to_the_byte_limit(hostile: str) -> None:
    url = hostile
    result, peak = await _call(f"{url}/bomb")
    assert reply_body(result.content).startswith("\0" * 100) and reply_body(result.content).endswith("left out]")
    assert peak < 4_000_000, f"{peak} bytes held for 256 MB of zeros"


async def test_an_encoding_we_do_not_inflate_is_a_tool_error(hostile: str) -> None:
    url = hostile
    with pytest.raises(ToolError, match="'br'"):
        await _call(f"{url}/brotli")


async def test_a_short_json_answer_is_passed_on_whole(hostile: str) -> None:
    url = hostile
    result, _ = await _call(f"{url}/json")
    assert reply_body(result.content) == '{"forecast": "light snow"}'


async def test_an_mcp_result_is_cut_for_the_model() -> None:
    with running_server(mcp_app()) as base_url:
        config = McpServerConfig(name="inventory", transport="http", url=f"{base_url}/mcp")
        connection = await McpConnection(config).start()
        try:
            [stock_level] = [t for t in connection.tools if t.spec.name == "inventory_stock_level"]
            result = await stock_level.handler({"item": "apples " * 10_000}, CONTEXT)  # echoed back
        finally:
            await connection.close()
    assert reply_body(result.content).startswith("apples apples") and reply_body(result.content).endswith("left out]")
    assert len(reply_body(result.content)) < MAX_RESULT_CHARS + 100


class _Rebinding:
    """DNS for a name that answers `first` once, then `then`: it rebinds between two lookups."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first]
        self.then = then
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return [self.answers.pop(0) if self.answers else self.then]


def _counting_web(hits: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/x")
    async def x() -> dict[str, str]:
        hits.append("x")
        return {"internal": "secret"}

    return app


async def test_an_http_tool_connects_only_to_the_address_it_checked() -> None:
    hits: list[str] = []
    with running_server(_counting_web(hits)) as url:
        # "localhost" passes the check as 127.0.0.2 (allowed, and nobody listens there); the
        # system resolver would say 127.0.0.1, where the internal service listens.
        resolver = _Rebinding("127.0.0.2", "127.0.0.1")
        guard = TargetGuard(["127.0.0.2"], resolver=resolver)
        definition = HttpToolDefinition(name="t", description="t", url=f"http://localhost:{urlsplit(url).port}/x")
        async with httpx.AsyncClient(transport=PinnedTransport(guard)) as client:
            tool = http_tool(definition, client)
            with pytest.raises(TransientToolError, match="could not reach"):
                await tool.handler({}, CONTEXT)
            with pytest.raises(ToolError, match=r"resolves to 127\.0\.0\.1"):
                await tool.handler({}, CONTEXT)
    assert hits == [] and resolver.asked == ["localhost", "localhost"]


async def test_an_mcp_server_is_checked_again_on_connecting(tmp_path: Path) -> None:
    with running_server(mcp_app()) as url:
        guard = TargetGuard(resolver=_Rebinding("93.184.215.14", "127.0.0.1"))
        tenant_tools = TenantTools(InMemoryRegistrations(), guard=guard)
        config = McpServerConfig(name="inventory", transport="http", url=f"http://localhost:{urlsplit(url).port}/mcp")
        try:
            with pytest.raises(UnsafeTargetError, match=r"resolves to 127\.0\.0\.1"):
                await tenant_tools.register_mcp("acme", config)
        finally:
            await tenant_tools.aclose()
    assert await tenant_tools.list_mcp("acme") == []


def test_credentials_in_a_url_are_redacted() -> None:
    assert redact("https://user:secret@api.example:8443/x?q=1") == "https://***@api.example:8443/x?q=1"
    assert redact("https://token@api.example/") == "https://***@api.example/"
    assert redact("https://api.example/x") == "https://api.example/x"


async def test_errors_about_a_url_never_show_its_credentials(hostile: str) -> None:
    with pytest.raises(UnsafeTargetError) as refused:
        TargetGuard().check("http://user:secret@10.0.0.1/x")
    answered = hostile.replace("http://", "http://user:secret@") + "/missing"
    with pytest.raises(ToolError) as refused_call:
        await _call(answered)
    for error in (refused.value, refused_call.value):
        assert "secret" not in str(error) and "***@" in str(error)


def test_secrets_in_a_urls_query_are_redacted() -> None:
    url = "https://api.example/v1?q=rain&api_key=k1&access_token=t2&sig=s3&X-Amz-Signature=s4&Token=t5&page=2&key"
    shown = (
        "https://api.example/v1?q=rain&api_key=***&access_token=***&sig=***&X-Amz-Signature=***&Token=***&page=2&key"
    )
    assert redact(url) == shown
    assert redact("https://u:p@api.example/?apikey=k1#top") == "https://***@api.example/?apikey=***#top"


async def test_errors_never_show_a_token_in_a_urls_query() -> None:
    with running_server(FastAPI()) as url:
        closed = f"http://127.0.0.1:{urlsplit(url).port}"
    tokened = f"{closed}/x?city=Oslo&token=s3cret-t0ken"
    with pytest.raises(TransientToolError) as unreachable:
        await _call(tokened)
    assert "s3cret" not in str(unreachable.value) and "token=***" in str(unreachable.value)
    with pytest.raises(UnsafeTargetError) as refused:
        TargetGuard().check("http://10.0.0.1/x?access_token=s3cret-t0ken")
    assert "s3cret" not in str(refused.value)
