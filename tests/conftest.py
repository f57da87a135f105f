"""Shared fixtures. Real-path tests use the user's data dir so the converted model is reused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Where the assembled planner model lives (VOICEGRAPH_DATA_DIR, else the default data dir).

    Assembling and converting the model takes minutes, so the tests share it with the CLI.
    """
    configured = os.environ.get("VOICEGRAPH_DATA_DIR")
    return Path(configured) if configured else Path.home() / ".local" / "share" / "voicegraph"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The hostile-input corpora's counts (tests/tally.py), when any ran."""
    from tests.tally import TALLIES

    if TALLIES:
        terminalreporter.section("hostile input")
        for name, counts in sorted(TALLIES.items()):
            terminalreporter.write_line(counts.line(name))
