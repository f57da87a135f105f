"""The session index in the SQLite file the checkpointer uses (the embedded default).

It shares the checkpointer's connection and lock: two connections to one SQLite file would
make each other wait on its write lock, and one file keeps a session's parts together.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from typing import Any

import aiosqlite

from agent.sessions import (
    Clock,
    SessionInfo,
    SessionTally,
    TraceRecord,
    TurnRecord,
    session_cutoff,
    trace_ended_at,
)

__all__ = ["SqliteSessionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS voicegraph_sessions (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    turns INTEGER NOT NULL,
    PRIMARY KEY (tenant, session_id)
);
CREATE INDEX IF NOT EXISTS voicegraph_sessions_updated ON voicegraph_sessions (updated_at);
CREATE TABLE IF NOT EXISTS voicegraph_turns (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (tenant, session_id, seq)
);
CREATE TABLE IF NOT EXISTS voicegraph_traces (
    tenant TEXT NOT NULL,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ended_at REAL NOT NULL,
    trace TEXT NOT NULL,
    PRIMARY KEY (tenant, session_id, seq)
);
"""

_STALE_TRACES = """
SELECT tenant, session_id FROM voicegraph_traces GROUP BY tenant, session_id HAVING MAX(ended_at) < ?
"""


def _info(row: Any) -> SessionInfo:
    return SessionInfo(session_id=row[0], created_at=row[1], updated_at=row[2], turns=row[3])


class SqliteSessionStore:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        lock: asyncio.Lock,
        *,
        ttl_s: int | None = None,
        max_turns: int = 50,
        clock: Clock = time.time,
    ) -> None:
        self.conn = conn
        self.lock = lock
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self._clock = clock
        self._ready = False

    async def _setup(self) -> None:
        if not self._ready:
            await self.conn.executescript(_SCHEMA)
            await self.conn.commit()
            self._ready = True

    def _cutoff(self) -> float:
        return session_cutoff(self.ttl_s, self._clock()) or float("-inf")

    async def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        async with self.lock:
            await self._setup()
            async with self.conn.execute(sql, args) as cursor:
                return list(await cursor.fetchall())

    async def record_turn(self, tenant: str, session_id: str, record: TurnRecord) -> None:
        now = self._clock()
        key = (tenant, session_id)
        async with self.lock:
            await self._setup()
            # An expired session that was not purged yet starts over rather than coming back.
            await self.conn.execute(
                "DELETE FROM voicegraph_sessions WHERE tenant = ? AND session_id = ? AND updated_at < ?",
                (*key, self._cutoff()),
            )
            await self.conn.execute(
                "INSERT INTO voicegraph_sessions VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, session_id) "
                "DO UPDATE SET updated_at = excluded.updated_at, turns = excluded.turns",
                (*key, now, now, int(record.get("turn", 0))),
            )
            await self._append("voicegraph_turns", key, json.dumps(record))
            await self.conn.commit()

    async def amend_answer(self, tenant: str, session_id: str, answer: str) -> None:
        async with self.lock:
            await self._setup()
            select = "SELECT seq, record FROM voicegraph_turns WHERE tenant = ? AND session_id = ? ORDER BY seq DESC"
            async with self.conn.execute(select + " LIMIT 1", (tenant, session_id)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return
            record = {**json.loads(row[1]), "answer": answer}
            await self.conn.execute(
                "UPDATE voicegraph_turns SET record = ? WHERE tenant = ? AND session_id = ? AND seq = ?",
                (json.dumps(record), tenant, session_id, row[0]),
            )
            await self.conn.commit()

    async def _append(self, table: str, key: tuple[str, str], *values: Any) -> None:
        """Add a row after the session's last in `table`, keeping only its last `max_turns` rows."""
        marks = ", ".join("?" * len(values))
        await self.conn.execute(
            f"INSERT INTO {table} VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM {table} "
            f"WHERE tenant = ? AND session_id = ?), {marks})",
            (*key, *key, *values),
        )
        await self.conn.execute(
            f"DELETE FROM {table} WHERE tenant = ? AND session_id = ? AND seq <= "
            f"(SELECT MAX(seq) FROM {table} WHERE tenant = ? AND session_id = ?) - ?",
            (*key, *key, self.max_turns),
        )

    async def list_sessions(self, tenant: str) -> list[SessionInfo]:
        rows = await self._rows(
            "SELECT session_id, created_at, updated_at, turns FROM voicegraph_sessions "
            "WHERE tenant = ? AND updated_at >= ? ORDER BY updated_at DESC",
            (tenant, self._cutoff()),
        )
        return [_info(r) for r in rows]

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        live = "FROM voicegraph_sessions WHERE tenant = ? AND updated_at >= ?"
        rows = await self._rows(
            f"SELECT COUNT(*), NULL {live} UNION ALL "
            f"SELECT NULL, session_id {live} AND session_id IN (SELECT value FROM json_each(?))",
            (tenant, cutoff := self._cutoff(), tenant, cutoff, json.dumps(list(ids))),
        )
        return SessionTally(int(rows[0][0]), frozenset(row[1] for row in rows[1:]))

    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None:
        rows = await self._rows(
            "SELECT session_id, created_at, updated_at, turns FROM voicegraph_sessions "
            "WHERE tenant = ? AND session_id = ? AND updated_at >= ?",
            (tenant, session_id, self._cutoff()),
        )
        return _info(rows[0]) if rows else None

    async def turns(self, tenant: str, session_id: str) -> list[TurnRecord]:
        if await self.get_session(tenant, session_id) is None:
            return []
        rows = await self._rows(
            "SELECT record FROM voicegraph_turns WHERE tenant = ? AND session_id = ? ORDER BY seq",
            (tenant, session_id),
        )
        return [json.loads(r[0]) for r in rows]

    async def record_trace(self, tenant: str, session_id: str, trace: TraceRecord) -> None:
        async with self.lock:
            await self._setup()
            await self._append("voicegraph_traces", (tenant, session_id), trace_ended_at(trace), json.dumps(trace))
            await self.conn.commit()

    async def traces(self, tenant: str, session_id: str) -> list[TraceRecord]:
        rows = await self._rows(
            "SELECT trace, ended_at FROM voicegraph_traces WHERE tenant = ? AND session_id = ? ORDER BY seq",
            (tenant, session_id),
        )
        if rows and rows[-1][1] < self._cutoff():
            return []
        return [json.loads(r[0]) for r in rows]

    async def delete_session(self, tenant: str, session_id: str) -> bool:
        live = await self.get_session(tenant, session_id) is not None
        async with self.lock:
            key = (tenant, session_id)
            for table in ("voicegraph_sessions", "voicegraph_turns"):
                await self.conn.execute(f"DELETE FROM {table} WHERE tenant = ? AND session_id = ?", key)
            cursor = await self.conn.execute("DELETE FROM voicegraph_traces WHERE tenant = ? AND session_id = ?", key)
            traced = cursor.rowcount > 0  # a session whose turns all failed has only traces
            await self.conn.commit()
        return live or traced

    async def purge_expired(self) -> list[tuple[str, str]]:
        if not self.ttl_s:
            return []
        expired = [
            (r[0], r[1])
            for r in await self._rows(
                "SELECT tenant, session_id FROM voicegraph_sessions WHERE updated_at < ?", (self._cutoff(),)
            )
        ]
        for tenant, session_id in expired:
            await self.delete_session(tenant, session_id)
        for tenant, session_id in await self._rows(_STALE_TRACES, (self._cutoff(),)):
            await self.delete_session(tenant, session_id)  # the traces of turns that never landed
        return expired
