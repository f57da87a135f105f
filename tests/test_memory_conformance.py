"""One conformance suite, run against every session-memory backend open_checkpointer offers.

The suite is LangGraph's own (`langgraph-checkpoint-conformance`): it drives the async
API (aput, aput_writes, aget_tuple, alist, adelete_thread, and the optional extensions a
saver overrides) and checks round-trips, namespaces, ordering, filters and deletion.
Redis runs on a private redis-server (see tests/test_memory_redis.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import langgraph.checkpoint.conformance as conformance
import pytest
import redis

from agent.memory import MemoryKind, open_checkpointer
from tests.redis_server import running_redis

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url
        client = redis.Redis.from_url(url)
        leftover = client.dbsize()
        client.close()
        assert leftover == 0, f"the suite left {leftover} keys in Redis"


def _registered(kind: MemoryKind, tmp_path: Path, redis_url: str | None) -> Any:
    """A fresh, empty saver of `kind` for each capability suite, dropped afterwards."""

    async def factory() -> AsyncIterator[Any]:
        name = uuid.uuid4().hex
        prefix = f"conformance-{name}"
        async with open_checkpointer(
            kind, tmp_path / f"{name}.sqlite", redis_url=redis_url, redis_prefix=prefix
        ) as saver:
            yield saver
        if redis_url is not None:
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
            if keys:
                client.delete(*keys)
            client.close()

    return conformance.checkpointer_test(name=f"voicegraph-{kind}")(factory)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
async def test_backend_passes_the_checkpoint_conformance_suite(
    kind: MemoryKind, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    report = await conformance.validate(_registered(kind, tmp_path, url))
    failures = {name: result.failures for name, result in report.results.items() if result.failures}
    assert report.passed_all_base(), failures
    assert report.passed_all(), failures
    ran = sum(result.tests_passed for result in report.results.values())
    assert ran >= 50, f"only {ran} conformance tests ran: {report.to_dict()}"
