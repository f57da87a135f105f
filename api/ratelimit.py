"""Fixed-window request limits: per API key, and per client address for failed keys; in
Redis when memory is there, else in-process.

Fixed windows (one counter per caller per minute, INCR then EXPIRE) are the cheapest limit
that replicas can share; a burst of twice the limit across a window edge is tolerated.
Callers are named by an opaque id (a hash of the key), so no key is ever written to Redis.
If Redis cannot be reached the limit fails closed: `RateLimitUnavailableError`, which the
API answers 503, since a limit that lapses whenever Redis does would let a flood through
(or an attacker's key guesses) exactly when the service is weakest.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from model.errors import VoicegraphError

__all__ = ["LocalRateLimiter", "RateLimitUnavailableError", "RateLimiter", "RedisRateLimiter"]

log = logging.getLogger(__name__)

WINDOW_S = 60
UNAVAILABLE = "requests cannot be counted against their limit: Redis is unavailable ({error}); try again shortly"


class RateLimitUnavailableError(VoicegraphError):
    """The limit's counters cannot be read (Redis is down): the request is refused, not let through."""


class RateLimiter(Protocol):
    per_minute: int

    async def hit(self, caller: str) -> float | None:
        """Count one request; None when allowed, else the seconds until the next is."""
        ...

    async def peek(self, caller: str) -> float | None:
        """Without counting: None when one more request would be allowed, else the seconds until it is."""
        ...


def _window(now: float) -> tuple[int, float]:
    """The current window's number and the seconds left in it."""
    index = int(now // WINDOW_S)
    return index, max(1.0, math.ceil((index + 1) * WINDOW_S - now))


_MAX_LOCAL_CALLERS = 10_000
"""Callers counted in-process before those of past windows are forgotten (addresses are many)."""


class LocalRateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}

    def _count(self, caller: str, index: int) -> int:
        seen, count = self._counts.get(caller, (index, 0))
        return count if seen == index else 0

    async def hit(self, caller: str) -> float | None:
        index, left = _window(self._clock())
        if len(self._counts) > _MAX_LOCAL_CALLERS:  # forget callers of earlier windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        count = self._count(caller, index) + 1
        self._counts[caller] = (index, count)
        return left if count > self.per_minute else None

    async def peek(self, caller: str) -> float | None:
        index, left = _window(self._clock())
        return left if self._count(caller, index) >= self.per_minute else None


class RedisRateLimiter:
    def __init__(
        self, client: aioredis.Redis, per_minute: int, *, prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.per_minute = per_minute
        self.prefix = prefix
        self._clock = clock

    async def hit(self, caller: str) -> float | None:
        index, left = _window(self._clock())
        key = f"{self.prefix}:rate:{caller}:{index}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_S * 2)
                count, _ = await pipe.execute()
        except RedisError as error:
            raise _unavailable(error) from error
        return left if int(count) > self.per_minute else None

    async def peek(self, caller: str) -> float | None:
        index, left = _window(self._clock())
        try:
            count = await self.client.get(f"{self.prefix}:rate:{caller}:{index}")
        except RedisError as error:
            raise _unavailable(error) from error
        return left if int(count or 0) >= self.per_minute else None


def _unavailable(error: RedisError) -> RateLimitUnavailableError:
    log.warning("rate limit not checked, request refused: Redis unavailable (%s)", type(error).__name__)
    return RateLimitUnavailableError(UNAVAILABLE.format(error=type(error).__name__))
