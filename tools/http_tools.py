"""HTTP tools that users register at run time: the agent POSTs the arguments as JSON to a URL.

The definition is the tool's name, description and JSON-schema parameters, plus where to
send the call (`url`, optional `headers`, `timeout_s`). The response body is the result:
JSON is passed on as JSON text, anything else as text, cut to a size the model can read.

A URL a tenant gives us is a request our server will make, inside our network: without a
guard, "http://169.254.169.254/" or "http://localhost:6379/" would let any tenant read the
cloud metadata service or poke at Redis. So every target's host is resolved and refused
when any of its addresses is not globally routable (private, loopback, link-local,
reserved, multicast), unless the host or address is on the operator's allow-list. The
check runs when the tool is registered and again before every call (DNS can change in
between), and redirects are not followed, so a public URL cannot bounce to a private one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec, TransientToolError, cut_text
from tools.errors import UnsafeTargetError
from tools.outbound import ACCEPTED_ENCODINGS, DEFAULT_MAX_RESPONSE_BYTES, read_capped

__all__ = ["HttpToolDefinition", "TargetGuard", "http_tool"]

_BAD_URL = "tool url {url!r} must be an absolute http or https URL"
_UNRESOLVED = "tool url host {host!r} does not resolve: {error}"
_PRIVATE = (
    "tool url {url!r} resolves to {address}, a private, loopback or link-local address; "
    "list the host in VOICEGRAPH_TOOL_ALLOW_PRIVATE_HOSTS to allow it"
)
_UNREACHABLE = "could not reach {url}: {error}"
_SERVER_ERROR = "{url} answered {status}"
_CLIENT_ERROR = "{url} refused the call with {status}: {body}"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class HttpToolDefinition(BaseModel):
    """What a tenant registers (POST /v1/tools) and what is kept for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    description: str = Field(min_length=1, max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON schema of the arguments (type object)."""
    url: str = Field(min_length=1, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every call (an API key for the target, say); never shown back in listings."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    read_only: bool = False
    """The endpoint changes nothing, so a transient failure may be retried once."""


class TargetGuard:
    """Refuses URLs whose host resolves to a non-public address, unless the operator allowed it.

    `allow` holds host names, addresses, or networks in CIDR form ("10.0.0.0/8").
    """

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip() for e in allow):
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    def check(self, url: str) -> None:
        """Raise UnsafeTargetError for a URL we must not call (blocking: it resolves the host)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UnsafeTargetError(_BAD_URL.format(url=url))
        host = parts.hostname.lower().rstrip(".")
        if host in self._hosts:
            return
        for address in _resolve(host, parts.port or (443 if parts.scheme == "https" else 80)):
            if _is_public(address) or any(address in network for network in self._networks):
                continue
            raise UnsafeTargetError(_PRIVATE.format(url=url, address=address))


def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UnsafeTargetError(_UNRESOLVED.format(host=host, error=error)) from error
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _text(response: httpx.Response, body: bytes, *, more: bool) -> str:
    """The body as the model reads it: JSON as compact JSON, anything else as text, cut."""
    text = None
    if not more:  # a cut JSON document does not parse: it is read as text
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(body), ensure_ascii=False)
    if text is None:
        try:
            text = body.decode(response.charset_encoding or "utf-8", errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
    return cut_text(text, more=more)


def http_tool(
    definition: HttpToolDefinition,
    client: httpx.AsyncClient,
    guard: TargetGuard,
    *,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Tool:
    """The Tool that calls `definition.url`; `client` is shared (its connection pool), redirects off.

    At most `max_response_bytes` of the answer are read (see tools/outbound.py).
    """
    headers = httpx.Headers(definition.headers)
    headers["Accept-Encoding"] = ACCEPTED_ENCODINGS

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        await asyncio.to_thread(guard.check, definition.url)
        try:
            async with client.stream(
                "POST",
                definition.url,
                json=arguments,
                headers=headers,
                timeout=definition.timeout_s,
                follow_redirects=False,
            ) as response:
                if response.status_code >= 500:
                    raise TransientToolError(_SERVER_ERROR.format(url=definition.url, status=response.status_code))
                body, more = await read_capped(response, max_response_bytes)
        except httpx.TimeoutException as error:
            raise TimeoutError(str(error)) from error
        except httpx.TransportError as error:
            raise TransientToolError(_UNREACHABLE.format(url=definition.url, error=error)) from error
        text = _text(response, body, more=more)
        if response.status_code >= 300:
            raise ToolError(_CLIENT_ERROR.format(url=definition.url, status=response.status_code, body=text[:300]))
        return ToolResult(text)

    spec = ToolSpec(
        name=definition.name,
        description=definition.description,
        parameters=definition.parameters,
        timeout_s=definition.timeout_s,
        read_only=definition.read_only,
    )
    return Tool(spec=spec, handler=handler)
