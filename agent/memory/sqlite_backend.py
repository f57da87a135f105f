"""The SQLite backend (the embedded default): one file holds the threads, the index and the registrations.

The file is the owner's alone (0600): registrations hold secrets (the header values of
tenants' HTTP tools and MCP servers), and SQLite gives its journal files the same mode.

Everything shares the checkpointer's connection and lock: two connections to one SQLite
file would make each other wait on its write lock. Locks and rate-limit counters are the
process's own, since one process owns the file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.locks import LocalSessionLocks
from agent.memory.base import KEEP_CHECKPOINTS, MemoryBackend, MemoryKind
from agent.memory.in_memory import LocalCounters
from agent.sessions_sqlite import SqliteSessionStore

__all__ = ["SqliteBackend", "SqliteRegistrations"]

_REGISTRATIONS = """
CREATE TABLE IF NOT EXISTS voicegraph_registrations (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (tenant, kind, name)
)
"""
_GENERATIONS = """
CREATE TABLE IF NOT EXISTS voicegraph_generations (tenant TEXT PRIMARY KEY, generation INTEGER NOT NULL)
"""
_TOUCH = """
INSERT INTO voicegraph_generations VALUES (?, 1) ON CONFLICT (tenant) DO UPDATE SET generation = generation + 1
"""

# LangGraph's SQLite saver has no public way to drop a thread's older checkpoints (its
# `aprune` is not implemented), so this runs on its tables: `checkpoints` and `writes`,
# keyed by thread, namespace and checkpoint id, as in langgraph-checkpoint-sqlite 3.x.
_PRUNE = """
DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = '' AND checkpoint_id NOT IN (
    SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''
    ORDER BY checkpoint_id DESC LIMIT ?
)
"""


class SqliteRegistrations:
    def __init__(self, conn: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self.conn = conn
        self.lock = lock

    async def setup(self) -> None:
        async with self.lock:
            await self.conn.execute(_REGISTRATIONS)
            await self.conn.execute(_GENERATIONS)
            await self.conn.commit()

    async def put(self, tenant: str, kind: str, name: str, value: bytes, *, replace: bool = True) -> bool:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        async with self.lock:
            cursor = await self.conn.execute(
                f"{verb} INTO voicegraph_registrations VALUES (?, ?, ?, ?)", (tenant, kind, name, value)
            )
            changed = cursor.rowcount > 0
            await self._commit(tenant, changed)
        return changed

    async def get(self, tenant: str, kind: str, name: str) -> bytes | None:
        async with (
            self.lock,
            self.conn.execute(
                "SELECT value FROM voicegraph_registrations WHERE tenant = ? AND kind = ? AND name = ?",
                (tenant, kind, name),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])

    async def list(self, tenant: str, kind: str) -> dict[str, bytes]:
        async with (
            self.lock,
            self.conn.execute(
                "SELECT name, value FROM voicegraph_registrations WHERE tenant = ? AND kind = ? ORDER BY name",
                (tenant, kind),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return {str(name): bytes(value) for name, value in rows}

    async def delete(self, tenant: str, kind: str, name: str) -> bool:
        async with self.lock:
            cursor = await self.conn.execute(
                "DELETE FROM voicegraph_registrations WHERE tenant = ? AND kind = ? AND name = ?",
                (tenant, kind, name),
            )
            changed = cursor.rowcount > 0
            await self._commit(tenant, changed)
        return changed

    async def _commit(self, tenant: str, changed: bool) -> None:
        """Commit a change with its generation moved, in one transaction."""
        if changed:
            await self.conn.execute(_TOUCH, (tenant,))
        await self.conn.commit()

    async def generation(self, tenant: str) -> int:
        async with (
            self.lock,
            self.conn.execute("SELECT generation FROM voicegraph_generations WHERE tenant = ?", (tenant,)) as cursor,
        ):
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def touch(self, tenant: str) -> None:
        async with self.lock:
            await self._commit(tenant, True)


class SqliteBackend(MemoryBackend):
    kind: ClassVar[MemoryKind] = "sqlite"
    unavailable: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)

    def __init__(self, saver: AsyncSqliteSaver, *, ttl_s: int | None = None, max_turns: int = 50) -> None:
        self._conn, self._lock = saver.conn, saver.lock
        self._registrations = SqliteRegistrations(saver.conn, saver.lock)
        super().__init__(
            saver,
            SqliteSessionStore(saver.conn, saver.lock, ttl_s=ttl_s, max_turns=max_turns),
            LocalSessionLocks(),
            self._registrations,
            LocalCounters(),
        )

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, *, ttl_s: int | None = None, max_turns: int = 50) -> AsyncIterator[SqliteBackend]:
        await asyncio.to_thread(_private_file, path)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()
            backend = cls(saver, ttl_s=ttl_s, max_turns=max_turns)
            await backend._registrations.setup()
            yield backend

    async def ping(self) -> None:
        """Always ready: the file is opened by this process, so there is no server to lose."""

    async def upkeep(self, thread_id: str) -> None:
        """Drop all but the newest checkpoints of the thread: each holds the whole conversation."""
        async with self._lock:
            for table in ("writes", "checkpoints"):  # writes first: they are found by the checkpoints kept
                await self._conn.execute(_PRUNE.format(table=table), (thread_id, thread_id, KEEP_CHECKPOINTS))
            await self._conn.commit()


def _private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite would use the umask),
    and tighten one an older version created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
