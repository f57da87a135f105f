"""The session service: what a client reads and deletes of its sessions, past the turns themselves.

The turn runner (agent/runner.py) writes sessions; this reads them (list, get, traces),
deletes them (thread and index together, under the session's lock, so a running turn is
not cut in half) and lets the embedded backends expire idle ones. Both go through the
memory backend (agent/memory/) alone.
"""

from __future__ import annotations

from collections.abc import Collection

from agent.memory import MemoryBackend, session_thread
from agent.sessions import SessionInfo, SessionTally, TurnRecord, validate_session_id
from agent.tracing import TraceTree

__all__ = ["SessionService"]


class SessionService:
    def __init__(self, memory: MemoryBackend) -> None:
        self.memory = memory

    async def list_sessions(self, tenant: str) -> list[SessionInfo]:
        with self.memory.errors():
            await self.memory.forget_expired()
            return await self.memory.sessions.list_sessions(tenant)

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        """How many live sessions the tenant has, and which of `ids` are among them (one read)."""
        with self.memory.errors():
            await self.memory.forget_expired()
            return await self.memory.sessions.tally(tenant, ids)

    async def is_session(self, tenant: str, session_id: str) -> bool:
        """Whether the tenant has this (live) session, its turns unread."""
        with self.memory.errors():
            return await self.memory.sessions.get_session(tenant, session_id) is not None

    async def get_session(self, tenant: str, session_id: str) -> tuple[SessionInfo, list[TurnRecord]] | None:
        """The session and its kept turns; None when the tenant has no such (live) session."""
        validate_session_id(session_id)
        with self.memory.errors():
            await self.memory.forget_expired()
            info = await self.memory.sessions.get_session(tenant, session_id)
            return (info, await self.memory.sessions.turns(tenant, session_id)) if info else None

    async def delete_session(self, tenant: str, session_id: str) -> bool:
        """Forget the session's thread and index; False when there was nothing to forget."""
        validate_session_id(session_id)
        thread_id = session_thread(tenant, session_id)
        checkpointer = self.memory.checkpointer
        with self.memory.errors():
            async with self.memory.locks.hold(thread_id):
                config = {"configurable": {"thread_id": thread_id}}
                had_thread = (await checkpointer.aget_tuple(config)) is not None  # type: ignore[arg-type]
                indexed = await self.memory.sessions.delete_session(tenant, session_id)
                await checkpointer.adelete_thread(thread_id)
        return had_thread or indexed

    async def traces(self, tenant: str, session_id: str) -> list[TraceTree] | None:
        """Every kept turn's span tree, oldest first; None when the tenant has no such session."""
        validate_session_id(session_id)
        with self.memory.errors():
            await self.memory.forget_expired()
            found = await self.memory.sessions.traces(tenant, session_id)
            if found or await self.memory.sessions.get_session(tenant, session_id):
                return found
            return None
