"""Per-tenant quotas over HTTP (api/quotas.py): each answers 429 naming itself, before anything is
written, and requests sent at once cannot pass one together."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from typing import Any

import httpx
import pytest

from agent.runner import TurnRequest
from agent.sessions import SessionTally
from api.app import create_app
from api.compose import Services, open_services
from api.quotas import QuotaBusyError, QuotaExceededError, Quotas
from api.settings import Settings
from model.testing import ScriptedPlanner
from tests.http_server import running_server
from tests.mcp_server import app as mcp_app

SENTENCE = "The quarterly report lists revenue, costs and the outlook for every region in detail. "


class _FullLibrary:
    """A voice library whose tenant already has its one voice (rendering real voices takes minutes)."""

    def count_own(self, tenant: str) -> int:
        return 1


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        speak=False,
        voices=False,
        web_search="off",
        tool_allow_private_hosts="127.0.0.1",
        quota_sessions=2,
        quota_knowledge_bases=2,
        quota_documents=3,
        quota_chunks=4,
        quota_tools=1,
        quota_mcp_servers=1,
        quota_voices=1,
    )

    @contextlib.asynccontextmanager
    async def services(settings: Settings) -> AsyncIterator[Services]:
        async with open_services(settings, planner=ScriptedPlanner()) as built:
            yield dataclasses.replace(built, voices=_FullLibrary())  # type: ignore[arg-type]

    with running_server(create_app(settings, services)) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def _refused(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429, response.text
    detail = response.json()["detail"]
    assert detail.startswith("quota reached") and f"VOICEGRAPH_{setting}" in detail


def _turn(client: httpx.Client, session: str) -> httpx.Response:
    return client.post(f"/v1/sessions/{session}/turns", json={"text": "hello"})


def test_sessions(client: httpx.Client) -> None:
    assert _turn(client, "one").status_code == 200 and _turn(client, "two").status_code == 200
    _refused(_turn(client, "three"), "QUOTA_SESSIONS")
    assert _turn(client, "one").status_code == 200  # a session it has goes on
    assert client.delete("/v1/sessions/two").status_code == 204
    assert _turn(client, "three").status_code == 200


def _add(client: httpx.Client, kb: str, title: str, text: str) -> httpx.Response:
    return client.post(f"/v1/knowledge-bases/{kb}/documents", json={"title": title, "text": text})


def test_knowledge_bases_documents_and_chunks(client: httpx.Client) -> None:
    for name in ("notes", "reports"):
        assert client.post("/v1/knowledge-bases", json={"name": name}).status_code == 201
    _refused(client.post("/v1/knowledge-bases", json={"name": "more"}), "QUOTA_KNOWLEDGE_BASES")
    again = client.post("/v1/knowledge-bases", json={"name": "notes"})  # one it has: that is what is wrong
    assert again.status_code == 409 and "notes" in again.json()["detail"], again.text
    assert client.get("/v1/knowledge-bases").json() == [
        {"name": "notes", "chunks": 0},
        {"name": "reports", "chunks": 0},
    ]

    assert _add(client, "notes", "short", "The office opens at nine.").status_code == 200
    long = _add(client, "reports", "long", SENTENCE * 40)
    assert long.status_code == 200 and long.json()["total_chunks"] >= 3
    _refused(_add(client, "notes", "more", "Parking is free."), "QUOTA_CHUNKS")
    assert client.delete("/v1/knowledge-bases/reports/documents/long").status_code == 204
    assert _add(client, "notes", "second", "Parking is free.").status_code == 200
    assert _add(client, "reports", "third", "Lunch is at noon.").status_code == 200
    _refused(_add(client, "notes", "fourth", "Bikes go in the yard."), "QUOTA_DOCUMENTS")


def test_tools_and_mcp_servers(client: httpx.Client) -> None:
    with running_server(mcp_app()) as mcp_url:
        tool: dict[str, Any] = {"name": "crm", "description": "d", "url": f"{mcp_url}/x", "read_only": True}
        assert client.post("/v1/tools", json=tool).status_code == 201
        _refused(client.post("/v1/tools", json={**tool, "name": "crm2"}), "QUOTA_TOOLS")
        server = {"name": "inventory", "transport": "http", "url": f"{mcp_url}/mcp"}
        assert client.post("/v1/mcp-servers", json=server).status_code == 201, "the first is connected"
        _refused(client.post("/v1/mcp-servers", json={**server, "name": "stock"}), "QUOTA_MCP_SERVERS")


def test_voices(client: httpx.Client) -> None:
    sample = {"sample": ("me.wav", b"RIFF....WAVE", "audio/wav")}
    _refused(client.post("/v1/voices", data={"description": "mine"}, files=sample), "QUOTA_VOICES")


@pytest.fixture(scope="module")
def racing_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service whose turns take a while (the planner writes slowly), so requests overlap."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("racing"),
        speak=False,
        voices=False,
        web_search="off",
        tool_allow_private_hosts="127.0.0.1",
        quota_sessions=3,
        quota_knowledge_bases=3,
        quota_tools=3,
    )
    planner = ScriptedPlanner(fallback="One moment, then the answer.", seconds_per_word=0.05)
    with running_server(create_app(settings, lambda s: open_services(s, planner=planner))) as url:
        yield url


RACERS = 10


def _race(url: str, send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]) -> list[int]:
    """The statuses of RACERS requests sent at once."""

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            responses = await asyncio.gather(*(send(client, n) for n in range(RACERS)))
        for response in responses:
            assert response.status_code in (200, 201, 429), response.text
        return sorted(response.status_code for response in responses)

    return asyncio.run(race())


def test_sessions_started_at_once_cannot_pass_the_quota_together(racing_url: str) -> None:
    statuses = _race(racing_url, lambda c, n: c.post(f"/v1/sessions/racer{n}/turns", json={"text": "hi"}))
    assert statuses == [200] * 3 + [429] * (RACERS - 3)
    assert len(httpx.get(f"{racing_url}/v1/sessions").json()["sessions"]) == 3
    assert httpx.post(f"{racing_url}/v1/sessions/more/turns", json={"text": "hi"}).status_code == 429


def test_knowledge_bases_created_at_once_cannot_pass_the_quota_together(racing_url: str) -> None:
    statuses = _race(racing_url, lambda c, n: c.post("/v1/knowledge-bases", json={"name": f"kb{n}"}))
    assert statuses == [201] * 3 + [429] * (RACERS - 3)
    assert len(httpx.get(f"{racing_url}/v1/knowledge-bases").json()) == 3


def test_tools_registered_at_once_cannot_pass_the_quota_together(racing_url: str) -> None:
    def register(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
        tool = {"name": f"crm{n}", "description": "d", "url": "http://127.0.0.1:9/x", "read_only": True}
        return client.post("/v1/tools", json=tool)

    assert _race(racing_url, register) == [201] * 3 + [429] * (RACERS - 3)
    assert sum(tool["name"].startswith("crm") for tool in httpx.get(f"{racing_url}/v1/tools").json()) == 3


@pytest.mark.anyio
async def test_a_tenant_held_too_long_is_told_to_try_again() -> None:
    quotas = Quotas(wait_s=0.1)
    async with quotas.adding("acme", "voices"):
        with pytest.raises(QuotaBusyError, match="other requests of this tenant are adding voices"):
            async with quotas.adding("acme", "voices"):
                pass
        async with quotas.adding("globex", "voices"), quotas.adding("acme", "tools"):
            pass  # other tenants and other kinds do not wait


@pytest.mark.anyio
async def test_a_session_the_tenant_has_goes_on_while_new_ones_wait(tmp_path: Any) -> None:
    """The tenant's hold on its count of sessions is for new sessions only: a turn of a session
    it has does not queue behind them."""
    settings = Settings(data_dir=tmp_path, speak=False, voices=False, web_search="off", quota_sessions=5)
    async with open_services(settings, planner=ScriptedPlanner(fallback="Hi.")) as services:
        await services.runner.run_turn(TurnRequest(session_id="known", tenant="acme", text="hello"))
        quotas = Quotas(wait_s=0.2)
        async with quotas.adding("acme", "sessions"):  # new sessions are being counted
            ended = await asyncio.wait_for(quotas.reserve_session(services.sessions, settings, "acme", "known"), 1.0)
            ended()
            with pytest.raises(QuotaBusyError):
                await quotas.reserve_session(services.sessions, settings, "acme", "new")


class _SlowSessions:
    """Sessions that are never written yet, each answer a moment away (a busy backend)."""

    async def is_session(self, tenant: str, session_id: str) -> bool:
        await asyncio.sleep(0.01)
        return False

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        await asyncio.sleep(0.03)  # turns end meanwhile
        return SessionTally(0, frozenset())


@pytest.mark.anyio
async def test_turns_ending_while_a_new_session_is_counted_leave_it_reserved(tmp_path: Any) -> None:
    """Reservations taken out while a new session is counted: the count reads on, and the new
    session's reservation lands where the next count finds it."""
    quotas, sessions = Quotas(), _SlowSessions()
    roomy = Settings(data_dir=tmp_path, quota_sessions=10)
    ended = [await quotas.reserve_session(sessions, roomy, "acme", f"s{n}") for n in range(3)]  # type: ignore[arg-type]

    async def turns_end() -> None:
        await asyncio.sleep(0.015)
        for end in ended:
            end()

    await asyncio.gather(turns_end(), quotas.reserve_session(sessions, roomy, "acme", "new"))  # type: ignore[arg-type]
    with pytest.raises(QuotaExceededError):  # "new" holds the one session a quota of 1 allows
        await quotas.reserve_session(sessions, Settings(data_dir=tmp_path, quota_sessions=1), "acme", "more")  # type: ignore[arg-type]


class _CountedSessions:
    """Sessions kept in a set, counting what is asked of them."""

    def __init__(self) -> None:
        self.written: set[str] = set()
        self.tallies = 0

    async def is_session(self, tenant: str, session_id: str) -> bool:
        await asyncio.sleep(0)
        return session_id in self.written

    async def tally(self, tenant: str, ids: Collection[str] = ()) -> SessionTally:
        self.tallies += 1
        await asyncio.sleep(0)
        return SessionTally(len(self.written), frozenset(self.written.intersection(ids)))


@pytest.mark.anyio
async def test_a_burst_of_new_sessions_is_counted_together(tmp_path: Any) -> None:
    """New sessions that arrive while the tenant's sessions are counted are counted together
    next, in one read: a burst of them does not queue one by one behind the tenant's hold."""
    quotas, sessions = Quotas(), _CountedSessions()
    sessions.written = {"old-1", "old-2"}
    settings = Settings(data_dir=tmp_path, quota_sessions=42)
    burst = [quotas.reserve_session(sessions, settings, "acme", f"s{n}") for n in range(40)]  # type: ignore[arg-type]
    ended = await asyncio.gather(*burst)
    assert sessions.tallies <= 2  # the first alone, maybe, then all the others at once
    with pytest.raises(QuotaExceededError, match="has 42 sessions"):  # 2 written and 40 reserved
        await quotas.reserve_session(sessions, settings, "acme", "one-more")  # type: ignore[arg-type]
    sessions.written.add("s0")  # the first turn landed, then ended
    ended[0]()
    with pytest.raises(QuotaExceededError):  # written now, it is counted once
        await quotas.reserve_session(sessions, settings, "acme", "one-more")  # type: ignore[arg-type]
    ended[1]()  # ended without landing: its room is free
    (await quotas.reserve_session(sessions, settings, "acme", "one-more"))()  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_burst_past_the_quota_is_refused_past_it_only(tmp_path: Any) -> None:
    quotas, sessions = Quotas(), _CountedSessions()
    settings = Settings(data_dir=tmp_path, quota_sessions=3)
    burst = [quotas.reserve_session(sessions, settings, "acme", f"s{n}") for n in range(5)]  # type: ignore[arg-type]
    outcomes = await asyncio.gather(*burst, return_exceptions=True)
    assert [isinstance(o, QuotaExceededError) for o in outcomes] == [False, False, False, True, True]
    same = [quotas.reserve_session(sessions, settings, "acme", "s0") for _ in range(2)]  # type: ignore[arg-type]
    for ended in await asyncio.gather(*same):  # reserved already: goes on (its own lock says it is busy)
        ended()


@pytest.mark.anyio
async def test_a_new_session_whose_caller_leaves_is_not_kept_reserved(tmp_path: Any) -> None:
    quotas, sessions = Quotas(), _CountedSessions()
    settings = Settings(data_dir=tmp_path, quota_sessions=1)
    async with quotas.adding("acme", "sessions"):  # the count is held: the new session waits
        waiting = asyncio.ensure_future(quotas.reserve_session(sessions, settings, "acme", "left"))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    (await quotas.reserve_session(sessions, settings, "acme", "next"))()  # type: ignore[arg-type]
