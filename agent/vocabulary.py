"""What the turn's tools know of this tenant, read once a turn: a note for the planner, the
names the recognizer should expect, and which tools have nothing for it (the knowledge search
without a document: "Can you tell me a fun fact about octopuses?" went there and was answered
"I couldn't find any information about a fun fact about octopuses in your documents.").

The knowledge tool knows which names the user's documents use ("Zorblat reactor", "Kestrel
lab"). Told them, the recognizer hears "Zorblat" instead of "more black" (on a spoken set of
such names, word error 33 % without and 12 % with), and the planner sends a question about
one to the documents instead of the web. A tool that cannot say (its store is down) adds
nothing and the turn goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from retrieval.vocabulary import words_of
from tools.base import Tool, ToolContext, Vocabulary

if TYPE_CHECKING:
    from agent.context import TurnContext

__all__ = ["TurnVocabulary", "claimed_by", "hearing_hint"]

log = logging.getLogger(__name__)

_MAX_WORDS = 40
_RECENT_CHARS = 200
"""Of the user's last words, the end kept in the hint (a follow-up's context: "And in Rome?")."""


class TurnVocabulary:
    """The turn's vocabulary, gathered from its tools on first use and kept for the turn."""

    def __init__(self) -> None:
        self._task: asyncio.Future[Vocabulary] | None = None

    async def get(self, ctx: TurnContext) -> Vocabulary:
        if self._task is None:
            self._task = asyncio.ensure_future(gather(list(ctx.tools), ctx.tool_context()))
        return await asyncio.shield(self._task)


async def gather(tools: Sequence[Tool], context: ToolContext) -> Vocabulary:
    """Every tool's vocabulary for this tenant, read on a worker thread, joined."""
    hooks = [(tool.spec.name, tool.vocabulary) for tool in tools if tool.vocabulary is not None]
    if not hooks:
        return Vocabulary()

    def read() -> Vocabulary:
        notes: list[str] = []
        words: list[str] = []
        idle: list[str] = []
        claims: list[tuple[str, str]] = []
        for name, hook in hooks:
            try:
                found = hook(context)
            except Exception:  # a store that is down costs the hint, not the turn
                log.warning("could not read the vocabulary of tool %s", name, exc_info=True)
                continue
            notes += [found.note] if found.note else []
            words += found.words
            idle += found.idle
            claims += found.claims
        return Vocabulary(
            note="\n".join(notes),
            words=tuple(dict.fromkeys(words))[:_MAX_WORDS],
            idle=tuple(idle),
            claims=tuple(claims),
        )

    return await asyncio.to_thread(read)


def hearing_hint(vocabulary: Vocabulary, previous: str | None) -> str:
    """What the recognizer reads before the audio: what the user said last turn, then the names."""
    recent = " ".join((previous or "").split())[-_RECENT_CHARS:]
    names = f"Names: {', '.join(vocabulary.words)}." if vocabulary.words else ""
    return " ".join(part for part in (recent, names) if part)


def claimed_by(vocabulary: Vocabulary, said: str) -> str | None:
    """The tool whose words `said` says: a word only its data knows (`Vocabulary.claims`),
    "Zorblat" for the search of documents about the Zorblat reactor; None when it says none,
    or when that tool has nothing for the tenant now."""
    words = words_of(said)
    return next((tool for tool, word in vocabulary.claims if word in words and tool not in vocabulary.idle), None)
