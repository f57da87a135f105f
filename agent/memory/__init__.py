"""Session memory: the backend the settings name, opened in one place.

SQLite is the embedded default, in-memory is for tests, and Redis is for production
replicas that share sessions, locks, registrations and rate limits. Each backend is one
module beside agent/memory/base.py, which says what every backend holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.locks import DEFAULT_LEASE_MS
from agent.memory.base import (
    KEEP_CHECKPOINTS,
    Counters,
    MemoryBackend,
    MemoryKind,
    MemoryUnavailableError,
    RollbackFailedError,
    session_thread,
)
from agent.memory.in_memory import InMemoryBackend
from agent.memory.redis_backend import (
    DEFAULT_REDIS_PREFIX,
    REDIS_CONNECT_TIMEOUT_S,
    REDIS_SOCKET_TIMEOUT_S,
    RedisBackend,
)
from agent.memory.redis_saver import RedisCheckpointSaver
from agent.memory.sqlite_backend import SqliteBackend

__all__ = [
    "DEFAULT_REDIS_PREFIX",
    "KEEP_CHECKPOINTS",
    "REDIS_CONNECT_TIMEOUT_S",
    "REDIS_SOCKET_TIMEOUT_S",
    "Counters",
    "InMemoryBackend",
    "MemoryBackend",
    "MemoryKind",
    "MemoryUnavailableError",
    "RollbackFailedError",
    "open_checkpointer",
    "open_memory",
    "session_thread",
]


@asynccontextmanager
async def open_memory(
    kind: MemoryKind,
    path: Path | None = None,
    *,
    redis_url: str | None = None,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
    ttl_s: int | None = None,
    max_turns: int = 50,
    lease_ms: int = DEFAULT_LEASE_MS,
) -> AsyncIterator[MemoryBackend]:
    """SQLite at `path` (the embedded default), Redis at `redis_url`, or in-memory for tests.

    `redis_prefix` namespaces every key, so several deployments (or test runs) can share
    one Redis; `ttl_s` is the sliding expiry of an idle session (None or 0: never);
    `max_turns` bounds each session's turn log; `lease_ms` is how long a session's lock
    outlives a replica that died holding it (Redis; one process needs no lease).
    """
    ttl = ttl_s or None
    if kind == "memory":
        yield InMemoryBackend(ttl_s=ttl, max_turns=max_turns)
    elif kind == "redis":
        if not redis_url:
            raise ValueError("the redis backend needs a redis_url")
        async with RedisBackend.open(
            redis_url, prefix=redis_prefix, ttl_s=ttl, max_turns=max_turns, lease_ms=lease_ms
        ) as backend:
            yield backend
    else:
        if path is None:
            raise ValueError("the sqlite backend needs a path")
        async with SqliteBackend.open(path, ttl_s=ttl, max_turns=max_turns) as backend:
            yield backend


@asynccontextmanager
async def open_checkpointer(
    kind: MemoryKind,
    path: Path | None = None,
    *,
    redis_url: str | None = None,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The checkpointer of `open_memory`'s backend alone (the conformance suite's subject)."""
    async with open_memory(kind, path, redis_url=redis_url, redis_prefix=redis_prefix) as memory:
        if isinstance(memory, RedisBackend):  # the saver as the contract has it: every checkpoint kept
            yield RedisCheckpointSaver(memory.client, prefix=redis_prefix)
        else:
            yield memory.checkpointer
