"""A throwaway redis-server on a loopback port, for tests on real Redis.

No persistence by default; with `data_dir`, an append-only file there (fsync on every
write), so a test can stop the server and start it again on the same port and data.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

__all__ = ["free_port", "running_redis"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_redis(port: int | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """A private redis-server (on `port`, else a free one); yields its URL and stops it afterwards."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run deploy/bootstrap.sh"
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
