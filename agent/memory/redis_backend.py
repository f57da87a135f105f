"""The Redis backend (production): replicas share threads, the index, locks, registrations and counters.

It must work on plain Redis (no RedisJSON or RediSearch modules): the checkpointer is our
own (agent/memory/redis_saver.py), which passes the whole suite of
`langgraph-checkpoint-conformance` (tests/test_memory_conformance.py) and reads or writes a
turn's checkpoint in one round trip.

Keys beside the saver's and the session index's (agent/sessions_redis.py):

    {prefix}:lock:{tenant}:{session}        the session's lease (agent/locks.py)
    {prefix}:reg:{tenant}:{kind}            the tenant's registrations of a kind (hash: name -> value)
    {prefix}:rate:{key}                     a rate-limit counter
    {prefix}:gen:{tenant}                   the tenant's generation (retrieval/registrations.py)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from agent.locks import DEFAULT_LEASE_MS, RedisSessionLocks
from agent.memory.base import KEEP_CHECKPOINTS, MemoryBackend, MemoryKind, MemoryUnavailableError
from agent.memory.redis_saver import RedisCheckpointSaver
from agent.sessions_redis import RedisSessionStore, redis_text

__all__ = [
    "DEFAULT_REDIS_PREFIX",
    "REDIS_CONNECT_TIMEOUT_S",
    "REDIS_MAX_CONNECTIONS",
    "REDIS_SOCKET_TIMEOUT_S",
    "RedisBackend",
    "RedisCounters",
    "RedisRegistrations",
    "redacted",
]

DEFAULT_REDIS_PREFIX = "voicegraph"
REDIS_CONNECT_TIMEOUT_S = 2.0
"""Bounds connecting and the first PING: a service without its session store should say so at start."""
REDIS_SOCKET_TIMEOUT_S = 5.0
"""Bounds every command, so a Redis that dies mid-session fails the turn instead of hanging it."""
REDIS_MAX_CONNECTIONS = 100
"""Connections one process opens to Redis; a command beyond them waits (up to the socket timeout) for one."""

REDIS_UNREACHABLE = "cannot reach the Redis session memory at {url}: {error}"
COUNTER_UNAVAILABLE = "Redis is unavailable ({error})"
NOT_ANSWERING = "the session memory does not answer ({error})"


class RedisRegistrations:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, tenant: str, kind: str) -> str:
        return f"{self.prefix}:reg:{tenant}:{kind}"

    def _generation_key(self, tenant: str) -> str:
        return f"{self.prefix}:gen:{tenant}"

    async def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool:
        key = self._key(tenant, kind)
        async with self.client.pipeline(transaction=True) as pipe:
            if replace:
                pipe.hset(key, name, value)
            else:
                pipe.hsetnx(key, name, value)
            pipe.incr(self._generation_key(tenant))  # moved even when nothing was kept: harmless
            kept, _ = await pipe.execute()
        return replace or bool(kept)

    async def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        found = await self.client.hget(self._key(tenant, kind), name)
        return None if found is None else _bytes(found)

    async def list(self, tenant: str, kind: str) -> dict[str, bytes]:
        found = await self.client.hgetall(self._key(tenant, kind))
        return {redis_text(name): _bytes(value) for name, value in sorted(found.items())}

    async def delete(self, tenant: str, kind: str, name: str) -> bool:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._key(tenant, kind), name)
            pipe.incr(self._generation_key(tenant))
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def generation(self, tenant: str) -> int:
        return int(await self.client.get(self._generation_key(tenant)) or 0)

    async def touch(self, tenant: str) -> None:
        await self.client.incr(self._generation_key(tenant))


class RedisCounters:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def increment(self, key: str, ttl_s: int) -> int:
        full = f"{self.prefix}:rate:{key}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                pipe.expire(full, ttl_s)
                count, _ = await pipe.execute()
        except RedisError as error:
            raise MemoryUnavailableError(COUNTER_UNAVAILABLE.format(error=type(error).__name__)) from error
        return int(count)

    async def get(self, key: str) -> int:
        try:
            count = await self.client.get(f"{self.prefix}:rate:{key}")
        except RedisError as error:
            raise MemoryUnavailableError(COUNTER_UNAVAILABLE.format(error=type(error).__name__)) from error
        return int(count or 0)


class RedisBackend(MemoryBackend):
    kind: ClassVar[MemoryKind] = "redis"
    shared: ClassVar[bool] = True
    unavailable: ClassVar[tuple[type[BaseException], ...]] = (RedisError,)

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_REDIS_PREFIX,
        ttl_s: int | None = None,
        max_turns: int = 50,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.saver = RedisCheckpointSaver(client, prefix=prefix, ttl_s=ttl_s, keep=KEEP_CHECKPOINTS)
        super().__init__(
            self.saver,
            RedisSessionStore(client, prefix=prefix, ttl_s=ttl_s, max_turns=max_turns),
            RedisSessionLocks(client, prefix=prefix, lease_ms=lease_ms),
            RedisRegistrations(client, prefix=prefix),
            RedisCounters(client, prefix=prefix),
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_REDIS_PREFIX,
        ttl_s: int | None = None,
        max_turns: int = 50,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> AsyncIterator[RedisBackend]:
        """Connect and ping: an unreachable server raises MemoryUnavailableError within about
        REDIS_CONNECT_TIMEOUT_S rather than failing the first turn later."""
        # RESP2 on purpose: every Redis speaks it.
        # A short retry: a Redis that is down should fail the turn (503) in about a second,
        # and the client reconnects by itself on the next command once it is back.
        # A blocking pool: past its size a command waits for a free connection, where the default
        # pool fails it at once (MaxConnectionsError), and the turn with it, under a busy minute.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=REDIS_SOCKET_TIMEOUT_S,
            protocol=2,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 2),
        )
        client = aioredis.Redis.from_pool(pool)
        try:
            try:
                async with asyncio.timeout(REDIS_CONNECT_TIMEOUT_S):  # a server that accepts but never answers
                    await client.ping()
            except TimeoutError as error:
                reason = f"no answer within {REDIS_CONNECT_TIMEOUT_S:g} s"
                raise MemoryUnavailableError(REDIS_UNREACHABLE.format(url=redacted(url), error=reason)) from error
            except (RedisError, OSError) as error:
                raise MemoryUnavailableError(REDIS_UNREACHABLE.format(url=redacted(url), error=error)) from error
            yield cls(client, prefix=prefix, ttl_s=ttl_s, max_turns=max_turns, lease_ms=lease_ms)
        finally:
            await client.aclose()

    async def ping(self) -> None:
        """Return once Redis answers; MemoryUnavailableError within REDIS_CONNECT_TIMEOUT_S if not."""
        try:
            async with asyncio.timeout(REDIS_CONNECT_TIMEOUT_S):
                await self.client.ping()
        except (TimeoutError, RedisError, OSError) as error:
            raise MemoryUnavailableError(NOT_ANSWERING.format(error=type(error).__name__)) from error

    async def upkeep(self, thread_id: str) -> None:
        """Nothing: the saver drops a thread's older checkpoints and refreshes its expiry as it
        writes (agent/memory/redis_saver.py), in the same round trip."""


def _bytes(value: bytes | str) -> bytes:
    """A value as stored: the client hands back bytes unless it was told to decode."""
    return value.encode() if isinstance(value, str) else bytes(value)


def redacted(url: str) -> str:
    """The URL without its password, fit for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
