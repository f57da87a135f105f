"""A fixed-window request limit per API key: in Redis when memory is there, else in-process.

Fixed windows (one counter per key per minute, INCR then EXPIRE) are the cheapest limit
that replicas can share; a burst of twice the limit across a window edge is tolerated.
Callers are named by an opaque id (a hash of the key), so no key is ever written to Redis.
If Redis cannot be reached the limit fails open: the request then meets the 503 of the
session memory itself, which says what is wrong.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["LocalRateLimiter", "RateLimiter", "RedisRateLimiter"]

log = logging.getLogger(__name__)

WINDOW_S = 60


class RateLimiter(Protocol):
    async def hit(self, caller: str) -> float | None:
        """Count one request; None when allowed, else the seconds until the next is."""
        ...


def _window(now: float) -> tuple[int, float]:
    """The current window's number and the seconds left in it."""
    index = int(now // WINDOW_S)
    return index, max(1.0, math.ceil((index + 1) * WINDOW_S - now))


class LocalRateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, caller: str) -> float | None:
        index, left = _window(self._clock())
        seen, count = self._counts.get(caller, (index, 0))
        count = count + 1 if seen == index else 1
        self._counts[caller] = (index, count)
        return left if count > self.per_minute else None


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
        except RedisError:
            log.warning("rate limit not checked: Redis unavailable")
            return None
        return left if int(count) > self.per_minute else None
