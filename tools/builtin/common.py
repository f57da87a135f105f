"""What the built-in tools that read the network share: a small expiring cache, and the
flattening of untrusted text (web pages, place names from a geocoder) before a model reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TtlCache", "flatten_untrusted"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_FORGED = re.compile(r"<\|[^|>]*\|>|</?tool_call>|<<<|>>>|```", re.IGNORECASE)
"""Chat-template tokens (`<|im_start|>`), tool-call tags, fence markers and code fences: text
that could close a fenced block, forge a turn or forge a call."""


def flatten_untrusted(text: str, limit: int) -> str:
    """`text` on one line, without forged markers, cut to `limit` characters (an ellipsis ends a cut)."""
    flat = " ".join(_FORGED.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class TtlCache(Generic[K, V]):
    """Values per key for `ttl_s` seconds, at most `size` of them (the oldest out first);
    a ttl of 0 keeps nothing. Callers put only successes, so a failure is tried again."""

    def __init__(self, ttl_s: float, clock: Callable[[], float], size: int = 256) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._size = size
        self._rows: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._rows.get(key)
        if hit is None or self._clock() - hit[0] > self._ttl:
            self._rows.pop(key, None)
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        self._rows.pop(key, None)
        if len(self._rows) >= self._size:
            self._rows.pop(next(iter(self._rows)))
        self._rows[key] = (self._clock(), value)

    def __len__(self) -> int:
        return len(self._rows)
