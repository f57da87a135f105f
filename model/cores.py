"""How the process's cores are shared between the planner and the speech models.

On a small CPU the planner's llama.cpp threads meet at a barrier after each operation of
each token, so when the voice or the recognizer takes one of the cores, every barrier waits
for the thread that was put aside. Measured on two cores (`voicegraph bench latency`
explains the turn-level effect): the planner decoded 12.4 tokens/s alone on two threads;
beside a voice synthesizing on one thread, 1.9 tokens/s on two threads but 6.7 on one (as
fast as one thread alone); beside the voice's default two spinning threads, 0.7.

So the voice runs on one thread, the voice and the recognizer say when they are at work
(`busy`), and the planner uses every core only while neither is (`planner_threads`, read before each
batch it evaluates).

Work on OpenMP's threads (llama.cpp's decoding, torch's operators in the speaker encoder)
runs on one thread of the process (`on_openmp_thread`). OpenMP keeps a team of threads for
each thread that opens a parallel region, and its threads wait between barriers by spinning a
moment before they sleep only while all the teams count no more threads than there are cores;
past that, every wait sleeps at once. Steps ran on whichever worker thread was free: on two
cores a token took 37 ms instead of 25-27 once a few teams stood, and 42-44 ms after the
speaker encoder had embedded one clip on a thread of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from model.llm import default_threads

__all__ = ["CORES", "CoreShare", "on_openmp_thread"]

T = TypeVar("T")


class CoreShare:
    """The cores of the process, and how many of them the speech models are using now."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or default_threads()
        self._busy = 0
        self._lock = threading.Lock()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """A speech model is computing on one core for the length of the block."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    def planner_threads(self, most: int | None = None) -> int:
        """The threads the planner should use now: the cores nobody else is using, at least one."""
        free = max(1, self.cores - self._busy)
        return min(free, most) if most else free


CORES = CoreShare()
"""The process's share: the speech models and the planner engine all report to it."""


_openmp: ThreadPoolExecutor | None = None
_openmp_lock = threading.Lock()
_on_openmp = threading.local()


def on_openmp_thread(work: Callable[[], T]) -> T:
    """`work()`, which computes on OpenMP's threads, on the process's one thread for that
    (see above); its result, or its error raised here. Called from that thread, at once."""
    global _openmp
    if getattr(_on_openmp, "active", False):
        return work()
    with _openmp_lock:
        if _openmp is None:
            _openmp = ThreadPoolExecutor(1, "openmp", initializer=_mark_openmp)
    return _openmp.submit(work).result()


def _mark_openmp() -> None:
    _on_openmp.active = True
