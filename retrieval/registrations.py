"""What tenants register at run time (HTTP tools, MCP servers, voices), kept where every replica sees it.

Declared here, in the lowest layer that keeps tenant data, so the voice library and the
tool sources above it share one contract; the memory backends (agent/memory/) implement
it beside the sessions: Redis in production, SQLite embedded, in-memory for tests. A
registration is an opaque value under (tenant, kind, name); its owner decides the format.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Registrations"]


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
