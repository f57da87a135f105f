"""The session index (one contract, every store), its expiry, compaction, and one turn at a time.

Every SessionStore runs the same checks: in memory, in SQLite, and on a private real
redis-server. Expiry runs on an injected clock for the embedded stores and on Redis's
own TTLs for Redis.
"""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from agent.compaction import compact
from agent.context import AgentDeps
from agent.locks import SessionBusyError
from agent.memory import MemoryBackend, MemoryKind, open_memory
from agent.runner import TurnRequest, TurnRunner, validate_session_id
from agent.session_service import SessionService
from agent.sessions import SessionStore
from model.base import Message, ToolCall
from model.errors import InputError
from model.testing import ScriptedPlanner, call, reply
from tests.redis_server import running_redis
from tools.base import Tool, ToolContext, ToolResult, ToolSpec
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

KINDS: list[MemoryKind] = ["memory", "sqlite", "redis"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture(params=KINDS)
async def memory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryBackend]:
    kind: MemoryKind = request.param
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    async with open_memory(kind, tmp_path / "m.sqlite", redis_url=url, redis_prefix=prefix, max_turns=3) as opened:
        yield opened
    if url:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def _record(turn: int, answer: str = "ok") -> dict[str, Any]:
    return {"session_id": "s", "turn": turn, "answer": answer, "at": time.time()}


async def test_every_backend_answers_the_readiness_ping(memory: MemoryBackend) -> None:
    await memory.ping()  # SQLite and in-memory are always ready; Redis answers a PING


async def test_store_records_lists_and_deletes(memory: MemoryBackend) -> None:
    store: SessionStore = memory.sessions
    assert await store.list_sessions("a") == [] and await store.get_session("a", "s1") is None
    await store.record_turn("a", "s1", _record(1))
    await store.record_turn("a", "s2", _record(1))
    await store.record_turn("b", "s1", _record(1, "tenant b"))
    await store.record_turn("a", "s1", _record(2, "second"))
    assert [s["session_id"] for s in await store.list_sessions("a")] == ["s1", "s2"]  # newest first
    assert await store.tally("a") == (2, frozenset()) and (await store.tally("b")).live == 1
    assert await store.tally("a", ["s2", "s3", "s1"]) == (2, {"s1", "s2"})  # which of these it has
    assert await store.tally("b", ["s2", "s3"]) == (1, frozenset())
    info = await store.get_session("a", "s1")
    assert info is not None and info["turns"] == 2 and info["created_at"] <= info["updated_at"]
    assert [r["answer"] for r in await store.turns("a", "s1")] == ["ok", "second"]
    assert [r["answer"] for r in await store.turns("b", "s1")] == ["tenant b"]
    assert await store.delete_session("a", "s1") is True
    assert await store.delete_session("a", "s1") is False
    assert await store.get_session("a", "s1") is None and await store.turns("a", "s1") == []
    assert [s["session_id"] for s in await store.list_sessions("b")] == ["s1"]
    assert await store.tally("a", ["s1", "s2"]) == (1, {"s2"})


async def test_a_tenants_generation_moves_with_each_change_of_its_own(memory: MemoryBackend) -> None:
    registrations = memory.registrations
    seen = [await registrations.generation("a")]
    assert await registrations.generation("a") == seen[-1]  # reading moves nothing
    await registrations.put("a", "voice", "v1", b"{}")
    seen.append(await registrations.generation("a"))
    assert await registrations.put("a", "voice", "v1", b"{}", replace=False) is False
    assert await registrations.get("a", "voice", "v1") == b"{}" and await registrations.list("b", "voice") == {}
    seen.append(await registrations.generation("a"))
    await registrations.touch("a")  # the tenant's knowledge changed
    seen.append(await registrations.generation("a"))
    assert await registrations.delete("a", "voice", "v1") is True
    seen.append(await registrations.generation("a"))
    assert len({seen[0], seen[1], seen[3], seen[4]}) == 4  # each change moved it (a refused put may or may not)
    before = await registrations.generation("b")
    await registrations.put("a", "voice", "v2", b"{}")
    assert await registrations.generation("b") == before  # another tenant's change is not b's


async def test_store_amends_the_last_answer_only(memory: MemoryBackend) -> None:
    store: SessionStore = memory.sessions
    await store.amend_answer("a", "none", "nothing to amend")  # no turns: nothing happens
    await store.record_turn("a", "cut", _record(1, "first answer"))
    await store.record_turn("a", "cut", _record(2, "a long second answer that was cut"))
    await store.amend_answer("a", "cut", "a long second")
    assert [r["answer"] for r in await store.turns("a", "cut")] == ["first answer", "a long second"]
    assert [r["turn"] for r in await store.turns("a", "cut")] == [1, 2]


async def test_store_keeps_only_the_last_turns(memory: MemoryBackend) -> None:
    for turn in range(1, 6):
        await memory.sessions.record_turn("a", "long", _record(turn))
    assert [r["turn"] for r in await memory.sessions.turns("a", "long")] == [3, 4, 5]
    info = await memory.sessions.get_session("a", "long")
    assert info is not None and info["turns"] == 5


def _trace(turn: int, started_at: float | None = None) -> dict[str, Any]:
    return {"trace_id": f"{turn:032x}", "turn": turn, "started_at": started_at or time.time(), "duration_ms": 5.0}


async def test_store_keeps_the_last_traces_beside_the_session(memory: MemoryBackend) -> None:
    store: SessionStore = memory.sessions
    for turn in range(1, 6):
        await store.record_trace("a", "s1", _trace(turn))
    await store.record_trace("b", "s1", _trace(9))
    assert [t["turn"] for t in await store.traces("a", "s1")] == [3, 4, 5]  # max_turns=3
    assert [t["turn"] for t in await store.traces("b", "s1")] == [9]
    assert await store.get_session("a", "s1") is None  # failed turns leave traces, not sessions
    assert await store.delete_session("a", "s1") is True  # ... which deleting forgets
    assert await store.traces("a", "s1") == [] and await store.delete_session("a", "s1") is False
    assert [t["turn"] for t in await store.traces("b", "s1")] == [9]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_embedded_traces_of_a_session_expire_with_it(kind: MemoryKind, tmp_path: Path) -> None:
    clock = Clock()
    async with open_memory(kind, tmp_path / "m.sqlite", ttl_s=60) as memory:
        memory.sessions._clock = clock  # type: ignore[attr-defined]
        await memory.sessions.record_trace("a", "failed-only", _trace(1, clock.now))
        clock.now += 50
        assert len(await memory.sessions.traces("a", "failed-only")) == 1
        clock.now += 20
        assert await memory.sessions.traces("a", "failed-only") == []
        await memory.sessions.purge_expired()
        clock.now -= 70  # nothing comes back: the purge deleted them
        assert await memory.sessions.traces("a", "failed-only") == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_embedded_sessions_expire_lazily_with_their_threads(kind: MemoryKind, tmp_path: Path) -> None:
    clock = Clock()
    async with open_memory(kind, tmp_path / "m.sqlite", ttl_s=60) as memory:
        memory.sessions._clock = clock  # type: ignore[attr-defined]
        planner = ScriptedPlanner([reply("Hi Ada."), reply("Hello again."), reply("Who?")])
        agent = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([])), memory)
        await agent.run_turn(TurnRequest("s", text="My name is Ada.", speak=False))
        clock.now += 50
        second = await agent.run_turn(TurnRequest("s", text="Hello?", speak=False))
        assert second.result["turn"] == 2  # 50 s idle < 60 s TTL, and the TTL slides
        clock.now += 50
        assert [s["session_id"] for s in await SessionService(agent.memory).list_sessions("local")] == ["s"]
        clock.now += 61
        assert await SessionService(agent.memory).list_sessions("local") == []
        third = await agent.run_turn(TurnRequest("s", text="What is my name?", speak=False))
    assert third.result["turn"] == 1
    assert [m["content"] for m in planner.requests[-1].messages] == ["What is my name?"]


async def test_sqlite_keeps_only_the_latest_checkpoints(tmp_path: Path) -> None:
    async with open_memory("sqlite", tmp_path / "m.sqlite") as memory:
        agent = TurnRunner(AgentDeps(planner=ScriptedPlanner(), registry=ToolRegistry([])), memory)
        for i in range(5):
            await agent.run_turn(TurnRequest("s", text=f"q{i}", speak=False))
        conn = memory.checkpointer.conn  # type: ignore[attr-defined]
        async with conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 'local:s'") as cursor:
            assert (await cursor.fetchone())[0] == 2
        assert (await agent.history("local", "s")).values["turn"] == 5


async def test_redis_session_and_thread_keys_slide_together(redis_url: str) -> None:
    prefix = f"ttl-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    async with open_memory("redis", redis_url=redis_url, redis_prefix=prefix, ttl_s=100) as memory:
        planner = ScriptedPlanner([reply(f"answer {i}") for i in range(6)])
        agent = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([])), memory)
        for i in range(6):
            await agent.run_turn(TurnRequest("s", text=f"question {i}", speak=False))
        keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]
        assert {k.split(":")[1] for k in keys} == {
            *("ckpt", "ckpt-order", "ckpt-ns"),  # no pending writes: a turn that lands leaves none
            *("session", "turns", "sessions", "traces"),
        }
        assert all(0 < client.ttl(k) <= 100 for k in keys), {k: client.ttl(k) for k in keys}
        assert client.hlen(f"{prefix}:ckpt:local:s:") == client.zcard(f"{prefix}:ckpt-order:local:s:") == 2
        assert await SessionService(agent.memory).delete_session("local", "s") is True
    left = [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]
    client.close()
    assert not left


async def test_redis_session_expires_after_its_ttl(redis_url: str) -> None:
    prefix = f"exp-{uuid.uuid4().hex[:8]}"
    async with open_memory("redis", redis_url=redis_url, redis_prefix=prefix, ttl_s=1) as memory:
        planner = ScriptedPlanner([reply("Hi Ada."), reply("I do not know.")])
        agent = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([])), memory)
        await agent.run_turn(TurnRequest("s", text="My name is Ada.", speak=False))
        await asyncio.sleep(2.2)
        assert await SessionService(agent.memory).list_sessions("local") == []
        result = (await agent.run_turn(TurnRequest("s", text="What is my name?", speak=False))).result
    assert result["turn"] == 1 and [m["content"] for m in planner.requests[-1].messages] == ["What is my name?"]
    client = redis.Redis.from_url(redis_url)
    client.delete(*list(client.scan_iter(match=f"{prefix}:*")))
    client.close()


def _turn(i: int, *, cited: bool) -> list[Message]:
    calls = [ToolCall(id=f"c{i}a", name="search", arguments={}), ToolCall(id=f"c{i}b", name="clock", arguments={})]
    return [
        Message(role="user", content=f"q{i}"),
        Message(role="assistant", content="", tool_calls=calls),
        Message(role="tool", content="[1] the spare key is under the mat", tool_call_id=f"c{i}a", name="search"),
        Message(role="tool", content="It is noon.", tool_call_id=f"c{i}b", name="clock"),
        Message(role="assistant", content="Under the mat [1]." if cited else "No idea."),
    ]


def test_compaction_trims_unseen_turns_and_keeps_cited_results() -> None:
    history = [m for i in range(5) for m in _turn(i, cited=i % 2 == 0)]
    kept = compact(history, full_turns=1, max_turns=4)
    assert kept is not None
    users = [m["content"] for m in kept if m["role"] == "user"]
    assert users == ["q2", "q3", "q4"]  # the oldest dropped: with the new turn, 4 are stored
    q2 = kept[: kept.index(next(m for m in kept if m["content"] == "q3"))]
    assert [m["role"] for m in q2] == ["user", "assistant", "tool", "assistant"]
    assert [c["id"] for c in q2[1]["tool_calls"]] == ["c2a"] and q2[2]["tool_call_id"] == "c2a"
    q3 = kept[len(q2) : kept.index(next(m for m in kept if m["content"] == "q4"))]
    assert [m["content"] for m in q3] == ["q3", "No idea."]  # nothing cited: no tool results kept
    assert kept[-5:] == _turn(4, cited=True)  # the planner's window stays whole
    assert compact(kept, full_turns=1, max_turns=4) is None  # compacting is idempotent


async def test_stored_thread_is_bounded_through_the_graph() -> None:
    planner = ScriptedPlanner([step for i in range(6) for step in (call("echo", word=f"w{i}"), reply(f"a{i} [1]"))])

    async def echo(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(f"[1] echo {arguments['word']}")

    tool = Tool(ToolSpec("echo", "echo", {"type": "object"}, 5.0), echo)
    async with open_memory("memory", max_turns=3) as memory:
        deps = AgentDeps(planner=planner, registry=ToolRegistry([tool]), history_turns=1, max_stored_turns=3)
        agent = TurnRunner(deps, memory)
        for i in range(6):
            await agent.run_turn(TurnRequest("s", text=f"q{i}", speak=False))
        messages = (await agent.history("local", "s")).values["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["q3", "q4", "q5"]
    assert sum(m["role"] == "tool" for m in messages) == 3  # cited results survive the trim
    assert [m["content"] for m in planner.requests[-1].messages][:1] == ["q4"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_second_concurrent_turn_is_refused(kind: MemoryKind, tmp_path: Path, request: Any) -> None:
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        started.set()
        await release.wait()
        return ToolResult("done")

    tool = Tool(ToolSpec("slow", "waits", {"type": "object"}, 30.0), slow)
    planner = ScriptedPlanner([call("slow"), reply("hi other"), reply("first answer")])
    prefix = f"lock-{uuid.uuid4().hex[:8]}"
    async with open_memory(kind, tmp_path / "m.sqlite", redis_url=url, redis_prefix=prefix) as memory:
        agent = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([tool])), memory)
        first = asyncio.create_task(agent.run_turn(TurnRequest("s", text="one", speak=False)))
        await started.wait()
        with pytest.raises(SessionBusyError, match="already running a turn"):
            await agent.run_turn(TurnRequest("s", text="two", speak=False))
        other = await agent.run_turn(TurnRequest("other", text="hi", speak=False))  # other sessions run
        release.set()
        assert (await first).result["answer"] == "first answer"
        assert other.result["turn"] == 1
        sessions = await SessionService(agent.memory).get_session("local", "s")
        assert sessions is not None and [r["transcript"] for r in sessions[1]] == ["one"]
        await SessionService(agent.memory).delete_session("local", "s")
        await SessionService(agent.memory).delete_session("local", "other")
    if url:
        client = redis.Redis.from_url(url)
        assert not [k for k in client.scan_iter(match=f"{prefix}:lock:*")]  # released
        left = [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]
        client.close()
        assert not left  # the sessions deleted left nothing behind


@pytest.mark.parametrize("session_id", ["s1\n", "", "-s1", "s 1", "s1/..", "x" * 65])
def test_malformed_session_ids_are_refused(session_id: str) -> None:
    with pytest.raises(InputError, match="session id"):
        validate_session_id(session_id)
    validate_session_id("s1.a_b-" + "x" * 57)  # 64 characters


async def test_the_sqlite_file_is_the_owners_alone(tmp_path: Path) -> None:
    """It holds tenants' registrations, whose headers are secrets: 0600, even when an older version made it 0644."""
    path = tmp_path / "m.sqlite"
    async with open_memory("sqlite", path) as memory:
        await memory.registrations.put("acme", "http-tool", "weather", b"{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    async with open_memory("sqlite", path) as memory:
        assert await memory.registrations.get("acme", "http-tool", "weather") == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
