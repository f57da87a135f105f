"""One turn at a time per session: a second turn sent while one runs is refused, not queued.

Refusing (HTTP 409) rather than queueing is deliberate for a voice agent: a client that
talks over its own unanswered turn should hear the first answer before the next question
is heard, and a queued turn would be answered against a history the caller has not seen.
Across replicas the lock is a Redis key (SET NX PX with a random token, renewed while the
turn runs, released by compare-and-delete), so a crashed replica frees it within a lease.
A renewal that finds the lease gone (it ran out while this replica was stalled, and
another may hold the session now) cancels the block: the turn ends with
SessionLeaseLostError instead of landing on a session it no longer owns.
In one process, an asyncio lock gives the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import weakref
from collections.abc import AsyncIterator
from typing import Protocol

import anyio
import redis.asyncio as aioredis

from model.errors import VoicegraphError

__all__ = ["LocalSessionLocks", "RedisSessionLocks", "SessionBusyError", "SessionLeaseLostError", "SessionLocks"]

SESSION_BUSY = "session {session!r} is already running a turn; send the next one once it has answered"
LEASE_LOST = (
    "session {session!r} was let go while its turn ran (its lease ran out), so the turn was dropped; send it again"
)
DEFAULT_LEASE_MS = 30_000

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class SessionBusyError(VoicegraphError):
    """Another turn of this session is running (here or on another replica)."""


class SessionLeaseLostError(VoicegraphError):
    """The session's lease ran out while a turn held it; the turn was stopped and left nothing."""


class SessionLocks(Protocol):
    def hold(self, thread_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the session for the block, or raise SessionBusyError at once."""
        ...


def _busy(thread_id: str) -> SessionBusyError:
    return SessionBusyError(SESSION_BUSY.format(session=thread_id.partition(":")[2] or thread_id))


class LocalSessionLocks:
    """For one process (the embedded default): the replicas of a Redis deployment use RedisSessionLocks."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        if lock.locked():
            raise _busy(thread_id)
        async with lock:
            yield


class RedisSessionLocks:
    """A lease per session in Redis; renewed every third of `lease_ms` while the turn runs."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, lease_ms: int = DEFAULT_LEASE_MS) -> None:
        self.client = client
        self.prefix = prefix
        self.lease_ms = lease_ms

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        key = f"{self.prefix}:lock:{thread_id}"
        token = secrets.token_hex(16)
        if not await self.client.set(key, token, nx=True, px=self.lease_ms):
            raise _busy(thread_id)
        holder = asyncio.current_task()
        lost = asyncio.Event()
        renewer = asyncio.create_task(self._renew(key, token, holder, lost))
        try:
            yield
        except asyncio.CancelledError:
            if not lost.is_set() or holder is None:
                raise
            holder.uncancel()  # our own cancellation, not the caller's: say why instead
            raise SessionLeaseLostError(LEASE_LOST.format(session=thread_id.partition(":")[2] or thread_id)) from None
        finally:
            renewer.cancel()
            with anyio.CancelScope(shield=True):  # a cancelled turn (its client left) still lets go
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                with contextlib.suppress(Exception):  # Redis gone: the lease expires by itself
                    await self.client.eval(_RELEASE, 1, key, token)

    async def _renew(self, key: str, token: str, holder: asyncio.Task[object] | None, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                renewed = await self.client.eval(_RENEW, 1, key, token, self.lease_ms)
            except Exception:  # a missed renewal is retried; the lease outlasts two
                continue
            if not renewed:
                lost.set()
                if holder is not None:
                    holder.cancel()
                return
