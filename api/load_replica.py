"""A replica for `voicegraph bench load`: the real app, memory, tools and tracing, with a
planner that costs nothing, so that what is measured is the service around the model.

Served by uvicorn as a factory (`uvicorn api.load_replica:create_load_app --factory`) with
settings from the environment like `voicegraph serve`: the bench points every replica at
one Redis. The planner asks the clock (a built-in tool) and answers with what it said, so
every turn runs two planning steps, one tool call, and writes the session on Redis.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from api.app import create_app
from api.compose import Services, open_services
from api.settings import Settings
from model.testing import ClockPlanner, TextOnlyASR

__all__ = ["REPLICA_APP", "create_load_app"]

REPLICA_APP = "api.load_replica:create_load_app"
"""What uvicorn is given (with --factory)."""


def _services(settings: Settings) -> AbstractAsyncContextManager[Services]:
    return open_services(settings, planner=ClockPlanner(), asr=TextOnlyASR())


def create_load_app() -> FastAPI:
    return create_app(Settings(), services=_services)
