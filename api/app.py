"""The FastAPI application: built around Services opened for the app's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.compose import Services, open_services
from api.errors import install_error_handlers
from api.limits import BodyLimits
from api.origins import CrossSiteGuard
from api.routes import (
    chat_completions,
    health,
    knowledge_bases,
    playground,
    realtime,
    sessions,
    tools,
    turns,
    voices,
)
from api.schemas import Problem
from api.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": description}
    for code, description in {
        400: "The body is not what the route reads (not JSON, not a form, ...)",
        413: "The body is over its route's limit",
        422: "A field or parameter is invalid",
        429: "A rate limit or a tenant's quota is reached",
    }.items()
}
"""Answers any route may give, in the shape of every error: the body and rate limits run before
the routes, and the validation handler answers as `problem()` does (api/errors.py)."""

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

    app = FastAPI(title="voicegraph", version="0.1.0", lifespan=lifespan, responses=ERRORS)
    app.include_router(health.router)
    app.include_router(turns.router)
    app.include_router(realtime.router)
    app.include_router(chat_completions.router)
    app.include_router(sessions.router)
    app.include_router(knowledge_bases.router)
    app.include_router(tools.router)
    app.include_router(voices.router)
    app.include_router(playground.router)

    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(CrossSiteGuard, settings=settings)  # before the key and size checks
    install_error_handlers(app)  # outermost: a 500 for anything the layers inside let through
    return app
