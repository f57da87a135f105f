"""The memory backend: one object per deployment holding everything that outlives a request.

A backend bundles the LangGraph checkpointer (the conversation the planner sees), the
session index (agent/sessions.py), session locks (agent/locks.py), what tenants register
(retrieval/registrations.py), shared counters (the API's rate limits) and the upkeep of
each thread. One module per backend sits beside this one: in_memory (tests), sqlite
(embedded default) and redis (production replicas); `agent.memory.open_memory` is the one
place that picks among them, so nothing else needs to know which one runs.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.locks import SessionLocks
from agent.sessions import SessionStore
from model.errors import VoicegraphError
from retrieval.registrations import Registrations

__all__ = [
    "KEEP_CHECKPOINTS",
    "MEMORY_UNAVAILABLE",
    "Counters",
    "MemoryBackend",
    "MemoryKind",
    "MemoryUnavailableError",
    "RollbackFailedError",
    "session_thread",
]

MemoryKind = Literal["sqlite", "memory", "redis"]

KEEP_CHECKPOINTS = 2
"""Checkpoints kept per thread after a turn: the latest, and the one a failed turn restores."""

MEMORY_UNAVAILABLE = "the session memory is unavailable, so nothing was remembered; try again shortly ({error})"


class MemoryUnavailableError(VoicegraphError):
    """The configured session memory cannot be reached, so no turn could be remembered."""


class RollbackFailedError(MemoryUnavailableError):
    """A failed turn could not be undone: its session may keep part of it until it is read or deleted."""


class Counters(Protocol):
    """Counters that expire, for fixed-window rate limits; shared by the replicas when the backend is."""

    async def increment(self, key: str, ttl_s: int) -> int:
        """Add one to `key` (made with a lifetime of `ttl_s` when new) and return its count.

        MemoryUnavailableError when the backend cannot be reached."""
        ...

    async def get(self, key: str) -> int:
        """`key`'s count without adding to it; 0 when it was never counted or has expired.

        MemoryUnavailableError when the backend cannot be reached."""
        ...


class MemoryBackend(ABC):
    """Everything a session and a tenant's registrations are kept in, on one backend."""

    kind: ClassVar[MemoryKind]
    shared: ClassVar[bool] = False
    """Whether other processes see what this one keeps (replicas behind a load balancer)."""
    unavailable: ClassVar[tuple[type[BaseException], ...]] = ()
    """The backend's own errors that mean it cannot be reached or written: turns fail with
    MemoryUnavailableError instead of a 500."""

    def __init__(
        self,
        checkpointer: BaseCheckpointSaver[Any],
        sessions: SessionStore,
        locks: SessionLocks,
        registrations: Registrations,
        counters: Counters,
    ) -> None:
        self.checkpointer = checkpointer
        self.sessions = sessions
        self.locks = locks
        self.registrations = registrations
        self.counters = counters

    def unavailable_error(self, error: BaseException) -> MemoryUnavailableError | None:
        """`error` as MemoryUnavailableError when it is this backend failing; None otherwise."""
        if isinstance(error, MemoryUnavailableError):
            return error
        if isinstance(error, self.unavailable):
            return MemoryUnavailableError(MEMORY_UNAVAILABLE.format(error=type(error).__name__))
        return None

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """A backend that is down or times out means no session can be read or kept: say so, typed."""
        try:
            yield
        except self.unavailable as error:
            raise MemoryUnavailableError(MEMORY_UNAVAILABLE.format(error=type(error).__name__)) from error

    @abstractmethod
    async def ping(self) -> None:
        """Return once the backend answers; MemoryUnavailableError within a few seconds if not.

        For readiness (GET /readyz): a replica whose shared memory is gone should get no
        traffic. The message names no host, since a readiness probe answers without a key.
        """

    @abstractmethod
    async def upkeep(self, thread_id: str) -> None:
        """After a turn landed: drop the thread's older checkpoints and refresh its expiry."""

    async def forget_expired(self) -> None:
        """Drop the threads of sessions idle past their TTL (the embedded backends expire lazily)."""
        for tenant, session_id in await self.sessions.purge_expired():
            await self.checkpointer.adelete_thread(session_thread(tenant, session_id))


def session_thread(tenant: str, session_id: str) -> str:
    """The checkpointer thread of a tenant's session."""
    return f"{tenant}:{session_id}"
