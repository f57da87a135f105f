"""The in-memory backend, for tests and one-off runs: everything is lost when the process ends.

Its registrations and counters also serve the SQLite backend's counters: rate limits of a
single process need no file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from langgraph.checkpoint.memory import InMemorySaver

from agent.locks import LocalSessionLocks
from agent.memory.base import MemoryBackend, MemoryKind
from agent.sessions import InMemorySessionStore

__all__ = ["InMemoryBackend", "InMemoryRegistrations", "LocalCounters"]


class InMemoryRegistrations:
    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], dict[str, bytes]] = {}
        self._generations: dict[str, int] = {}

    async def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool:
        kept = self._kept.setdefault((tenant, kind), {})
        if not replace and name in kept:
            return False
        kept[name] = bytes(value)
        await self.touch(tenant)
        return True

    async def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        return self._kept.get((tenant, kind), {}).get(name)

    async def list(self, tenant: str, kind: str) -> dict[str, bytes]:
        return dict(self._kept.get((tenant, kind), {}))

    async def delete(self, tenant: str, kind: str, name: str) -> bool:
        if self._kept.get((tenant, kind), {}).pop(name, None) is None:
            return False
        await self.touch(tenant)
        return True

    async def generation(self, tenant: str) -> int:
        return self._generations.get(tenant, 0)

    async def touch(self, tenant: str) -> None:
        self._generations[tenant] = self._generations.get(tenant, 0) + 1


class LocalCounters:
    """Counters of one process; an expired counter starts again from zero."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}

    async def increment(self, key: str, ttl_s: int) -> int:
        now = self._clock()
        if len(self._counts) > 10_000:  # forget the expired ones now and then
            self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        until, count = self._counts.get(key, (0.0, 0))
        if until <= now:
            until, count = now + ttl_s, 0
        self._counts[key] = (until, count + 1)
        return count + 1

    async def get(self, key: str) -> int:
        until, count = self._counts.get(key, (0.0, 0))
        return count if until > self._clock() else 0


class InMemoryBackend(MemoryBackend):
    kind: ClassVar[MemoryKind] = "memory"

    def __init__(self, *, ttl_s: int | None = None, max_turns: int = 50) -> None:
        super().__init__(
            InMemorySaver(),
            InMemorySessionStore(ttl_s=ttl_s, max_turns=max_turns),
            LocalSessionLocks(),
            InMemoryRegistrations(),
            LocalCounters(),
        )

    async def ping(self) -> None:
        """Always ready: the store lives in this process."""

    async def upkeep(self, thread_id: str) -> None:
        """Nothing: the in-memory saver keeps every checkpoint until the process ends."""
