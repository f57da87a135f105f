"""Answering before the turn is over: the response to what the user said so far starts as
soon as they pause, while the server still waits out the silence that ends the turn.

The answer's events are held back, not sent: if the user goes on speaking, the early
response is dropped (its turn rolled back, nothing heard); if the silence ends the turn and
the transcript is the one the early response answers, its events are let out, the planner
and the voice having gone on meanwhile. What the user waits for after they stop is then what is left of
the answer's start once the silence has passed, not all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from api.realtime_response import Response

__all__ = ["EarlyAnswer", "HeldSend"]


class HeldSend:
    """Sends events once released; until then the first one waits, and with it the response
    that sends it: its turn does not land (the runner lands a turn only once its events have
    all been taken), so dropping it rolls the turn back even when the planner has finished."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send
        self._released = asyncio.Event()

    async def __call__(self, event: dict[str, Any]) -> None:
        await self._released.wait()
        await self._send(event)

    def release(self) -> None:
        self._released.set()


@dataclass
class EarlyAnswer:
    transcript: str
    """What the user had said when it started."""
    response: Response
    held: HeldSend
    task: asyncio.Task[None] = field(init=False)

    async def drop(self) -> None:
        """Stop it; its turn is rolled back, and what it held is never sent."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
