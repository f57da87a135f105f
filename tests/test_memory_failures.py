"""What a turn does when its memory fails under it: typed errors, a rollback that failed is
told, and a lost lease stops the turn (agent/runner.py, agent/locks.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.context import AgentDeps
from agent.locks import RedisSessionLocks, SessionLeaseLostError
from agent.memory import MemoryUnavailableError, RollbackFailedError, open_memory
from agent.runner import TurnRequest, TurnRunner
from model.testing import ScriptedPlanner, call, reply
from tests.redis_server import running_redis
from tools.base import Tool, ToolContext, ToolResult, ToolSpec
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


def _runner(memory: Any, *answers: str) -> TurnRunner:
    planner = ScriptedPlanner([reply(a) for a in answers])
    return TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([])), memory)


def _ask(text: str) -> TurnRequest:
    return TurnRequest("s", text=text, speak=False)


async def _disk_error(*args: Any, **kwargs: Any) -> None:
    raise sqlite3.OperationalError("disk I/O error")


async def test_a_sqlite_failure_is_a_memory_error_and_the_turn_is_undone(tmp_path: Path) -> None:
    async with open_memory("sqlite", tmp_path / "m.sqlite") as memory:
        runner = _runner(memory, "one", "two")
        await runner.run_turn(_ask("first"))
        memory.sessions.record_turn = _disk_error  # type: ignore[method-assign]
        with pytest.raises(MemoryUnavailableError) as caught:
            await runner.run_turn(_ask("second"))
        assert not isinstance(caught.value, RollbackFailedError)
        assert (await runner.history("local", "s")).values["turn"] == 1


async def test_a_rollback_that_fails_is_told_not_only_logged(tmp_path: Path) -> None:
    async with open_memory("sqlite", tmp_path / "m.sqlite") as memory:
        runner = _runner(memory, "one")
        memory.sessions.record_turn = _disk_error  # type: ignore[method-assign]
        memory.checkpointer.adelete_thread = _disk_error  # type: ignore[method-assign]
        with pytest.raises(RollbackFailedError, match="could not be undone") as caught:
            await runner.run_turn(_ask("first"))
        assert "GET /v1/sessions/s" in str(caught.value)


async def test_a_lost_lease_stops_the_block(redis_url: str) -> None:
    async with open_memory("redis", redis_url=redis_url, redis_prefix=f"l-{uuid.uuid4().hex[:8]}") as memory:
        locks = memory.locks
        assert isinstance(locks, RedisSessionLocks)
        locks.lease_ms = 300
        with pytest.raises(SessionLeaseLostError, match="lease ran out"):
            async with locks.hold("local:s"):
                await memory.client.delete(f"{locks.prefix}:lock:local:s")  # type: ignore[attr-defined]
                await asyncio.sleep(5)  # cut short once the renewal finds the lease gone
        async with locks.hold("local:s"):  # and nothing is left held
            pass


async def test_a_turn_whose_lease_is_lost_leaves_nothing(redis_url: str) -> None:
    async with open_memory("redis", redis_url=redis_url, redis_prefix=f"t-{uuid.uuid4().hex[:8]}") as memory:
        locks = memory.locks
        assert isinstance(locks, RedisSessionLocks)
        locks.lease_ms = 300

        async def stall(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
            await memory.client.delete(f"{locks.prefix}:lock:local:s")  # type: ignore[attr-defined]
            await asyncio.sleep(5)  # another replica could take the session meanwhile
            return ToolResult("never")

        tool = Tool(ToolSpec("stall", "Stalls.", {"type": "object", "properties": {}}, timeout_s=30), stall)
        planner = ScriptedPlanner([reply("one"), call("stall"), reply("never")])
        runner = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([tool])), memory)
        await runner.run_turn(_ask("first"))
        with pytest.raises(SessionLeaseLostError):
            await runner.run_turn(_ask("second"))
        assert (await runner.history("local", "s")).values["turn"] == 1
        assert [t["turn"] for t in await memory.sessions.turns("local", "s")] == [1]
