"""A real uvicorn server on a loopback port chosen by the OS, for end-to-end HTTP tests."""

from __future__ import annotations

import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI


@contextmanager
def running_server(app: FastAPI, startup_timeout_s: float = 600.0) -> Iterator[str]:
    """Serve `app` in a thread; yields its base URL and stops it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # As `voicegraph serve` runs it: X-Forwarded-For is the app's to judge (VOICEGRAPH_TRUSTED_PROXIES).
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", proxy_headers=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    except httpx.TimeoutException as error:  # where the server was when its client gave up
        error.add_note(thread_stacks())
        raise
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def thread_stacks(frames: int = 14) -> str:
    """Every thread of the process and the last `frames` frames of its stack."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    out = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame)[-frames:])
        out.append(f"--- thread {names.get(ident, ident)}\n{stack}")
    return "\n".join(out)
