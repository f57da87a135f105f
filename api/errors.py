"""How our typed errors answer over HTTP: one table, in one place, for every route.

Lower layers raise VoicegraphError subclasses and know nothing of HTTP; this maps them to
statuses. The table is ordered and the first match wins, like a chain of `except`
clauses: an error may be both a RetrievalError and an InputError (a bad base name), and
being the caller's fault comes first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.locks import SessionBusyError, SessionLeaseLostError
from agent.memory import MemoryUnavailableError
from api.quotas import QuotaExceededError
from api.ratelimit import RateLimitUnavailableError
from model.errors import AudioTooLongError, InputError, PlannerError, VoicegraphError
from retrieval.errors import BaseExistsError, BaseNotFoundError, DocumentNotFoundError, RetrievalError
from tools.errors import ToolExistsError, ToolNotFoundError, ToolSourceError

__all__ = ["STATUS_BY_ERROR", "error_answer", "install_error_handlers", "problem", "validation_problem"]

log = logging.getLogger(__name__)

STATUS_BY_ERROR: Sequence[tuple[type[VoicegraphError], int]] = (
    (AudioTooLongError, 413),
    (BaseNotFoundError, 404),
    (DocumentNotFoundError, 404),
    (BaseExistsError, 409),
    (SessionBusyError, 409),
    (ToolNotFoundError, 404),
    (ToolExistsError, 409),
    (ToolSourceError, 502),
    (QuotaExceededError, 429),
    (InputError, 422),
    (PlannerError, 503),
    (MemoryUnavailableError, 503),
    (RateLimitUnavailableError, 503),
    (SessionLeaseLostError, 503),
    (RetrievalError, 503),
)
PLANNER_FAILED = "the planner failed to answer: {error}"
INTERNAL = "internal error ({name})"


def problem(code: int, message: str) -> HTTPException:
    """An HTTP error with a message that says what is wrong (routes raise these)."""
    return HTTPException(status_code=code, detail=message)


def validation_problem(errors: Sequence[Any]) -> str:
    """Pydantic's errors as one line: `field.path: what is wrong; ...`."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)


def error_answer(exc: Exception, where: str) -> tuple[int, str]:
    """The status and message an error answers with (our typed errors by the table, others 500).

    Failures of ours (5xx) are logged with `where` (the method and path); the message never
    holds a stack trace, and an unexpected error's says only its class.
    """
    code = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
    if code >= 500:
        log.error("%s failed: %s", where, exc, exc_info=exc)
    if code == 500 or not isinstance(exc, VoicegraphError):
        return 500, INTERNAL.format(name=type(exc).__name__)
    return code, PLANNER_FAILED.format(error=exc) if isinstance(exc, PlannerError) else str(exc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VoicegraphError)
    async def _ours(request: Request, exc: VoicegraphError) -> JSONResponse:
        code, message = error_answer(exc, f"{request.method} {request.url.path}")
        return JSONResponse(status_code=code, content={"detail": message})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_problem(exc.errors())})

    app.add_middleware(_Unexpected)


class _Unexpected:
    """Any other error answers 500 with its class name, never a stack trace.

    A plain ASGI middleware rather than a handler for Exception: Starlette raises again
    after such a handler answers, and the server then drops the keep-alive connection, so
    a client's next request on it would fail.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # too late for a 500: let the server end the response
                raise
            code, message = error_answer(exc, f"{scope.get('method')} {scope.get('path')}")
            await JSONResponse(status_code=code, content={"detail": message})(scope, receive, send)
