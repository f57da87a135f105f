"""Per-tenant quotas: how much one tenant may keep (sessions, knowledge, tools, voices).

The service is shared, so one tenant must not be able to fill the disk, Chroma or Redis
that the others use, nor make every turn slower by registering hundreds of tools. Each
quota is a setting (`VOICEGRAPH_QUOTA_*`); a request that would go past one answers 429,
naming the quota and its setting, before anything is written.

A count read and then written would let requests racing each other all pass a quota by
reading the same count. So a tenant's check and its write are one step: `Quotas.adding`
holds the tenant's hold for that kind (the memory backend's locks, so on Redis it holds
across replicas) from the count to the write, and requests behind it wait their turn. A
session is written only when its first turn lands, which may take a while: a new session
is reserved instead, in this process, from the check until its first turn ends, and
counted with the tenant's sessions meanwhile (replicas each keep their own reservations).
New sessions are counted together: those that arrive while the tenant's sessions are being
counted wait, and are all counted in the next hold, with one read of the backend. Counted
one by one, a burst of new sessions (clients coming back after a restart) queued behind the
hold, each behind every other.
One request adding documents may still pass the documents and chunks quotas by what it
brings (at most VOICEGRAPH_MAX_DOCUMENTS_BYTES).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from agent.locks import LocalSessionLocks, SessionBusyError, SessionLocks
from agent.session_service import SessionService
from api.settings import Settings
from model.errors import VoicegraphError

__all__ = ["QuotaBusyError", "QuotaExceededError", "Quotas", "require_room"]

REACHED = "quota reached: this tenant has {count} {what}, the most it may keep ({setting}); delete some first"
BUSY = "other requests of this tenant are adding {what}; try again in a moment"
WAIT_S = 60.0
"""How long a request waits for the tenant's other requests adding the same kind (a large upload ingests)."""
RESERVED_S = 600.0
"""A new session's reservation lapses after this, should its turn never say it ended."""
_POLL_S = 0.02


class QuotaExceededError(VoicegraphError):
    """Adding this would take the tenant past one of its quotas (HTTP 429)."""


class QuotaBusyError(QuotaExceededError):
    """The tenant's other requests held the quota's count past `WAIT_S` (HTTP 429 too)."""


def require_room(count: int, limit: int, what: str, setting: str) -> None:
    """QuotaExceededError unless one more `what` fits under `limit` (`setting` names it)."""
    if count >= limit:
        raise QuotaExceededError(REACHED.format(count=count, what=what, setting=f"VOICEGRAPH_{setting.upper()}"))


@dataclass
class _Waiting:
    """A new session waiting to be counted: told its reservation's time, None if it began meanwhile."""

    session_id: str
    admitted: asyncio.Future[float | None]

    def reservation(self) -> float | None:
        """The time of the reservation made for it, if one was."""
        admitted = self.admitted
        if admitted.done() and not admitted.cancelled() and admitted.exception() is None:
            return admitted.result()
        return None


class Quotas:
    """Makes each quota's check and the write it allows one step per tenant."""

    def __init__(self, locks: SessionLocks | None = None, *, wait_s: float = WAIT_S) -> None:
        self.locks = locks or LocalSessionLocks()
        self.wait_s = wait_s
        self._starting: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self._local: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        """Per tenant and kind, in this process: what waits here polls no one."""
        self._waiting: defaultdict[str, list[_Waiting]] = defaultdict(list)
        """Per tenant, the new sessions waiting to be counted."""
        self._counting: dict[str, asyncio.Task[None]] = {}
        """Per tenant, the task counting them."""

    @contextlib.asynccontextmanager
    async def adding(self, tenant: str, what: str) -> AsyncIterator[None]:
        """Hold the tenant's count of `what` for the block: check the quota and write inside it."""
        deadline = time.monotonic() + self.wait_s
        local = self._local[(tenant, what)]
        try:  # this process's requests queue here, so only one of them at a time asks the backend
            await asyncio.wait_for(local.acquire(), self.wait_s)
        except TimeoutError:
            raise QuotaBusyError(BUSY.format(what=what)) from None
        async with contextlib.AsyncExitStack() as held:
            held.callback(local.release)
            while True:
                try:  # '#' is in no session id, so this never holds a session's own lock
                    await held.enter_async_context(self.locks.hold(f"{tenant}:#quota:{what}"))
                    break
                except SessionBusyError:
                    if time.monotonic() > deadline:
                        raise QuotaBusyError(BUSY.format(what=what)) from None
                    await asyncio.sleep(_POLL_S)
            yield

    async def reserve_session(
        self, sessions: SessionService, settings: Settings, tenant: str, session_id: str
    ) -> Callable[[], None]:
        """Room for a turn of `session_id`: a session the tenant has goes on, a new one needs room
        under the quota and is reserved until the returned function is called (its turn ended).

        A session the tenant has is counted already: its turn goes on without the tenant's
        hold, which only new sessions wait for (every turn behind one hold, each turn of 200
        sessions at once on two replicas waited its turn for it)."""
        if await self._counted(sessions, tenant, session_id):
            return lambda: None
        waiting = _Waiting(session_id, asyncio.get_running_loop().create_future())
        self._waiting[tenant].append(waiting)
        if tenant not in self._counting:
            self._counting[tenant] = asyncio.create_task(self._count_new(sessions, settings, tenant))
        try:
            since = await waiting.admitted
        except asyncio.CancelledError:  # its caller left: a reservation made meanwhile is let go
            if (reserved := waiting.reservation()) is not None:
                self._release(tenant, session_id, reserved)
            raise
        if since is None:  # begun meanwhile
            return lambda: None
        return lambda: self._release(tenant, session_id, since)

    async def _count_new(self, sessions: SessionService, settings: Settings, tenant: str) -> None:
        """Count the tenant's waiting new sessions, all at once, until none wait."""
        try:
            while batch := self._waiting.pop(tenant, []):
                try:
                    async with self.adding(tenant, "sessions"):
                        await self._admit(sessions, settings, tenant, batch)
                except Exception as error:  # QuotaBusyError, the backend down: each waiting turn says so
                    for waiting in batch:
                        if not waiting.admitted.done():
                            waiting.admitted.set_exception(error)
        finally:
            del self._counting[tenant]

    async def _admit(self, sessions: SessionService, settings: Settings, tenant: str, batch: list[_Waiting]) -> None:
        now = time.monotonic()
        starting = self._starting[tenant]
        for stale in [sid for sid, since in starting.items() if now - since > RESERVED_S]:
            del starting[stale]
        # Turns end while this awaits, each taking its reservation out: read a copy, and write
        # into the tenant's reservations as they are then.
        reserved = list(starting)
        tally = await sessions.tally(tenant, [*(waiting.session_id for waiting in batch), *reserved])
        count = tally.live + sum(1 for sid in reserved if sid not in tally.found)
        for waiting in batch:
            sid = waiting.session_id
            if waiting.admitted.done():  # its caller left
                continue
            if sid in tally.found or sid in self._starting[tenant]:  # begun meanwhile, there or here
                waiting.admitted.set_result(None)
                continue
            try:
                require_room(count, settings.quota_sessions, "sessions", "quota_sessions")
            except QuotaExceededError as full:
                waiting.admitted.set_exception(full)
                continue
            self._starting[tenant][sid] = now
            count += 1
            waiting.admitted.set_result(now)

    async def _counted(self, sessions: SessionService, tenant: str, session_id: str) -> bool:
        """Whether the session counts already: written, or reserved by this process."""
        return session_id in self._starting.get(tenant, {}) or await sessions.is_session(tenant, session_id)

    def _release(self, tenant: str, session_id: str, since: float) -> None:
        starting = self._starting.get(tenant, {})
        if starting.get(session_id) == since:
            del starting[session_id]
        if not starting:
            self._starting.pop(tenant, None)
