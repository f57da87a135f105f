"""Servers the benchmarks start on loopback: a free port, a private redis-server, and an
HTTP server in a process of its own that counts as up once it answers.

A process of its own (not a thread) so that a server's start-up and peak memory are its
alone, and so that it can be killed outright, as a crashed replica would die.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import redis

__all__ = ["ServerProcess", "free_port", "running_redis"]

REDIS_MISSING = "redis-server is missing: run deploy/test.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_redis(port: int | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """A private redis-server (on `port`, else a free one); yields its URL and stops it afterwards.

    No persistence by default; with `data_dir`, an append-only file there (fsync on every
    write), so the server can be stopped and started again on the same port and data.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(REDIS_MISSING)
    port = port or free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if data_dir is not None:
        args[-1] = "yes"
        args += ["--appendfsync", "always", "--dir", str(data_dir)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), read before it ends."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class ServerProcess:
    """`command` run with `env` (output to `log`), up once `GET {url}{ready_path}` answers 200.

    The command must listen on `port` (pick it with `free_port()`); `ready_s` is the time
    from start to the first good answer.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        *,
        port: int,
        ready_path: str = "/healthz",
        ready_timeout_s: float = 600.0,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        started = time.perf_counter()
        self._log = log.open("w")
        self.process = subprocess.Popen(list(command), env=dict(env), stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self.ready_s = self._wait_ready(started, ready_path, ready_timeout_s)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, started: float, path: str, timeout_s: float) -> float:
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped while starting; its log: {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s; its log: {self.log}")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float | None:
        """CPU time the process has used so far (user and system); None once it is gone, or off Linux."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as a crashed replica does."""
        if self.alive:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()

    def stop(self) -> float:
        """Stop it gracefully; its peak memory."""
        peak = _peak_rss_mib(self.process.pid)
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()
        return peak
