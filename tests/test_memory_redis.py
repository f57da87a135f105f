"""Session memory on a real Redis, through the real turn runner with the scripted planner.

Each run starts its own throwaway `redis-server` on a free loopback port (no persistence),
so nothing is left in any shared Redis.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from agent.context import AgentDeps
from agent.memory import MemoryUnavailableError, open_memory
from agent.memory.redis_saver import RedisCheckpointSaver
from agent.runner import TurnRequest, TurnRunner
from model.base import PlanRequest
from model.errors import PlannerError
from model.testing import ScriptedPlanner, Step, reply
from tests.redis_server import free_port, running_redis
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture
async def saver_url(redis_url: str) -> AsyncIterator[str]:
    """The server's URL, emptied after each test so tests cannot see each other's sessions."""
    yield redis_url
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def _agent(saver: Any, *steps: Step | Any) -> tuple[TurnRunner, ScriptedPlanner]:
    planner = ScriptedPlanner(list(steps))
    return TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([])), saver), planner


def _explode(request: PlanRequest) -> Step:
    raise PlannerError("model crashed")


async def _ask(agent: TurnRunner, text: str, session: str = "s1") -> Any:
    return (await agent.run_turn(TurnRequest(session_id=session, text=text, speak=False))).result


async def test_redis_memory_survives_a_new_agent_and_connection(saver_url: str) -> None:
    async with open_memory("redis", redis_url=saver_url) as saver:
        agent, _ = _agent(saver, reply("Hi Ada."))
        await _ask(agent, "My name is Ada.")
    async with open_memory("redis", redis_url=saver_url) as saver:
        agent, planner = _agent(saver, reply("Ada."))
        result = await _ask(agent, "Name?")
    assert result["turn"] == 2
    assert [m["content"] for m in planner.requests[0].messages] == ["My name is Ada.", "Hi Ada.", "Name?"]


async def test_failed_turn_is_rolled_back_on_redis(saver_url: str) -> None:
    async with open_memory("redis", redis_url=saver_url) as saver:
        agent, _ = _agent(saver, reply("first"), _explode)
        await _ask(agent, "one")
        with pytest.raises(PlannerError):
            await _ask(agent, "two")
    async with open_memory("redis", redis_url=saver_url) as saver:
        agent, planner = _agent(saver, reply("third"))
        result = await _ask(agent, "three")
    assert result["turn"] == 2
    assert [m["content"] for m in planner.requests[0].messages] == ["one", "first", "three"]


async def test_failed_first_turn_leaves_no_session_on_redis(saver_url: str) -> None:
    async with open_memory("redis", redis_url=saver_url) as saver:
        agent, _ = _agent(saver, reply("kept"), _explode)
        await _ask(agent, "hello", session="other")
        with pytest.raises(PlannerError):
            await _ask(agent, "hello", session="fresh")
        assert (await agent.history("local", "fresh")).values == {}
        assert (await agent.history("local", "other")).values["turn"] == 1
    client = redis.Redis.from_url(saver_url)
    keys = {key.decode() for key in client.scan_iter(match="*fresh*")}
    client.close()
    assert keys == {"voicegraph:traces:local:fresh"}  # only the failed turn's trace, which says why


async def test_sessions_of_two_prefixes_do_not_mix(saver_url: str) -> None:
    async with open_memory("redis", redis_url=saver_url, redis_prefix="a") as saver:
        await _ask(_agent(saver, reply("hi"))[0], "hello")
    async with open_memory("redis", redis_url=saver_url, redis_prefix="b") as saver:
        result = await _ask(_agent(saver, reply("hi"))[0], "hello")
    assert result["turn"] == 1


async def test_unreachable_redis_fails_with_a_clear_error() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(MemoryUnavailableError, match=r"cannot reach the Redis session memory") as caught:
        async with open_memory("redis", redis_url=url):
            pass
    assert "hunter2" not in str(caught.value)


async def test_silent_server_fails_within_the_connect_timeout() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with pytest.raises(MemoryUnavailableError, match="no answer within"):
            async with open_memory("redis", redis_url=url):
                pass


async def test_redis_needs_a_url() -> None:
    with pytest.raises(ValueError, match="redis_url"):
        async with open_memory("redis"):
            pass


def test_http_sessions_on_redis_survive_a_restart_of_the_service(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """VOICEGRAPH_REDIS_URL selects Redis; a new service process finds the session there."""
    import httpx

    from api.app import create_app
    from api.compose import open_services
    from api.settings import Settings
    from tests.http_server import running_server

    planner = ScriptedPlanner([reply("Nice to meet you, Ada."), reply("Your name is Ada.")])
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), redis_url=redis_url, speak=False)
    assert settings.memory_kind == "redis"
    for text in ("My name is Ada.", "What is my name?"):  # a fresh app (and Redis connection) per turn
        app = create_app(settings, lambda s: open_services(s, planner=planner))
        with running_server(app) as base_url:
            response = httpx.post(f"{base_url}/v1/sessions/ada/turns", json={"text": text}, timeout=60)
        assert response.status_code == 200, response.text
    assert response.json()["turn"] == 2
    assert [m["content"] for m in planner.requests[1].messages][:2] == ["My name is Ada.", "Nice to meet you, Ada."]
    assert not (settings.data_dir / "memory.sqlite").exists()
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def test_readyz_answers_503_while_redis_is_down_and_200_once_it_is_back(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The readiness probe follows Redis; the liveness probe (/healthz) does not, so no restart."""
    import time
    from contextlib import ExitStack

    import httpx

    from agent.memory import REDIS_CONNECT_TIMEOUT_S
    from api.app import create_app
    from api.compose import open_services
    from api.settings import Settings
    from tests.http_server import running_server

    port = free_port()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"), redis_url=f"redis://127.0.0.1:{port}/0", speak=False, voices=False
    )
    app = create_app(settings, lambda s: open_services(s, planner=ScriptedPlanner([])))
    with ExitStack() as redis_up:
        redis_up.enter_context(running_redis(port))
        with running_server(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "memory": "redis"}

            redis_up.close()  # Redis goes away under the running service
            started = time.monotonic()
            down = client.get("/readyz")
            assert down.status_code == 503, down.text
            assert time.monotonic() - started < REDIS_CONNECT_TIMEOUT_S + 1
            assert "session memory" in down.json()["detail"] and "127.0.0.1" not in down.text
            assert client.get("/healthz").status_code == 200

            with running_redis(port):
                back = client.get("/readyz")
                assert back.status_code == 200, back.text


async def test_the_saver_keeps_a_threads_last_checkpoints_in_the_order_they_were_written(saver_url: str) -> None:
    """Each write keeps the thread's last `keep` checkpoints (their pending writes with them)
    and slides its expiry; "latest" is the last written, whatever the ids' clocks say."""
    client = aioredis.Redis.from_url(saver_url)
    saver = RedisCheckpointSaver(client, prefix="p", ttl_s=50, keep=2)
    config: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    for checkpoint_id in ("c", "b", "a"):  # ids that sort the other way: another replica's clock
        checkpoint = empty_checkpoint()
        checkpoint["id"] = checkpoint_id
        checkpoint["channel_values"] = {"said": f"value {checkpoint_id}"}
        config = await saver.aput(config, checkpoint, {"source": "loop", "step": 1}, {})
        await saver.aput_writes(config, [("said", f"write {checkpoint_id}")], task_id="task")
    latest = await saver.aget_tuple({"configurable": {"thread_id": "t"}})
    assert latest is not None and latest.checkpoint["id"] == "a"
    assert latest.parent_config is not None and latest.parent_config["configurable"]["checkpoint_id"] == "b"
    assert latest.checkpoint["channel_values"] == {"said": "value a"}
    assert latest.pending_writes == [("task", "said", "write a")]
    assert [t.checkpoint["id"] async for t in saver.alist({"configurable": {"thread_id": "t"}})] == ["a", "b"]
    assert await saver.aget_tuple({"configurable": {"thread_id": "t", "checkpoint_id": "c"}}) is None
    writes = await client.hkeys("p:ckpt-writes:t:")
    assert sorted(field.split(b"\0")[0] for field in writes) == [b"a", b"b"]  # c's went with it
    keys = [key async for key in client.scan_iter(match="p:*")]
    ttls = [await client.ttl(key) for key in keys]
    assert len(keys) == 4 and all(0 < ttl <= 50 for ttl in ttls), ttls
    await saver.adelete_thread("t")
    assert [key async for key in client.scan_iter(match="p:*")] == []
    await client.aclose()
