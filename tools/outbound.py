"""Requests our server makes to URLs that tenants give: what we read back is bounded.

A tool's answer is cut to a few thousand characters for the model anyway, so reading a
response whole first would let any endpoint make us hold gigabytes (a long body, or a
small gzip body that inflates to one). The body is read as it streams and reading stops
past a byte limit; compressed bodies are inflated here, by at most that limit, rather
than by httpx, which inflates each network chunk whole.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import httpx

from tools.base import ToolError

__all__ = ["ACCEPTED_ENCODINGS", "DEFAULT_MAX_RESPONSE_BYTES", "read_capped"]

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024
"""Bytes of a tool's response we read (after inflating); more than the model could read."""
ACCEPTED_ENCODINGS = "gzip, deflate"
"""The Accept-Encoding we send: the content codings `read_capped` inflates."""

_UNSUPPORTED_ENCODING = "{url} answered in content encoding {encoding!r}; only gzip and deflate are read"
_CORRUPT = "{url} sent a corrupt {encoding} body: {error}"

_INFLATERS: dict[str, Callable[[], Any] | None] = {
    "": None,
    "identity": None,
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(32 + zlib.MAX_WBITS),  # zlib (or gzip) wrapped, detected
}
"""Content codings we inflate ourselves (each call a fresh inflater); None: the bytes as sent."""


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body of a streamed `response`, at most `limit` bytes, and whether there was more.

    Reading stops as soon as either the bytes on the wire or the inflated bytes pass
    `limit`, so neither a long body nor a decompression bomb costs more than about that.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in _INFLATERS:
        raise ToolError(_UNSUPPORTED_ENCODING.format(url=response.request.url, encoding=encoding))
    make = _INFLATERS[encoding]
    inflater = None if make is None else make()
    body = bytearray()
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if inflater is None:
            body += chunk
        else:
            try:
                body += inflater.decompress(chunk, limit + 1 - len(body))
            except zlib.error as error:
                url = response.request.url
                raise ToolError(_CORRUPT.format(url=url, encoding=encoding, error=error)) from error
        if len(body) > limit or received > limit:
            return bytes(body[:limit]), True
    return bytes(body), False
