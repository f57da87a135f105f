"""`voicegraph bench load`: many sessions at once against voicegraph replicas over HTTP.

N sessions run at the same time, each sending M text turns one after another; turn j of
session i goes to replica (i + j) mod K, so every session moves between replicas and its
history must follow it through the shared memory. Given no URLs, the bench starts K
replicas itself (api/load_replica.py: the real app with a planner that costs nothing) on
loopback, sharing a redis-server it starts. It prints throughput, latency and errors, then
reads every session back through the sessions API and checks that it holds exactly its
turns: each answered turn once, in order, and nothing else.

With `kill`, one replica is killed (SIGKILL) once a third of the turns are answered. Turns
it was running fail, and so do those sent to it while it was being killed; a turn sent once
it is dead finds no one to take it and goes to the next replica, as a load balancer would
send it on. The client then sends only to the replicas left, and a session whose turn died
with the replica waits for its lock to expire (the lock's lease) before its next turn is
taken. A turn that failed may or may not have been kept, as it may have died before or after
its session was written: it counts as neither lost nor duplicated if kept once, after the
turns before it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis

from agent.locks import DEFAULT_LEASE_MS
from api.latency_bench import percentile
from api.load_replica import REPLICA_APP
from api.processes import ServerProcess, free_port, running_redis

__all__ = ["LoadReport", "run_load", "run_load_bench"]

KILL_AT = 1 / 3
"""The share of all turns answered when `kill` kills a replica."""
_LOCK_WAIT_S = DEFAULT_LEASE_MS / 1000 + 15
"""How long a session waits for a lock a failed turn left before its turn counts as an error."""
_TURN_TIMEOUT_S = 60.0
_PROBE_TIMEOUT_S = 5.0
_IDLE_S = 2.0
_DETAIL_CHARS = 100
_CHECKS_AT_ONCE = 16


def _question(session: str, turn: int) -> str:
    return f"{session} turn {turn}: what time is it in Tokyo?"


@dataclass
class _Session:
    name: str
    sent: list[tuple[str, bool]] = field(default_factory=list)
    """Each turn's text and whether it was answered, in the order sent."""


@dataclass
class LoadReport:
    replicas: int
    sessions: int
    turns: int
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    per_replica: Counter[str] = field(default_factory=Counter)
    killed: str | None = None
    killed_after: int = 0
    in_flight_at_kill: int = 0
    """Turns the killed replica had been sent and not answered when it was killed, and turns
    sent to it while it was being killed."""
    lock_waits_s: list[float] = field(default_factory=list)
    rerouted: int = 0
    """Turns that reached no replica (one refused the connection, or was dead when they were
    sent), sent to the next one."""
    consistent_sessions: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    failed_kept: int = 0
    failed_dropped: int = 0
    redis_used_mib: float | None = None
    replica_cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU each replica the bench started spent per turn it answered, over the run."""
    inconsistent: list[str] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return len(self.latencies_ms)

    @property
    def consistent(self) -> bool:
        """Every session holds exactly its turns: nothing answered is lost, nothing is kept twice."""
        return self.consistent_sessions == self.sessions and not (self.lost or self.duplicated or self.unexpected)

    def render(self) -> str:
        ms = self.latencies_ms
        rate = self.answered / self.wall_s if self.wall_s else 0.0
        lines = [
            f"voicegraph bench load: {self.sessions} sessions x {self.turns} turns at once over HTTP, "
            f"{self.replicas} replicas, Redis memory; {os.cpu_count()} CPU cores",
            f"turns: {self.answered} answered, {sum(self.errors.values())} errors, in {self.wall_s:.1f} s",
            f"throughput: {rate:.1f} turns/s ({rate / self.replicas:.1f} per replica)",
            f"latency ms: p50 {percentile(ms, 50):.0f}, p99 {percentile(ms, 99):.0f}, max {max(ms, default=0):.0f}",
            "answered per replica: " + ", ".join(f"{url} {n}" for url, n in sorted(self.per_replica.items())),
        ]
        if self.errors:
            lines.append("errors: " + ", ".join(f"{what} x{n}" for what, n in self.errors.most_common()))
        if self.killed:
            lines.append(
                f"fault: {self.killed} killed after {self.killed_after} answered turns, with "
                f"{self.in_flight_at_kill} in flight there; {self.rerouted} turns sent on to another replica, "
                "as the killed one was gone"
            )
        if self.lock_waits_s:
            lines.append(
                f"lock waits: {len(self.lock_waits_s)} turns waited for a lock a failed turn left, "
                f"up to {max(self.lock_waits_s):.1f} s"
            )
        if self.replica_cpu_ms:
            cpu = sum(self.replica_cpu_ms.values()) / len(self.replica_cpu_ms)
            lines.append(
                f"replica CPU: {cpu:.1f} ms per answered turn (about {1000 / cpu:.0f} turns/s for a replica with "
                "a core of its own); " + ", ".join(f"{url} {v:.1f}" for url, v in sorted(self.replica_cpu_ms.items()))
            )
        if self.redis_used_mib is not None:
            lines.append(f"redis memory: {self.redis_used_mib:.1f} MiB used")
        lines += [
            f"sessions: {self.consistent_sessions} of {self.sessions} hold exactly their turns; "
            f"{self.lost} lost, {self.duplicated} duplicated, {self.unexpected} unexpected entries; "
            f"failed turns kept {self.failed_kept}, not kept {self.failed_dropped}",
            *(f"  {line}" for line in self.inconsistent[:10]),
            f"verdict: {'consistent' if self.consistent else 'INCONSISTENT'}",
        ]
        return "\n".join(lines)


class _Pool:
    """The replicas still taking turns; one that fails a turn and then refuses a health check
    is dropped, as a load balancer would drop it.

    The client is aiohttp's: httpx spent 5-8 ms of CPU per turn here, more than half what a
    replica spends on it, and on a machine shared with the replicas that is what was measured."""

    def __init__(self, urls: Sequence[str], headers: dict[str, str], concurrency: int) -> None:
        # Idle connections are let go before a server closes them (uvicorn: after 5 s), so that
        # a request never goes out on a connection the server is closing.
        self.clients = {
            url: aiohttp.ClientSession(
                base_url=url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=_TURN_TIMEOUT_S),
                connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=_IDLE_S),
            )
            for url in urls
        }
        self.live = list(urls)
        self.in_flight: Counter[str] = Counter()
        """Turns sent to each replica and not yet answered."""
        self.kill_at: int | None = None
        """Answered turns after which a replica is to be killed; None: none is."""
        self.kill_due = asyncio.Event()
        self.killing: str | None = None
        """The replica being killed: a turn sent to it meanwhile is in flight there."""
        self.dead: dict[str, float] = {}
        """Killed replicas, and when they were dead: nothing sent to one since ran there."""

    def pick(self, index: int) -> str:
        if not self.live:
            raise RuntimeError("no replica is left")
        return self.live[index % len(self.live)]

    async def check(self, url: str) -> None:
        """Drop `url` if it no longer takes connections (a replica that is only slow stays)."""
        try:
            async with self.clients[url].get("/healthz", timeout=aiohttp.ClientTimeout(total=_PROBE_TIMEOUT_S)):
                pass
        except aiohttp.ClientConnectorError:
            if url in self.live:
                self.live.remove(url)
        except (aiohttp.ClientError, TimeoutError):
            pass

    async def aclose(self) -> None:
        await asyncio.gather(*(client.close() for client in self.clients.values()))


async def _post(pool: _Pool, url: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with pool.clients[url].post(path, json=body) as response:
        return response.status, await response.read()


async def _turn(pool: _Pool, report: LoadReport, index: int, text: str, session: str) -> bool:
    """One turn; True once answered. A dead replica's lock is waited out, a dead replica is dropped."""
    waited_since: float | None = None
    while True:
        url = pool.pick(index)
        started = time.perf_counter()
        pool.in_flight[url] += 1
        if url == pool.killing:
            report.in_flight_at_kill += 1
        try:
            status, body = await _post(pool, url, f"/v1/sessions/{session}/turns", {"text": text, "speak": False})
        except (aiohttp.ClientError, TimeoutError) as error:
            await pool.check(url)
            unsent = started >= pool.dead.get(url, float("inf")) or isinstance(error, aiohttp.ClientConnectorError)
            if unsent and url not in pool.live:  # it never reached a replica: the next one takes it
                report.rerouted += 1
                continue
            report.errors[f"{type(error).__name__} ({url})"] += 1
            return False
        finally:
            pool.in_flight[url] -= 1
        if status == 200:
            report.latencies_ms.append((time.perf_counter() - started) * 1000)
            report.per_replica[url] += 1
            if pool.kill_at is not None and report.answered >= pool.kill_at:
                pool.kill_due.set()
            if waited_since is not None:
                report.lock_waits_s.append(time.perf_counter() - waited_since)
            return True
        if status == 409:  # a lock left by a turn that failed (this client sends one at a time)
            waited_since = waited_since or time.perf_counter()
            if time.perf_counter() - waited_since < _LOCK_WAIT_S:
                await asyncio.sleep(0.25)
                continue
        report.errors[f"HTTP {status}: {_detail(body)}"] += 1
        return False


def _detail(body: bytes) -> str:
    """The start of an error's `detail` (problem+json), for the report."""
    try:
        detail = str(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        detail = body.decode(errors="replace")
    return re.sub(r"'[^']*'", "'...'", detail)[:_DETAIL_CHARS]  # one line per kind, not per session


async def _run_session(pool: _Pool, report: LoadReport, number: int, prefix: str) -> _Session:
    session = _Session(f"{prefix}-{number}")
    for turn in range(1, report.turns + 1):
        text = _question(session.name, turn)
        session.sent.append((text, await _turn(pool, report, number + turn, text, session.name)))
    return session


def _verdict(report: LoadReport, session: _Session, kept: list[str]) -> None:
    """Compare what a session holds with what it was sent."""
    answered = [text for text, ok in session.sent if ok]
    sent = {text for text, _ in session.sent}
    counts = Counter(kept)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    unexpected = sum(1 for text in counts if text not in sent)
    lost = sum(1 for text in answered if text not in counts)
    order = [text for text, _ in session.sent if text in counts]
    report.lost += lost
    report.duplicated += duplicated
    report.unexpected += unexpected
    report.failed_kept += sum(1 for text, ok in session.sent if not ok and text in counts)
    report.failed_dropped += sum(1 for text, ok in session.sent if not ok and text not in counts)
    if lost or duplicated or unexpected or list(dict.fromkeys(kept)) != order:
        report.inconsistent.append(f"{session.name}: holds {kept}, answered {answered}")
    else:
        report.consistent_sessions += 1


async def _check(pool: _Pool, report: LoadReport, sessions: list[_Session]) -> None:
    gate = asyncio.Semaphore(_CHECKS_AT_ONCE)

    async def one(number: int, session: _Session) -> None:
        async with gate:
            for attempt in range(3):  # a read: safe to ask again, on the next replica
                try:
                    async with pool.clients[pool.pick(number + attempt)].get(f"/v1/sessions/{session.name}") as got:
                        status, found = got.status, await got.read()
                    break
                except (aiohttp.ClientError, TimeoutError):
                    if attempt == 2:
                        raise
        if status == 404:
            _verdict(report, session, [])
            return
        if status != 200:
            raise RuntimeError(f"reading session {session.name} back answered HTTP {status}: {_detail(found)}")
        _verdict(report, session, [turn["transcript"] for turn in json.loads(found)["turns"]])

    await asyncio.gather(*(one(number, session) for number, session in enumerate(sessions)))


async def run_load(
    urls: Sequence[str],
    *,
    sessions: int,
    turns: int,
    kill: ServerProcess | None = None,
    api_key: str | None = None,
    measured: Sequence[ServerProcess] = (),
) -> LoadReport:
    """Run the load against `urls`; with `kill` (one of them), kill it a third of the way through.
    The CPU time of `measured` (replicas started here) is read before and after the turns."""
    report = LoadReport(replicas=len(urls), sessions=sessions, turns=turns)
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    pool = _Pool(urls, headers, sessions)
    prefix = f"load-{os.getpid()}-{int(time.time())}"
    try:
        pool.kill_at = round(sessions * turns * KILL_AT) if kill is not None else None
        cpu_before = {server.url: server.cpu_seconds() for server in measured}
        started = time.perf_counter()
        runs = asyncio.gather(*(_run_session(pool, report, n, prefix) for n in range(sessions)))
        if kill is not None:
            due: asyncio.Future[Any] = asyncio.ensure_future(pool.kill_due.wait())
            await asyncio.wait([due, runs], return_when=asyncio.FIRST_COMPLETED)
            due.cancel()
            report.killed, report.killed_after = kill.url, report.answered
            report.in_flight_at_kill = pool.in_flight[kill.url]
            pool.killing = kill.url
            await asyncio.to_thread(kill.kill)
            pool.killing, pool.dead[kill.url] = None, time.perf_counter()
        done = await runs
        report.wall_s = time.perf_counter() - started
        for server in measured:
            before, after = cpu_before[server.url], server.cpu_seconds()
            if before is not None and after is not None and report.per_replica[server.url]:
                report.replica_cpu_ms[server.url] = (after - before) * 1000 / report.per_replica[server.url]
        await _check(pool, report, list(done))
    finally:
        await pool.aclose()
    return report


def _replica_env(redis_url: str, data_dir: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOICEGRAPH_")}
    return {
        **env,
        "VOICEGRAPH_DATA_DIR": str(data_dir),
        "VOICEGRAPH_MEMORY": "redis",
        "VOICEGRAPH_REDIS_URL": redis_url,
        "VOICEGRAPH_PORT": str(port),
        "VOICEGRAPH_SPEAK": "false",
        "VOICEGRAPH_VOICES": "false",
        "VOICEGRAPH_WEB_SEARCH": "off",
        "VOICEGRAPH_WEATHER": "false",
    }


@contextmanager
def local_replicas(count: int, work_dir: Path) -> Iterator[tuple[list[ServerProcess], str]]:
    """`count` replicas on loopback sharing a redis-server: the replicas and Redis's URL."""
    with running_redis() as redis_url:
        replicas: list[ServerProcess] = []
        try:
            for number in range(count):
                port, data_dir = free_port(), work_dir / f"replica-{number}"
                data_dir.mkdir(parents=True, exist_ok=True)
                command = [
                    *(sys.executable, "-m", "uvicorn", REPLICA_APP, "--factory"),
                    *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"),
                ]
                env = _replica_env(redis_url, data_dir, port)
                replicas.append(ServerProcess(command, env, work_dir / f"replica-{number}.log", port=port))
            yield replicas, redis_url
        finally:
            for replica in replicas:
                replica.stop()


def _redis_used_mib(url: str) -> float:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"]) / (1 << 20)
    finally:
        client.close()


def run_load_bench(
    *,
    sessions: int,
    turns: int,
    replicas: int = 2,
    urls: Sequence[str] = (),
    kill: bool = False,
    api_key: str | None = None,
) -> LoadReport:
    """Against `urls`, or against `replicas` started here (which `kill` may kill one of)."""
    if urls:
        if kill:
            raise ValueError("kill needs replicas the bench started itself (no --url)")
        return asyncio.run(run_load(urls, sessions=sessions, turns=turns, api_key=api_key))
    with tempfile.TemporaryDirectory(prefix="voicegraph-load-") as tmp, local_replicas(replicas, Path(tmp)) as started:
        servers, redis_url = started
        victim = servers[0] if kill else None
        args: dict[str, Any] = {"sessions": sessions, "turns": turns, "kill": victim, "measured": servers}
        report = asyncio.run(run_load([s.url for s in servers], **args))
        report.redis_used_mib = _redis_used_mib(redis_url)
    return report
