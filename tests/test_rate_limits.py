"""Request limits that hold under attack: key guessing is slowed per client address (read from
X-Forwarded-For only past trusted proxies), and a limit whose counters live in Redis refuses
requests while Redis is down instead of waving them through."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.memory import Counters
from agent.memory.in_memory import LocalCounters
from agent.memory.redis_backend import RedisCounters
from api.app import create_app
from api.compose import open_services
from api.forwarded import TrustedProxies
from api.ratelimit import RateLimiter, RateLimitUnavailableError
from api.settings import Settings
from model.testing import ScriptedPlanner
from tests.http_server import running_server
from tests.redis_server import free_port, running_redis

KEY = "key-acme-5d1f0c7a-secret"
GOOD = {"Authorization": f"Bearer {KEY}"}


@contextlib.contextmanager
def _service(data_dir: Path, **options: Any) -> Iterator[httpx.Client]:
    settings = Settings(
        data_dir=data_dir, speak=False, voices=False, web_search="off", api_keys=f"{KEY}:acme", **options
    )
    app = create_app(settings, lambda s: open_services(s, planner=ScriptedPlanner()))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_an_address_that_keeps_failing_its_key_is_refused_even_a_good_one(tmp_path: Path) -> None:
    with _service(tmp_path, auth_failures_per_minute=3) as client:
        assert client.get("/v1/tools", headers=GOOD).status_code == 200  # successes are not counted
        for guess in ("a", "b", "c"):
            assert client.get("/v1/tools", headers={"X-API-Key": guess}).status_code == 401
        for headers in ({"X-API-Key": "d"}, {}, GOOD):
            refused = client.post("/v1/knowledge-bases", json={"name": "kb"}, headers=headers)
            assert refused.status_code == 429, refused.text
            assert "wrong API key from this address" in refused.json()["detail"]
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert client.get("/healthz").status_code == 200  # not behind a key


def _guess(client: httpx.Client, forwarded: str) -> int:
    return client.get("/v1/tools", headers={"X-API-Key": "wrong", "X-Forwarded-For": forwarded}).status_code


def test_a_client_naming_a_new_forwarded_address_each_guess_is_still_counted_by_its_own(tmp_path: Path) -> None:
    with _service(tmp_path, auth_failures_per_minute=3) as client:
        assert [_guess(client, f"198.51.100.{n}") for n in range(5)] == [401, 401, 401, 429, 429]


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(tmp_path: Path) -> None:
    with _service(tmp_path, auth_failures_per_minute=3, trusted_proxies="127.0.0.0/8, ::1") as client:
        assert [_guess(client, "198.51.100.1") for _ in range(4)] == [401, 401, 401, 429]
        assert _guess(client, "198.51.100.2") == 401, "another client behind the proxy is not locked out"
        # The client wrote the left entry itself; the proxy appended the address it came from.
        assert _guess(client, "198.51.100.9, 198.51.100.1") == 429
        good = client.get("/v1/tools", headers={**GOOD, "X-Forwarded-For": "198.51.100.2"})
        assert good.status_code == 200


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: the header is the client's word
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.9, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two proxies deep
        ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),  # all proxies: the farthest
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "not-an-address", "not-an-address"),
        ("fd00::2", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_the_client_is_read_from_the_right_past_trusted_proxies_only(peer: str, forwarded: str, client: str) -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
    scope = {"client": (peer, 1234), "headers": [(b"x-forwarded-for", forwarded.encode())]}
    assert proxies.client(scope) == client
    assert TrustedProxies().client(scope) == peer


def test_a_trusted_proxy_that_is_not_an_address_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES: 'nginx' is not an IP address"):
        Settings(data_dir=tmp_path, trusted_proxies="10.0.0.1,nginx")


def test_while_redis_is_down_limited_requests_get_503_not_a_free_pass(tmp_path: Path) -> None:
    port = free_port()
    redis = running_redis(port)
    url = redis.__enter__()
    try:
        with _service(tmp_path, redis_url=url, rate_limit_per_minute=100) as client:
            assert client.get("/v1/tools", headers=GOOD).status_code == 200
            redis.__exit__(None, None, None)
            for headers in (GOOD, {"X-API-Key": "guess"}):
                down = client.get("/v1/tools", headers=headers)
                assert down.status_code == 503, down.text
                assert "Redis is unavailable" in down.json()["detail"] and KEY not in down.text
            with running_redis(port):
                assert client.get("/v1/tools", headers=GOOD).status_code == 200
    finally:
        redis.__exit__(None, None, None)


@contextlib.asynccontextmanager
async def _counters(kind: str, clock: Callable[[], float]) -> AsyncIterator[Counters]:
    """The memory backends' counters: the process's own, and Redis's."""
    if kind == "memory":
        yield LocalCounters(clock=clock)
        return
    import redis.asyncio as aioredis

    with running_redis() as url:
        client = aioredis.Redis.from_url(url)
        try:
            yield RedisCounters(client, prefix=f"t-{uuid.uuid4().hex[:8]}")
        finally:
            await client.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_the_limiters_count_and_peek_alike_on_every_backend(kind: str) -> None:
    now = [0.0]
    async with _counters(kind, lambda: now[0]) as counters:
        limiter = RateLimiter(counters, 2, clock=lambda: now[0])
        steps = [await limiter.peek("a"), await limiter.hit("a"), await limiter.peek("a"), await limiter.hit("a")]
        assert steps == [None] * 4  # a peek counts nothing
        assert await limiter.peek("a") == 60 and await limiter.hit("a") == 60 and await limiter.peek("b") is None
        assert await counters.get("never-counted") == 0
        now[0] = 61.0  # the next window
        assert await limiter.peek("a") is None


@pytest.mark.anyio
async def test_a_limit_counted_in_an_unreachable_redis_refuses_hits_and_peeks() -> None:
    import redis.asyncio as aioredis

    closed = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(RedisCounters(closed, prefix="t"), 2)
    for attempt in (limiter.hit, limiter.peek):
        with pytest.raises(RateLimitUnavailableError, match="Redis is unavailable"):
            await attempt("a")
    await closed.aclose()
