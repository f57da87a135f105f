"""Session memory: the LangGraph checkpointer chosen by settings.

SQLite is the embedded default, in-memory is for tests, and Redis is for production
replicas that share sessions. Redis must work on plain Redis (no RedisJSON or RediSearch
modules), so it uses `langgraph-checkpoint-plainredis`, which passes the whole base suite
of `langgraph-checkpoint-conformance` (tests/test_memory_conformance.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph_checkpoint_plainredis import AsyncRedisSaver
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from agent.locks import LocalSessionLocks, RedisSessionLocks, SessionLocks
from agent.sessions import InMemorySessionStore, SessionStore
from agent.sessions_redis import RedisSessionStore, RedisThreadKeeper
from agent.sessions_sqlite import SqliteSessionStore, prune_sqlite_thread
from model.errors import VoicegraphError

__all__ = [
    "DEFAULT_REDIS_PREFIX",
    "KEEP_CHECKPOINTS",
    "REDIS_CONNECT_TIMEOUT_S",
    "REDIS_SOCKET_TIMEOUT_S",
    "Memory",
    "MemoryKind",
    "MemoryUnavailableError",
    "open_checkpointer",
    "open_memory",
]

MemoryKind = Literal["sqlite", "memory", "redis"]

DEFAULT_REDIS_PREFIX = "voicegraph"
REDIS_CONNECT_TIMEOUT_S = 2.0
"""Bounds connecting and the first PING: a service without its session store should say so at start."""
REDIS_SOCKET_TIMEOUT_S = 5.0
"""Bounds every command, so a Redis that dies mid-session fails the turn instead of hanging it."""
REDIS_MAX_CONNECTIONS = 100
"""Connections one process opens to Redis; a command beyond them waits (up to the socket timeout) for one."""

KEEP_CHECKPOINTS = 2
"""Checkpoints kept per thread after a turn: the latest, and the one a failed turn restores."""

REDIS_UNREACHABLE = "cannot reach the Redis session memory at {url}: {error}"
NOT_ANSWERING = "the session memory does not answer ({error})"


class MemoryUnavailableError(VoicegraphError):
    """The configured session memory cannot be reached, so no turn could be remembered."""


@asynccontextmanager
async def open_checkpointer(
    kind: MemoryKind,
    path: Path | None = None,
    *,
    redis_url: str | None = None,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """SQLite at `path` (the embedded default), Redis at `redis_url`, or in-memory for tests.

    `redis_prefix` namespaces every key, so several deployments (or test runs) can share
    one Redis. Redis is pinged on open: an unreachable server raises MemoryUnavailableError
    within about REDIS_CONNECT_TIMEOUT_S rather than failing the first turn later.
    """
    if kind == "memory":
        yield InMemorySaver()
        return
    if kind == "redis":
        if not redis_url:
            raise ValueError("the redis checkpointer needs a redis_url")
        async with _open_redis(redis_url, redis_prefix) as saver:
            yield saver
        return
    if path is None:
        raise ValueError("the sqlite checkpointer needs a path")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


ThreadKeeper = Callable[[str], Awaitable[None]]
"""Upkeep of a thread after each landed turn: prune old checkpoints, refresh its expiry."""


@dataclass(frozen=True)
class Memory:
    """Everything a session is kept in, on one backend: the thread, its index, its lock."""

    checkpointer: BaseCheckpointSaver[Any]
    sessions: SessionStore
    locks: SessionLocks
    keeper: ThreadKeeper | None = None
    redis: aioredis.Redis | None = None
    """The Redis client, when memory is on Redis (the API's rate limiter shares it)."""

    async def ping(self) -> None:
        """Return once the backend answers; MemoryUnavailableError within REDIS_CONNECT_TIMEOUT_S if not.

        For readiness: a replica whose Redis is gone should get no traffic. SQLite and the
        in-memory store live in the process, so they always answer. The message names no
        host, since a readiness probe answers without a key.
        """
        if self.redis is None:
            return
        try:
            async with asyncio.timeout(REDIS_CONNECT_TIMEOUT_S):
                await self.redis.ping()
        except (TimeoutError, RedisError, OSError) as error:
            raise MemoryUnavailableError(NOT_ANSWERING.format(error=type(error).__name__)) from error


@asynccontextmanager
async def open_memory(
    kind: MemoryKind,
    path: Path | None = None,
    *,
    redis_url: str | None = None,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
    ttl_s: int | None = None,
    max_turns: int = 50,
) -> AsyncIterator[Memory]:
    """The checkpointer of `open_checkpointer` with a session index and locks beside it.

    `ttl_s` is the sliding expiry of an idle session (None or 0: never); `max_turns`
    bounds each session's turn log.
    """
    ttl = ttl_s or None
    async with open_checkpointer(kind, path, redis_url=redis_url, redis_prefix=redis_prefix) as saver:
        if isinstance(saver, AsyncRedisSaver):
            client = saver.client
            yield Memory(
                checkpointer=saver,
                sessions=RedisSessionStore(client, prefix=redis_prefix, ttl_s=ttl, max_turns=max_turns),
                locks=RedisSessionLocks(client, prefix=redis_prefix),
                keeper=RedisThreadKeeper(saver, ttl_s=ttl, keep_checkpoints=KEEP_CHECKPOINTS),
                redis=client,
            )
        elif isinstance(saver, AsyncSqliteSaver):
            await saver.setup()
            conn, lock = saver.conn, saver.lock

            async def prune(thread_id: str) -> None:
                await prune_sqlite_thread(conn, lock, thread_id, KEEP_CHECKPOINTS)

            sessions = SqliteSessionStore(conn, lock, ttl_s=ttl, max_turns=max_turns)
            yield Memory(checkpointer=saver, sessions=sessions, locks=LocalSessionLocks(), keeper=prune)
        else:
            store = InMemorySessionStore(ttl_s=ttl, max_turns=max_turns)
            yield Memory(checkpointer=saver, sessions=store, locks=LocalSessionLocks())


@asynccontextmanager
async def _open_redis(url: str, prefix: str) -> AsyncIterator[AsyncRedisSaver]:
    # RESP2 on purpose: it is what the saver is tested with, and every Redis speaks it.
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
            raise MemoryUnavailableError(REDIS_UNREACHABLE.format(url=_redacted(url), error=reason)) from error
        except (RedisError, OSError) as error:
            raise MemoryUnavailableError(REDIS_UNREACHABLE.format(url=_redacted(url), error=error)) from error
        yield AsyncRedisSaver(client=client, prefix=prefix)
    finally:
        await client.aclose()


def _redacted(url: str) -> str:
    """The URL without its password, fit for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
