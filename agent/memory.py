"""Session memory: the LangGraph checkpointer chosen by settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

__all__ = ["MemoryKind", "open_checkpointer"]

MemoryKind = Literal["sqlite", "memory"]


@asynccontextmanager
async def open_checkpointer(kind: MemoryKind, path: Path | None = None) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """SQLite at `path` (the embedded default), or in-memory for tests."""
    if kind == "memory":
        yield InMemorySaver()
        return
    if path is None:
        raise ValueError("the sqlite checkpointer needs a path")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver
