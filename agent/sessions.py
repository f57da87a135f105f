"""The session index: which sessions a tenant has, and each turn's public result.

The checkpointer keeps the conversation the planner sees, in LangGraph's own format; it
cannot list a tenant's sessions or say what each turn answered. This index, kept beside
it in the same backend, can: `GET /v1/sessions` and `GET /v1/sessions/{id}` read it, the
runner writes it after each turn that landed, and deleting a session removes both.

Each turn's trace (agent/tracing.py) is kept here too, beside its session: a failed turn's
trace as well, though the turn itself left nothing behind, since it says why it failed.

Expiry is sliding: a session untouched for `ttl_s` is gone. Redis expires its keys
itself; the embedded stores (SQLite, memory) expire lazily, so `purge_expired` hands the
runner the sessions whose checkpointer threads it must delete too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypedDict

from model.errors import InputError

__all__ = [
    "InMemorySessionStore",
    "SessionInfo",
    "SessionStore",
    "SessionTally",
    "TraceRecord",
    "TurnRecord",
    "session_cutoff",
    "trace_ended_at",
    "validate_session_id",
]

TurnRecord = dict[str, Any]
"""A turn's public result (the runner's TurnResult, no audio) and `at`, when it landed."""

TraceRecord = dict[str, Any]
"""A turn's span tree (agent.tracing.TraceTree), with `started_at` in epoch seconds."""

Clock = Callable[[], float]

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BAD_SESSION_ID = "session id must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def validate_session_id(session_id: str) -> None:
    if not _SESSION_ID.fullmatch(session_id):  # `$` would let a trailing newline through
        raise InputError(BAD_SESSION_ID)


class SessionInfo(TypedDict):
    session_id: str
    created_at: float
    """Seconds since the epoch, like `updated_at`."""
    updated_at: float
    turns: int
    """Turns the session has had (older ones may have been dropped from its turn log)."""


class SessionTally(NamedTuple):
    live: int
    """The tenant's live sessions."""
    found: frozenset[str]
    """The session ids asked about that are among them."""


class SessionStore(Protocol):
    """Where sessions are indexed; SQLite, Redis and in-memory implementations share one contract."""

    async def record_turn(self, tenant: str, session_id: str, record: TurnRecord) -> None:
        """Add a landed turn, bump `updated_at`, and keep only the last `max_turns` records."""
        ...

    async def amend_answer(self, tenant: str, session_id: str, answer: str) -> None:
        """Put `answer` in the last kept turn's record (its answer was cut where the user
        stopped listening); nothing for a session with no turns."""
        ...

    async def list_sessions(self, tenant: str) -> list[SessionInfo]:
        """The tenant's live sessions, most recently updated first."""
        ...

    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None: ...

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        """How many live sessions the tenant has (what its quota counts), without reading them,
        and which of `ids` are among them: one read of the backend, however many ids."""
        ...

    async def turns(self, tenant: str, session_id: str) -> list[TurnRecord]:
        """The kept turn records, oldest first; empty for an unknown session."""
        ...

    async def record_trace(self, tenant: str, session_id: str, trace: TraceRecord) -> None:
        """Keep a turn's trace (landed or failed), and only the last `max_turns` traces."""
        ...

    async def traces(self, tenant: str, session_id: str) -> list[TraceRecord]:
        """The kept traces of the session's turns, oldest first; empty for an unknown or expired session."""
        ...

    async def delete_session(self, tenant: str, session_id: str) -> bool:
        """Forget the session and its traces; False when there was nothing to forget."""
        ...

    async def purge_expired(self) -> list[tuple[str, str]]:
        """Drop expired sessions from the index; the (tenant, session) pairs dropped."""
        ...


def session_cutoff(ttl_s: int | None, now: float) -> float | None:
    """Sessions last updated before this are expired; None when sessions never expire."""
    return now - ttl_s if ttl_s else None


@dataclass
class _Session:
    info: SessionInfo
    records: list[TurnRecord] = field(default_factory=list)


def trace_ended_at(trace: TraceRecord) -> float:
    """When the traced turn ended (epoch seconds): a session's traces expire with its last turn."""
    return float(trace.get("started_at", 0.0)) + float(trace.get("duration_ms", 0.0)) / 1000


def _trace_cutoff_passed(traces: list[TraceRecord], cutoff: float | None) -> bool:
    return cutoff is not None and bool(traces) and trace_ended_at(traces[-1]) < cutoff


class InMemorySessionStore:
    """For tests and the in-memory checkpointer: lost when the process ends."""

    def __init__(self, *, ttl_s: int | None = None, max_turns: int = 50, clock: Clock = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self._clock = clock
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._traces: dict[tuple[str, str], list[TraceRecord]] = {}

    def _live(self, key: tuple[str, str]) -> _Session | None:
        session = self._sessions.get(key)
        cutoff = session_cutoff(self.ttl_s, self._clock())
        if session is not None and cutoff is not None and session.info["updated_at"] < cutoff:
            return None
        return session

    async def record_turn(self, tenant: str, session_id: str, record: TurnRecord) -> None:
        now = self._clock()
        session = self._live((tenant, session_id))
        if session is None:
            info = SessionInfo(session_id=session_id, created_at=now, updated_at=now, turns=0)
            session = self._sessions[(tenant, session_id)] = _Session(info)
        session.info["updated_at"] = now
        session.info["turns"] = int(record.get("turn", session.info["turns"] + 1))
        session.records = [*session.records, dict(record)][-self.max_turns :]

    async def list_sessions(self, tenant: str) -> list[SessionInfo]:
        found = [
            SessionInfo(**s.info) for (t, sid), s in self._sessions.items() if t == tenant and self._live((t, sid))
        ]
        return sorted(found, key=lambda info: info["updated_at"], reverse=True)

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        live = {sid for t, sid in list(self._sessions) if t == tenant and self._live((t, sid))}
        return SessionTally(len(live), frozenset(live.intersection(ids)))

    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None:
        session = self._live((tenant, session_id))
        return SessionInfo(**session.info) if session else None

    async def amend_answer(self, tenant: str, session_id: str, answer: str) -> None:
        session = self._live((tenant, session_id))
        if session and session.records:
            session.records[-1] = {**session.records[-1], "answer": answer}

    async def turns(self, tenant: str, session_id: str) -> list[TurnRecord]:
        session = self._live((tenant, session_id))
        return [dict(r) for r in session.records] if session else []

    async def record_trace(self, tenant: str, session_id: str, trace: TraceRecord) -> None:
        key = (tenant, session_id)
        self._traces[key] = [*self._traces.get(key, []), dict(trace)][-self.max_turns :]

    async def traces(self, tenant: str, session_id: str) -> list[TraceRecord]:
        found = self._traces.get((tenant, session_id), [])
        if _trace_cutoff_passed(found, session_cutoff(self.ttl_s, self._clock())):
            return []
        return [dict(t) for t in found]

    async def delete_session(self, tenant: str, session_id: str) -> bool:
        live = self._live((tenant, session_id)) is not None
        self._sessions.pop((tenant, session_id), None)
        traced = bool(self._traces.pop((tenant, session_id), None))
        return live or traced

    async def purge_expired(self) -> list[tuple[str, str]]:
        expired = [key for key in self._sessions if self._live(key) is None]
        for key in expired:
            del self._sessions[key]
        cutoff = session_cutoff(self.ttl_s, self._clock())
        for key in [k for k, found in self._traces.items() if _trace_cutoff_passed(found, cutoff)]:
            del self._traces[key]
        return expired
