"""What the turn's tools know of this tenant, read once a turn: a note for the planner, the
names the recognizer should expect, and which tools have nothing for it (the knowledge search
without a document: "Can you tell me a fun fact about octopuses?" went there and was answered
"I couldn't find any information about a fun fact about octopuses in your documents.").

The knowledge tool knows which names the user's documents use ("Zorblat reactor", "Kestrel
lab"). Told them, the recognizer hears "Zorblat" instead of "more black" (on a spoken set of
such names, word error 33 % without and 12 % with), and the planner sends a question about
one to the documents instead of the web. A tool that cannot say (its store is down) adds
nothing and the turn goes on.

The hooks block (Chroma, the voice registrations), so they run on a worker thread, and a
thread's hand-offs cost more than the reads themselves when many turns run at once. The
service keeps each tenant's vocabulary (`VocabularyCache`) while the tenant's generation
stays the same: any replica that changes the tenant's registrations or knowledge bases
moves it (retrieval/registrations.py), so the next turn anywhere reads them again. What a
hook reads elsewhere (a Python tool's own store) is read again at least every `MAX_AGE_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from retrieval.vocabulary import words_of
from tools.base import Tool, ToolContext, Vocabulary

if TYPE_CHECKING:
    from agent.context import TurnContext

__all__ = ["MAX_AGE_S", "TurnVocabulary", "VocabularyCache", "claimed_by", "gather", "hearing_hint"]

log = logging.getLogger(__name__)

_MAX_WORDS = 40
_RECENT_CHARS = 200
"""Of the user's last words, the end kept in the hint (a follow-up's context: "And in Rome?")."""
MAX_AGE_S = 30.0
"""The longest a kept vocabulary is used while the tenant's generation stays the same."""
_MAX_KEPT = 1024
"""Vocabularies kept at once (tenant and bases); the least recently used goes first."""

_Hooks = list[tuple[str, Callable[[ToolContext], Vocabulary]]]
_Kept = tuple[int, float, "asyncio.Future[tuple[Vocabulary, bool]]"]
"""A tenant's vocabulary as kept: the generation and the time it was read at, and the read."""


class TurnVocabulary:
    """The turn's vocabulary, gathered from its tools on first use and kept for the turn."""

    def __init__(self) -> None:
        self._task: asyncio.Future[Vocabulary] | None = None

    async def get(self, ctx: TurnContext) -> Vocabulary:
        if self._task is None:
            self._task = asyncio.ensure_future(ctx.deps.vocabulary(list(ctx.tools), ctx.tool_context()))
        return await asyncio.shield(self._task)


class VocabularyCache:
    """Each tenant's vocabulary, kept while `generation(tenant)` answers the same and for at
    most `max_age_s`. Turns that find none kept wait for the one read under way."""

    def __init__(
        self,
        generation: Callable[[str], Awaitable[int]],
        *,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._generation = generation
        self._max_age_s = max_age_s
        self._clock = clock
        self._kept: OrderedDict[tuple[object, ...], _Kept] = OrderedDict()

    async def get(self, tools: Sequence[Tool], context: ToolContext) -> Vocabulary:
        hooks = _hooks(tools)
        if not hooks:
            return Vocabulary()
        try:
            generation = await self._generation(context.tenant)
        except Exception:  # the turn finds out for itself whether the memory is down
            log.warning("could not read the generation of %s; its vocabulary is read afresh", context.tenant)
            return (await _read(hooks, context))[0]
        key = (context.tenant, context.knowledge_bases, *(hook for _, hook in hooks))
        entry = self._kept.get(key)
        if entry is None or entry[0] != generation or self._clock() - entry[1] > self._max_age_s:
            entry = (generation, self._clock(), asyncio.ensure_future(_read(hooks, context)))
            self._kept[key] = entry
            if len(self._kept) > _MAX_KEPT:
                self._kept.popitem(last=False)
        self._kept.move_to_end(key)
        reading = entry[2]
        try:
            vocabulary, _ = await asyncio.shield(reading)
        finally:
            if _unfit(reading) and self._kept.get(key) is entry:  # read again by the next turn
                del self._kept[key]
        return vocabulary


def _unfit(reading: asyncio.Future[tuple[Vocabulary, bool]]) -> bool:
    """A read that ended without every tool's answer: not kept."""
    return reading.done() and (reading.cancelled() or reading.exception() is not None or not reading.result()[1])


def _hooks(tools: Sequence[Tool]) -> _Hooks:
    return [(tool.spec.name, tool.vocabulary) for tool in tools if tool.vocabulary is not None]


async def gather(tools: Sequence[Tool], context: ToolContext) -> Vocabulary:
    """Every tool's vocabulary for this tenant, read on a worker thread, joined."""
    hooks = _hooks(tools)
    return (await _read(hooks, context))[0] if hooks else Vocabulary()


async def _read(hooks: _Hooks, context: ToolContext) -> tuple[Vocabulary, bool]:
    """The hooks' vocabularies joined, and whether every hook answered."""

    def read() -> tuple[Vocabulary, bool]:
        notes: list[str] = []
        words: list[str] = []
        idle: list[str] = []
        claims: list[tuple[str, str]] = []
        whole = True
        for name, hook in hooks:
            try:
                found = hook(context)
            except Exception:  # a store that is down costs the hint, not the turn
                log.warning("could not read the vocabulary of tool %s", name, exc_info=True)
                whole = False
                continue
            notes += [found.note] if found.note else []
            words += found.words
            idle += found.idle
            claims += found.claims
        vocabulary = Vocabulary(
            note="\n".join(notes),
            words=tuple(dict.fromkeys(words))[:_MAX_WORDS],
            idle=tuple(idle),
            claims=tuple(claims),
        )
        return vocabulary, whole

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
