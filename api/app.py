"""The FastAPI application: built around Services opened for the app's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.compose import Services, open_services
from api.routes import health, knowledge_bases, sessions, turns
from api.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

ServicesFactory = Callable[[Settings], AbstractAsyncContextManager[Services]]


def create_app(settings: Settings | None = None, services: ServicesFactory = open_services) -> FastAPI:
    """`services` builds the parts; tests pass a factory that injects a scripted planner."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services(settings) as built:
            app.state.services = built
            log.info("voicegraph ready: %s", built.load_seconds)
            yield

    app = FastAPI(title="voicegraph", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(turns.router)
    app.include_router(sessions.router)
    app.include_router(knowledge_bases.router)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=422, content={"detail": problem})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__})"})

    return app
