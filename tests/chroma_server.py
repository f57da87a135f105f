"""A throwaway Chroma server on a loopback port (`chroma run`, from the chromadb package),
for tests of knowledge bases on a real server, as replicas share one in production."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from api.processes import free_port

__all__ = ["running_chroma"]

CHROMA_MISSING = "the chromadb package ships the `chroma` CLI: run deploy/test.sh"


@contextlib.contextmanager
def running_chroma(path: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """A private Chroma server keeping its data in `path`; yields its URL and stops it afterwards."""
    binary = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if binary is None:
        raise RuntimeError(CHROMA_MISSING)
    port = free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    args = [binary, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the chroma server did not start on port {port}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
