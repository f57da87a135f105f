"""The server's malloc arenas are limited (api/process_memory.py), checked in fresh processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

_THREADS_ALLOCATE = """
import ctypes, ctypes.util, sys, threading
from api.process_memory import limit_malloc_arenas
limited = limit_malloc_arenas() if sys.argv[1] == "limit" else None
barrier = threading.Barrier(8)
def work():
    barrier.wait()  # all at once, so that each contends for an arena
    kept = [bytearray(256 * 1024) for _ in range(64)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(limited, flush=True)
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()  # per arena, on stderr
"""


def _run(mode: str, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_ALLOCATE, mode], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_threads_share_at_most_two_arenas_once_limited() -> None:
    unlimited, arenas_before = _run("free")
    limited, arenas_after = _run("limit")
    assert (unlimited, limited) == ("None", "True")
    assert arenas_after <= 2 < arenas_before, (arenas_before, arenas_after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_an_operators_malloc_arena_max_stands() -> None:
    limited, arenas = _run("limit", MALLOC_ARENA_MAX="3")
    assert limited == "False" and arenas <= 3
