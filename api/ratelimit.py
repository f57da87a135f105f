"""Fixed-window request limits, counted in the memory backend: per API key, and per client
address for failed keys.

Fixed windows (one counter per caller per minute) are the cheapest limit that replicas can
share: on Redis the counters are shared, on the embedded backends they are the process's
own. A burst of twice the limit across a window edge is tolerated. Callers are named by an
opaque id (a hash of the key), so no key is ever written to the backend.
If the counters cannot be reached (Redis is down) the limit fails closed:
`RateLimitUnavailableError`, which the API answers 503, since a limit that lapses whenever
Redis does would let a flood through (or an attacker's key guesses) exactly when the
service is weakest.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from agent.memory import Counters, MemoryUnavailableError
from model.errors import VoicegraphError

__all__ = ["RateLimitUnavailableError", "RateLimiter"]

log = logging.getLogger(__name__)

WINDOW_S = 60
UNAVAILABLE = "requests cannot be counted against their limit: {error}; try again shortly"


class RateLimitUnavailableError(VoicegraphError):
    """The limit's counters cannot be read (Redis is down): the request is refused, not let through."""


def _window(now: float) -> tuple[int, float]:
    """The current window's number and the seconds left in it."""
    index = int(now // WINDOW_S)
    return index, max(1.0, math.ceil((index + 1) * WINDOW_S - now))


class RateLimiter:
    """`per_minute` requests per caller, counted in `counters` (the memory backend's)."""

    def __init__(self, counters: Counters, per_minute: int, *, clock: Callable[[], float] = time.time) -> None:
        self.counters = counters
        self.per_minute = per_minute
        self._clock = clock

    async def hit(self, caller: str) -> float | None:
        """Count one request; None when allowed, else the seconds until the next is."""
        index, left = _window(self._clock())
        try:
            count = await self.counters.increment(f"{caller}:{index}", WINDOW_S * 2)
        except MemoryUnavailableError as error:
            raise _unavailable(error) from error
        return left if count > self.per_minute else None

    async def peek(self, caller: str) -> float | None:
        """Without counting: None when one more request would be allowed, else the seconds until it is."""
        index, left = _window(self._clock())
        try:
            count = await self.counters.get(f"{caller}:{index}")
        except MemoryUnavailableError as error:
            raise _unavailable(error) from error
        return left if count >= self.per_minute else None


def _unavailable(error: MemoryUnavailableError) -> RateLimitUnavailableError:
    log.warning("rate limit not checked, request refused: %s", error)
    return RateLimitUnavailableError(UNAVAILABLE.format(error=error))
