"""What tenants register at run time (HTTP tools, MCP servers, voices), kept where every replica sees it.

Declared here, in the lowest layer that keeps tenant data, so the voice library and the
tool sources above it share one contract; the memory backends (agent/memory/) implement
it beside the sessions: Redis in production, SQLite embedded, in-memory for tests. A
registration is an opaque value under (tenant, kind, name); its owner decides the format.

The voice library is synchronous (Chroma, the synthesizer and the speaker encoder all
block, so it runs in worker threads): it sees the registrations through `BlockingRegistrations`,
which runs each call on the event loop that owns the backend's client and waits for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["BlockingRegistrations", "LocalRegistrations", "Registrations", "SyncRegistrations"]

_T = TypeVar("_T")

ON_THE_LOOP = "BlockingRegistrations was called on its own event loop's thread, where it would wait for itself"
DEFAULT_WAIT_S = 10.0
"""Longer than the Redis socket timeout: a backend that is down fails the call with its own error first."""


class Registrations(Protocol):
    async def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool:
        """Keep `value`; with `replace` off, keep nothing and return False when the name is taken."""
        ...

    async def get(self, tenant: str, kind: str, name: str) -> bytes | None: ...

    async def list(self, tenant: str, kind: str) -> dict[str, bytes]:
        """The tenant's registrations of this kind, by name."""
        ...

    async def delete(self, tenant: str, kind: str, name: str) -> bool:
        """Forget one; False when there was none of that name."""
        ...

    async def generation(self, tenant: str) -> int:
        """The tenant's generation: `put`, `delete` and `touch` move it, on every replica."""
        ...

    async def touch(self, tenant: str) -> None:
        """Move the tenant's generation: something of its own changed elsewhere (its knowledge)."""
        ...


class SyncRegistrations(Protocol):
    """`Registrations` for code that blocks (the voice library, in worker threads)."""

    def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool: ...

    def get(self, tenant: str, kind: str, name: str) -> bytes | None: ...

    def list(self, tenant: str, kind: str) -> dict[str, bytes]: ...

    def delete(self, tenant: str, kind: str, name: str) -> bool: ...


class BlockingRegistrations:
    """A backend's registrations, called from worker threads: each call runs on `loop` (the
    backend's clients belong to it) and the calling thread waits for the answer. Calling it
    on `loop`'s own thread would wait forever, so that raises RuntimeError instead."""

    def __init__(
        self, registrations: Registrations, loop: asyncio.AbstractEventLoop, *, wait_s: float = DEFAULT_WAIT_S
    ) -> None:
        self._registrations = registrations
        self._loop = loop
        self._wait_s = wait_s

    def _run(self, call: Coroutine[Any, Any, _T]) -> _T:
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: no loop runs here
            here = None
        if here is self._loop:
            call.close()
            raise RuntimeError(ON_THE_LOOP)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(self._wait_s)

    def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool:
        return self._run(self._registrations.put(tenant, kind, name, value, replace=replace))

    def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        return self._run(self._registrations.get(tenant, kind, name))

    def list(self, tenant: str, kind: str) -> dict[str, bytes]:
        return self._run(self._registrations.list(tenant, kind))

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        return self._run(self._registrations.delete(tenant, kind, name))

    def touch(self, tenant: str) -> None:
        self._run(self._registrations.touch(tenant))


class LocalRegistrations:
    """Synchronous registrations of one process (tests, one-off runs): lost when it ends."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], dict[str, bytes]] = {}
        self._lock = threading.Lock()

    def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool:
        with self._lock:
            kept = self._kept.setdefault((tenant, kind), {})
            if not replace and name in kept:
                return False
            kept[name] = bytes(value)
            return True

    def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        with self._lock:
            return self._kept.get((tenant, kind), {}).get(name)

    def list(self, tenant: str, kind: str) -> dict[str, bytes]:
        with self._lock:
            return dict(sorted(self._kept.get((tenant, kind), {}).items()))

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        with self._lock:
            return self._kept.get((tenant, kind), {}).pop(name, None) is not None
