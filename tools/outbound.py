"""Requests our server makes to URLs that tenants give: where they may go, and what we read back.

A URL a tenant gives us is a request our server will make, inside our network: without a
guard, "http://169.254.169.254/" or "http://localhost:6379/" would let any tenant read the
cloud metadata service or poke at Redis. So every target's host is resolved and refused
when any of its addresses is not globally routable (private, loopback, link-local,
reserved, multicast), unless the host or address is on the operator's allow-list.

Checking a URL and then letting httpx connect to it would resolve the host twice, and a
name can answer a public address to the check and a private one to the connection (DNS
rebinding). So the check happens inside the connection: `PinnedTransport` resolves the
host, checks every address, and connects to those very addresses (TLS still verifies the
host name). Redirects are not followed, so a public URL cannot bounce to a private one.

A tool's answer is cut to a few thousand characters for the model anyway, so reading a
response whole first would let any endpoint make us hold gigabytes (a long body, or a
small gzip body that inflates to one). The body is read as it streams and reading stops
past a byte limit; compressed bodies are inflated here, by at most that limit, rather
than by httpx, which inflates each network chunk whole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpcore
import httpx

from tools.base import ToolError
from tools.errors import UnsafeTargetError

__all__ = [
    "ACCEPTED_ENCODINGS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "PinnedTransport",
    "Resolver",
    "TargetGuard",
    "read_capped",
    "redact",
    "redact_in",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""(host, port) -> the host's addresses, as text; the seam tests use to play DNS."""

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024
"""Bytes of a tool's response we read (after inflating); more than the model could read."""
ACCEPTED_ENCODINGS = "gzip, deflate"
"""The Accept-Encoding we send: the content codings `read_capped` inflates."""

_BAD_URL = "tool url {url!r} must be an absolute http or https URL"
_UNRESOLVED = "tool url host {host!r} does not resolve: {error}"
_PRIVATE = (
    "tool url {target!r} resolves to {address}, a private, loopback or link-local address; "
    "list the host in VOICEGRAPH_TOOL_ALLOW_PRIVATE_HOSTS to allow it"
)
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


_SECRET_PARAMETER = re.compile(
    r"(?:key|sig|code|auth|pass|pwd|jwt)|.*(?:token|secret|signature|password|api[-_.]?key|credential|session).*"
    r"|x-(?:amz|goog)-.*",
    re.IGNORECASE,
)
"""Query parameters that carry a secret (`api_key`, `token`, `access_token`, `sig`, `X-Amz-Signature`, ...)."""


def redact(url: str | httpx.URL) -> str:
    """`url` with any user:password, and the value of every query parameter that may carry a
    secret, replaced by '***', for messages, traces and listings."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    if parts.query:
        parts = parts._replace(query="&".join(map(_redact_parameter, parts.query.split("&"))))
    return urlunsplit(parts)


def _redact_parameter(pair: str) -> str:
    name, equals, value = pair.partition("=")
    return f"{name}=***" if equals and value and _SECRET_PARAMETER.fullmatch(unquote(name)) else pair


def redact_in(text: str, url: str) -> str:
    """`text` (an error from a library, which may quote the URL it was given) with `url` redacted."""
    return text.replace(url, redact(url)) if url else text


def _system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (blocking)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UnsafeTargetError(_UNRESOLVED.format(host=host, error=error)) from error
    return [str(info[4][0]) for info in infos]


class TargetGuard:
    """Refuses hosts that resolve to a non-public address, unless the operator allowed it.

    `allow` holds host names, addresses, or networks in CIDR form ("10.0.0.0/8").
    """

    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver = _system_resolver) -> None:
        self._resolver = resolver
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
            raise UnsafeTargetError(_BAD_URL.format(url=redact(url)))
        if parts.hostname.lower().rstrip(".") in self._hosts:
            return
        self.addresses(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), redact(url))

    def addresses(self, host: str, port: int, target: str | None = None) -> list[Address]:
        """The host's addresses, every one allowed; UnsafeTargetError (naming `target`, the URL) if not."""
        host = host.lower().rstrip(".").strip("[]")
        try:
            resolved = [ipaddress.ip_address(host)]
        except ValueError:
            resolved = [ipaddress.ip_address(text.split("%")[0]) for text in self._resolver(host, port)]
        if host in self._hosts:
            return resolved
        for address in resolved:
            if not (_is_public(address) or any(address in network for network in self._networks)):
                raise UnsafeTargetError(_PRIVATE.format(target=target or host, address=address))
        return resolved


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body of a streamed `response`, at most `limit` bytes, and whether there was more.

    Reading stops as soon as either the bytes on the wire or the inflated bytes pass
    `limit`, so neither a long body nor a decompression bomb costs more than about that.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in _INFLATERS:
        raise ToolError(_UNSUPPORTED_ENCODING.format(url=redact(response.request.url), encoding=encoding))
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
                url = redact(response.request.url)
                raise ToolError(_CORRUPT.format(url=url, encoding=encoding, error=error)) from error
        if len(body) > limit or received > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, whose every new connection goes to addresses `guard` has just passed.

    Environment proxies are ignored: a proxy would resolve the host itself, unchecked.
    """

    def __init__(self, guard: TargetGuard, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        super().__init__(trust_env=False, limits=limits)
        # httpx gives no way to choose its pool's network backend; this pool is the one it
        # builds (same TLS and limits), with the backend that resolves, checks and connects.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(guard),
        )


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to a host by the addresses the guard returned for it, never by its name."""

    def __init__(self, guard: TargetGuard) -> None:
        self._guard = guard
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(self._guard.addresses, host, port)
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._backend.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("tools do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
