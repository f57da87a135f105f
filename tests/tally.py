"""Counts the hostile-input tests keep as they run, printed at the end of the pytest run.

`pytest -q` shows them under "hostile input" (tests/conftest.py): how many cases each corpus
tried, how many answered 5xx (the tests fail on any), and the peak memory they were seen to
cost, so the figures are read from a run, not estimated.
"""

from __future__ import annotations

import resource
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["TALLIES", "Tally", "rss_mb", "tally"]


@dataclass
class Tally:
    cases: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    peak_heap_mb: float = 0.0
    """The most Python heap (numpy included) one case was traced to take, in MB."""
    rss_growth_mb: float = 0.0
    """How far the process's peak resident memory rose past where the corpus began, in MB."""

    def record(self, status: int, *, heap_bytes: int = 0, rss_growth_mb: float = 0.0) -> None:
        self.cases += 1
        self.statuses[status] += 1
        self.server_errors += status >= 500
        self.peak_heap_mb = max(self.peak_heap_mb, heap_bytes / 2**20)
        self.rss_growth_mb = max(self.rss_growth_mb, rss_growth_mb)

    def line(self, name: str) -> str:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        measured = self.peak_heap_mb or self.rss_growth_mb
        memory = f"; peak heap {self.peak_heap_mb:.1f} MB, peak RSS +{self.rss_growth_mb:.0f} MB" if measured else ""
        return f"{name}: {self.cases} cases, {self.server_errors} 5xx ({statuses}){memory}"


TALLIES: dict[str, Tally] = {}


def tally(name: str) -> Tally:
    return TALLIES.setdefault(name, Tally())


def rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
