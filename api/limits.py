"""Request-body limits and the API-key check, enforced before any body is read.

FastAPI reads and parses a JSON body before a route's dependencies run, so neither the
key check nor a route's own size check can stop a caller, keyless or not, from making the
server buffer gigabytes. This plain ASGI middleware runs first: with API keys configured,
a /v1 request without a valid one answers 401 (429 once its address has failed too often)
before its body is touched; a body whose
declared Content-Length is over its route's limit answers 413 at once; and every body,
chunked or not, is counted as it streams in, answering 413 the moment the count passes the
limit, without reading any further. The 413 names the limit and the setting that sets it.

Starlette's RequestBodyLimitMiddleware counts the same way but answers in plain text,
after the route has started; ours answers in the service's JSON shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import check_key
from api.forwarded import TrustedProxies
from api.ratelimit import RateLimiter
from api.settings import Settings

__all__ = ["BodyLimits", "Limit", "body_limit"]

FORM_FIELDS_BYTES = 64 * 1024
"""Room for a form's other fields and part headers beside the uploaded file."""
TOO_LARGE = "the request body is larger than {limit} bytes, the most {what} may be (set by {setting})"
BAD_LENGTH = "the Content-Length header is not a number of bytes"

_DOCUMENTS = re.compile(r"/v1/knowledge-bases/[^/]+/documents")
_UPLOADS = re.compile(r"/v1/sessions/[^/]+/turns|/v1/voices|/v1/voices/search")


@dataclass(frozen=True)
class Limit:
    bytes: int
    what: str
    """What the body is, for the message: "a JSON body", "an upload", ..."""
    setting: str
    """The environment variable that sets it."""


def body_limit(settings: Settings, method: str, path: str, content_type: str) -> Limit:
    """The most a body sent to `path` may hold: uploads and documents have their own, JSON the smallest."""
    if method == "POST" and _DOCUMENTS.fullmatch(path):
        return Limit(settings.max_documents_bytes, "a request adding documents", "VOICEGRAPH_MAX_DOCUMENTS_BYTES")
    if method == "POST" and content_type == "multipart/form-data" and _UPLOADS.fullmatch(path):
        upload = settings.max_upload_bytes + FORM_FIELDS_BYTES
        return Limit(upload, "an upload (64 KiB over the file's limit)", "VOICEGRAPH_MAX_UPLOAD_BYTES")
    if method == "POST" and path == "/v1/chat/completions":  # its audio comes as base64 in the JSON
        encoded = -(-settings.max_upload_bytes // 3) * 4 + settings.max_json_bytes
        what = "a chat request (its audio in base64, and the JSON around it)"
        return Limit(encoded, what, "VOICEGRAPH_MAX_UPLOAD_BYTES and VOICEGRAPH_MAX_JSON_BYTES")
    return Limit(settings.max_json_bytes, "a JSON body", "VOICEGRAPH_MAX_JSON_BYTES")


class _TooLarge(Exception):
    """Raised from `receive` to stop the route reading; the middleware answers 413."""


class BodyLimits:
    """The key check and the body limits of every HTTP request (WebSockets pass untouched)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.keys = settings.tenant_keys()
        self.proxies = TrustedProxies(settings.trusted_proxy_list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        if self.keys and path.startswith("/v1/"):
            try:
                await check_key(HTTPConnection(scope), self.keys, _auth_failures(scope), self.proxies)
            except HTTPException as refused:
                await _answer(scope, receive, send, refused.status_code, str(refused.detail), refused.headers)
                return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = body_limit(self.settings, scope["method"], path, content_type)
        declared = headers.get("content-length")
        if declared is not None and not (declared.isascii() and declared.strip().isdigit()):
            await _answer(scope, receive, send, 400, BAD_LENGTH)
            return
        if declared is not None and int(declared) > limit.bytes:
            await _answer(scope, receive, send, 413, _message(limit))
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: Limit) -> None:
        """Run the app with a `receive` that stops at the limit; then answer 413 in its place."""
        received = 0
        over = False
        started = False

        async def counting() -> Message:
            nonlocal received, over
            if over:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.bytes:
                    over = True
                    raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if over and not started:  # the route's own answer to the aborted read (FastAPI's 400)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await _answer(scope, receive, send, 413, _message(limit))


def _auth_failures(scope: Scope) -> RateLimiter | None:
    """The app's failed-key limiter (api/deps.py `check_key`), once its services are built."""
    services = getattr(scope["app"].state, "services", None) if "app" in scope else None
    return getattr(services, "auth_failures", None)


def _message(limit: Limit) -> str:
    return TOO_LARGE.format(limit=limit.bytes, what=limit.what, setting=limit.setting)


async def _answer(
    scope: Scope, receive: Receive, send: Send, code: int, message: str, headers: Mapping[str, str] | None = None
) -> None:
    await JSONResponse(status_code=code, content={"detail": message}, headers=headers)(scope, receive, send)
