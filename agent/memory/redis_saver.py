"""LangGraph's checkpointer on plain Redis (no modules), made for a turn's few round trips.

A turn reads its thread's latest checkpoint twice (the runner, for where to roll back to, and
the graph) and writes one. Each is one round trip here: a Lua script reads the checkpoint with
its pending writes, another writes it, refreshes the thread's expiry and drops all but its
last `keep` checkpoints. A checkpoint is one value holding its channel values, so writing one
is one command, not one per channel. A thread's keys (T: the thread, N: its namespace):

    {prefix}:ckpt:{T}:{N}         hash: checkpoint id -> the checkpoint, its metadata and parent
    {prefix}:ckpt-order:{T}:{N}   sorted set: the checkpoint ids in the order they were written
    {prefix}:ckpt-writes:{T}:{N}  hash: "{checkpoint id}\\0{task id}\\0{index}" -> a pending write
    {prefix}:ckpt-ns:{T}          set: the thread's namespaces, to delete it whole

The order is the thread's own count, not the ids' clocks: replicas' clocks may disagree.
Only the async methods are implemented: the service runs its graph on an event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)

from agent.sessions_redis import redis_text

__all__ = ["RedisCheckpointSaver"]

_SEP = b"\0"
_NO_THREAD = "the Redis checkpointer lists the checkpoints of one thread at a time: give its thread_id"

# KEYS: checkpoints, order, writes. ARGV: the checkpoint id ("" for the latest).
_READ = """
local id = ARGV[1]
if id == '' then
  id = redis.call('ZREVRANGE', KEYS[2], 0, 0)[1]
  if not id then return false end
end
local found = redis.call('HGET', KEYS[1], id)
if not found then return false end
local writes, prefix = {}, id .. '\\0'
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #prefix) == prefix then
    writes[#writes + 1] = all[i]
    writes[#writes + 1] = all[i + 1]
  end
end
return {id, found, writes}
"""

# KEYS: checkpoints, order, writes, namespaces. ARGV: id, value, namespace, ttl (0: none), keep (0: all).
_WRITE = """
local last = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local n = 1
if last[2] then n = tonumber(last[2]) + 1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], n, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[3])
local keep = tonumber(ARGV[5])
local count = redis.call('ZCARD', KEYS[2])
if keep > 0 and count > keep then
  local old = redis.call('ZRANGE', KEYS[2], 0, count - keep - 1)
  redis.call('ZREM', KEYS[2], unpack(old))
  redis.call('HDEL', KEYS[1], unpack(old))
  local gone = {}
  for _, id in ipairs(old) do gone[id] = true end
  for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
    if gone[string.match(field, '^[^%z]*')] then redis.call('HDEL', KEYS[3], field) end
  end
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return n
"""


class RedisCheckpointSaver(BaseCheckpointSaver[int]):
    """Checkpoints on `client`, each thread keeping its last `keep` (None: all), every key of
    a thread expiring `ttl_s` after its last write (None: never)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, ttl_s: int | None = None, keep: int | None = None):
        super().__init__()
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.keep = keep
        self._read = client.register_script(_READ)
        self._write = client.register_script(_WRITE)

    def _keys(self, thread_id: str, ns: str) -> list[str]:
        return [
            f"{self.prefix}:ckpt:{thread_id}:{ns}",
            f"{self.prefix}:ckpt-order:{thread_id}:{ns}",
            f"{self.prefix}:ckpt-writes:{thread_id}:{ns}",
            self._namespaces(thread_id),
        ]

    def _namespaces(self, thread_id: str) -> str:
        return f"{self.prefix}:ckpt-ns:{thread_id}"

    def _pack(self, value: Any) -> bytes:
        kind, data = self.serde.dumps_typed(value)
        return kind.encode() + _SEP + data

    def _unpack(self, raw: bytes) -> Any:
        kind, _, data = raw.partition(_SEP)
        return self.serde.loads_typed((kind.decode(), data))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        found = await self._read(keys=self._keys(thread_id, ns)[:3], args=[get_checkpoint_id(config) or ""])
        if not found:
            return None
        checkpoint_id, value, writes = found
        return self._tuple(thread_id, ns, redis_text(checkpoint_id), value, writes)

    def _tuple(self, thread_id: str, ns: str, checkpoint_id: str, value: bytes, writes: list[bytes]) -> CheckpointTuple:
        stored = self._unpack(value)
        pending = sorted(
            (_write_order(field), self._unpack(raw)) for field, raw in zip(writes[::2], writes[1::2], strict=True)
        )
        parent = stored["parent"]
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint=stored["checkpoint"],
            metadata=stored["metadata"],
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=[(task_id, channel, value) for (task_id, _), (channel, value) in pending],
        )

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The thread's checkpoints, newest first (of every namespace when none is given)."""
        if config is None:
            raise NotImplementedError(_NO_THREAD)
        thread_id: str = config["configurable"]["thread_id"]
        ns: str | None = config["configurable"].get("checkpoint_ns")
        namespaces = (
            [ns] if ns is not None else sorted(map(redis_text, await self.client.smembers(self._namespaces(thread_id))))
        )
        wanted, older_than = get_checkpoint_id(config), get_checkpoint_id(before) if before else None
        left = limit
        for namespace in namespaces:
            tuples = await self._all(thread_id, namespace)
            if older_than is not None:
                ids = [t.config["configurable"]["checkpoint_id"] for t in tuples]
                tuples = tuples[ids.index(older_than) + 1 :] if older_than in ids else []
            for found in tuples:
                if wanted is not None and found.config["configurable"]["checkpoint_id"] != wanted:
                    continue
                if filter and any(found.metadata.get(k) != v for k, v in filter.items()):
                    continue
                if left is not None and left <= 0:
                    return
                yield found
                left = None if left is None else left - 1

    async def _all(self, thread_id: str, ns: str) -> list[CheckpointTuple]:
        checkpoints, order, writes, _ = self._keys(thread_id, ns)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zrevrange(order, 0, -1)
            pipe.hgetall(checkpoints)
            pipe.hgetall(writes)
            ids, values, all_writes = await pipe.execute()
        out = []
        for raw_id in ids:
            checkpoint_id = redis_text(raw_id)
            value = values.get(raw_id)
            if value is None:
                continue
            prefix = checkpoint_id.encode() + _SEP
            mine = [part for field, raw in all_writes.items() if field.startswith(prefix) for part in (field, raw)]
            out.append(self._tuple(thread_id, ns, checkpoint_id, value, mine))
        return out

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        stored = {
            "checkpoint": checkpoint,
            "metadata": get_checkpoint_metadata(config, metadata),
            "parent": config["configurable"].get("checkpoint_id"),
        }
        args: list[str | bytes | int] = [checkpoint["id"], self._pack(stored), ns, self.ttl_s or 0, self.keep or 0]
        await self._write(keys=self._keys(thread_id, ns), args=args)
        return _config(thread_id, ns, checkpoint["id"])

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Keep a task's writes on its checkpoint; a write kept already stays, but for the
        special channels (errors, interrupts), whose last write wins."""
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        checkpoint_id: str = config["configurable"]["checkpoint_id"]
        key = self._keys(thread_id, ns)[2]
        async with self.client.pipeline(transaction=True) as pipe:
            for index, (channel, value) in enumerate(writes):
                place = WRITES_IDX_MAP.get(channel, index)
                field = _SEP.join((checkpoint_id.encode(), task_id.encode(), str(place).encode()))
                (pipe.hset if place < 0 else pipe.hsetnx)(key, field, self._pack((channel, value)))
            if self.ttl_s:
                pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def adelete_thread(self, thread_id: str) -> None:
        namespaces = await self.client.smembers(self._namespaces(thread_id))
        keys = {key for ns in map(redis_text, namespaces) for key in self._keys(thread_id, ns)}
        await self.client.delete(*keys, self._namespaces(thread_id))


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def _write_order(field: bytes) -> tuple[str, int]:
    _, task_id, place = field.split(_SEP)
    return task_id.decode(), int(place)
