"""Without API keys, only this machine and its own pages may drive the service: Host and Origin checks.

With no keys configured, whatever reaches the port is the local tenant, and a web page the
user happens to visit can reach 127.0.0.1 too: by a cross-site request (the browser sends
the page's Origin) or by DNS rebinding (its own host name, made to resolve to 127.0.0.1,
arrives as the Host). So, without keys, a request must address the service by a loopback
name or an allowed host, and a request a page makes (it has an Origin) must come from the
service's own origin or an allowed one. Both HTTP requests and WebSocket handshakes are
checked. With keys configured the key is the check: a page elsewhere does not have one.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.settings import Settings

__all__ = ["CrossSiteGuard"]

BAD_HOST = (
    "this service without API keys answers only to a loopback host (localhost, 127.0.0.1, [::1]) "
    "or one in VOICEGRAPH_ALLOWED_HOSTS, not {host!r}"
)
BAD_ORIGIN = (
    "cross-site request refused: origin {origin!r} is neither this service's own nor in VOICEGRAPH_ALLOWED_ORIGINS"
)


def _host_name(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`, `Example.org:80` -> `example.org`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class CrossSiteGuard:
    """Refuses, when no API keys are configured, requests by a foreign Host or from a foreign Origin."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.active = not settings.tenant_keys()
        self.hosts = set(settings.allowed_host_names)
        self.origins = set(settings.allowed_origin_list)

    def refusal(self, headers: Headers) -> str | None:
        """Why the request may not come in, or None when it may."""
        host = headers.get("host", "")
        name = _host_name(host)
        if not ("*" in self.hosts or _loopback(name) or name in self.hosts):
            return BAD_HOST.format(host=host[:200])
        origin = headers.get("origin")
        if origin is None or "*" in self.origins:
            return None
        own = urlsplit(origin.lower())
        if origin.lower().rstrip("/") in self.origins or (
            own.scheme in {"http", "https"} and own.netloc == host.lower()
        ):
            return None
        return BAD_ORIGIN.format(origin=origin[:200])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.active or scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        why = self.refusal(Headers(scope=scope))
        if why is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
            await JSONResponse(status_code=403, content={"detail": why})(scope, receive, send)
        else:  # a server without denial responses answers a close before accept with a bare 403
            await send({"type": "websocket.close", "code": 1008, "reason": "cross-site request refused"})
