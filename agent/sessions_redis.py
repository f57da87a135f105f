"""The session index on Redis.

Keys (beside the checkpointer's `{prefix}:ckpt...:`, agent/memory/redis_saver.py):

    {prefix}:sessions:{tenant}              the tenant's session ids, scored by updated_at (sorted set)
    {prefix}:session:{tenant}:{session}     created_at, updated_at, turns (hash)
    {prefix}:turns:{tenant}:{session}       the turn records, oldest first, JSON (list)
    {prefix}:traces:{tenant}:{session}      the turns' span trees, oldest first, JSON (list)

Expiry is sliding and Redis's own: every turn sets a fresh TTL on the session's keys, and
the checkpointer on every key of the session's thread as it writes the turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

import redis.asyncio as aioredis

from agent.sessions import Clock, SessionInfo, SessionTally, TraceRecord, TurnRecord, session_cutoff

__all__ = ["RedisSessionStore", "redis_text"]


def redis_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisSessionStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        ttl_s: int | None = None,
        max_turns: int = 50,
        clock: Clock = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self._clock = clock

    def _index(self, tenant: str) -> str:
        return f"{self.prefix}:sessions:{tenant}"

    def _info(self, tenant: str, session_id: str) -> str:
        return f"{self.prefix}:session:{tenant}:{session_id}"

    def _turns(self, tenant: str, session_id: str) -> str:
        return f"{self.prefix}:turns:{tenant}:{session_id}"

    def _traces(self, tenant: str, session_id: str) -> str:
        return f"{self.prefix}:traces:{tenant}:{session_id}"

    async def record_turn(self, tenant: str, session_id: str, record: TurnRecord) -> None:
        now = self._clock()
        info, turns, index = self._info(tenant, session_id), self._turns(tenant, session_id), self._index(tenant)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(info, "created_at", now)
            pipe.hset(info, mapping={"updated_at": now, "turns": int(record.get("turn", 0))})
            self._append(pipe, turns, record)
            pipe.zadd(index, {session_id: now})
            if self.ttl_s:
                for key in (info, index):
                    pipe.expire(key, self.ttl_s)
            await pipe.execute()

    def _append(self, pipe: Any, key: str, record: dict[str, Any]) -> None:
        """Add a JSON record to a capped list whose expiry slides with the session."""
        pipe.rpush(key, json.dumps(record))
        pipe.ltrim(key, -self.max_turns, -1)
        if self.ttl_s:
            pipe.expire(key, self.ttl_s)

    def _forget_expired(self, pipe: Any, index: str) -> None:
        """Take the members of expired sessions out of a tenant's index, in `pipe` (which runs first)."""
        cutoff = session_cutoff(self.ttl_s, self._clock())
        if cutoff is not None:  # members outlive their session's keys: the index key lives while any does
            pipe.zremrangebyscore(index, "-inf", f"({cutoff}")

    async def list_sessions(self, tenant: str) -> list[SessionInfo]:
        index = self._index(tenant)
        async with self.client.pipeline(transaction=False) as pipe:
            self._forget_expired(pipe, index)
            pipe.zrevrange(index, 0, -1)
            *_, members = await pipe.execute()
        ids = [redis_text(m) for m in members]
        async with self.client.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.hgetall(self._info(tenant, session_id))
            found = await pipe.execute()
        return [_parse(sid, raw) for sid, raw in zip(ids, found, strict=True) if raw]

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        index, asked = self._index(tenant), list(ids)
        async with self.client.pipeline(transaction=False) as pipe:
            self._forget_expired(pipe, index)
            pipe.zcard(index)
            if asked:
                pipe.zmscore(index, asked)
            found = await pipe.execute()
        scores = found[-1] if asked else []
        count = found[-2] if asked else found[-1]
        return SessionTally(
            int(count), frozenset(sid for sid, score in zip(asked, scores, strict=True) if score is not None)
        )

    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None:
        raw = await self.client.hgetall(self._info(tenant, session_id))
        return _parse(session_id, raw) if raw else None

    async def amend_answer(self, tenant: str, session_id: str, answer: str) -> None:
        key = self._turns(tenant, session_id)
        last = await self.client.lindex(key, -1)
        if last is not None:  # the session's lock is held: no turn lands meanwhile
            await self.client.lset(key, -1, json.dumps({**json.loads(last), "answer": answer}))

    async def turns(self, tenant: str, session_id: str) -> list[TurnRecord]:
        return [json.loads(r) for r in await self.client.lrange(self._turns(tenant, session_id), 0, -1)]

    async def record_trace(self, tenant: str, session_id: str, trace: TraceRecord) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            self._append(pipe, self._traces(tenant, session_id), trace)
            await pipe.execute()

    async def traces(self, tenant: str, session_id: str) -> list[TraceRecord]:
        return [json.loads(r) for r in await self.client.lrange(self._traces(tenant, session_id), 0, -1)]

    async def delete_session(self, tenant: str, session_id: str) -> bool:
        async with self.client.pipeline(transaction=True) as pipe:
            keys = (self._info(tenant, session_id), self._turns(tenant, session_id), self._traces(tenant, session_id))
            pipe.delete(*keys)
            pipe.zrem(self._index(tenant), session_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def purge_expired(self) -> list[tuple[str, str]]:
        return []  # Redis expires the keys itself; list_sessions drops stale index members


def _parse(session_id: str, raw: dict[Any, Any]) -> SessionInfo:
    fields = {redis_text(k): redis_text(v) for k, v in raw.items()}
    return SessionInfo(
        session_id=session_id,
        created_at=float(fields.get("created_at", fields["updated_at"])),
        updated_at=float(fields["updated_at"]),
        turns=int(fields.get("turns", 0)),
    )
