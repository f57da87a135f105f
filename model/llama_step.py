"""One planning step on the llama.cpp engine (model/llama_engine.py): literal text appended,
text sampled under a grammar, tokens guessed from the conversation and checked in a batch."""

from __future__ import annotations

import codecs
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model.llm import Completion

if TYPE_CHECKING:
    from model.llama_engine import LlamaCppEngine

__all__ = ["Counts", "LlamaStep"]


@dataclass
class Counts:
    """What a step read, took up from the context, and wrote, in tokens."""

    prompt: int = 0
    reused: int = 0
    completion: int = 0


class LlamaStep:
    """One planning step holding the model: append literal text, sample text under a grammar.

    Tokens are evaluated lazily: appended text waits until the next `sample`, and the last
    sampled token waits too, so a planner that stops reading once it has what it needs
    (a closing quote) pays for no token after it.

    A mark set among tokens not read yet keeps the logits there when they are read: rewound
    to straight after, the step samples from them rather than reading the token before the
    mark again (a direct answer goes back to before the call it opened: ~40 ms on two cores).
    """

    def __init__(self, engine: LlamaCppEngine, text: bytes, counts: Counts) -> None:
        self._engine = engine
        self._counts = counts
        self._pending: list[int] = []
        self._parts: list[str] = []
        self._marks: set[int] = set()
        """Positions in `_pending` marked: their logits are kept when it is read."""
        self._logits: dict[int, int] = {}
        """Marked positions in the context, and where their logits are, until the next batch."""
        self._resume_at: int | None = None
        """Where to sample next without reading anything: rewound to a kept mark."""
        self._first: tuple[int, dict[int, float]] = (-1, {})
        """The first token the last `sample` wrote, and the logits there of it and of its `bias` texts'."""
        self.completion: Completion | None = None
        """What the step read and wrote, set when it ends."""
        self._add(text)

    def append(self, text: str) -> None:
        self._add(text.encode("utf-8"))

    def _add(self, text: bytes) -> None:
        tokens = self._engine.tokenize(text)
        self._counts.prompt += len(tokens)
        self._pending.extend(tokens)

    def prefill(self, *, keep_on_disk: bool = False) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._evaluate(pending, keep_on_disk=keep_on_disk)

    def mark(self) -> tuple[int, int]:
        if self._pending:
            self._marks.add(len(self._pending))
        return self._engine.tokens_read() + len(self._pending), len(self._parts)

    def rewind(self, mark: tuple[int, int]) -> None:
        at, parts = mark
        read = self._engine.tokens_read()
        if at >= read:
            self._pending = self._pending[: at - read]
        else:
            self._engine.drop(read - at)
            self._pending = []
            self._resume_at = self._logits.get(at)
        del self._parts[parts:]

    def _evaluate(self, tokens: list[int], *, keep_on_disk: bool = False, logits_all: bool = False) -> None:
        """Read `tokens`, keeping the logits at the marks among them."""
        read = self._engine.tokens_read()
        marked = [mark - 1 for mark in self._marks if 0 < mark <= len(tokens)]
        self._marks.clear()
        self._resume_at = None
        kept = self._engine.evaluate(tokens, keep_on_disk=keep_on_disk, logits_all=logits_all, logits_at=marked)
        self._logits = {read + at + 1: index for at, index in kept.items()}

    def sample(
        self,
        *,
        grammar: str | None = None,
        max_tokens: int = 256,
        forced: str = "",
        bias: Mapping[str, float] | None = None,
    ) -> Generator[str, None, None]:
        """Greedy text, as it is decoded, until the grammar is complete, an end of turn, or
        `max_tokens`; stop reading whenever you like. `forced` comes first, prefilled. `bias`:
        added to the logit of each text's first token, for the first token written."""
        engine = self._engine
        sampler = engine.sampler(grammar)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        unread = 0
        try:
            if forced:
                tokens = engine.tokenize(forced.encode("utf-8"))
                tokens = tokens[: sampler.force(tokens)]
                self._counts.prompt += len(tokens)
                self._pending.extend(tokens)
                text = b"".join(engine.piece(t) for t in tokens).decode("utf-8", "replace")
                self._parts.append(text)
                yield text
            pending, self._pending = self._pending, []
            resume_at, self._resume_at = self._resume_at, None
            if pending or resume_at is None:
                self._evaluate(pending)
                resume_at = -1
            first_bias = {engine.tokenize(t.encode("utf-8"))[0]: b for t, b in (bias or {}).items() if t}
            token = sampler.sample(engine.context.ctx, resume_at, bias=first_bias, watch=first_bias)
            self._first, written = (token, sampler.seen), 0
            while written < max_tokens and not engine.is_end(token):
                written += 1
                self._pending = [token]  # read with the next batch, if the caller reads on
                if text := self._wrote(token, decoder):
                    yield text
                guesses = engine.draft(token, max_tokens - written)
                self._evaluate(self._pending + guesses, logits_all=bool(guesses))
                self._pending, unread = [], len(guesses)
                for at, guess in enumerate(guesses):  # what the model writes after each guess
                    token = sampler.sample(engine.context.ctx, at)
                    if token != guess or engine.is_end(token):
                        break
                    written, unread = written + 1, unread - 1
                    if text := self._wrote(token, decoder):
                        yield text
                else:
                    token = sampler.sample(engine.context.ctx, len(guesses))
                engine.drop(unread)
                unread = 0
        finally:
            engine.drop(unread)  # guesses read into the context but never given to the caller
            sampler.close()

    def lead(self, text: str) -> float:
        """How far the first token the last `sample` wrote led `text`'s first token there, in
        logits before any bias (0 when they are the same token); `text` is one of its `bias` texts."""
        token, seen = self._first
        other = self._engine.tokenize(text.encode("utf-8"))[0]
        return seen[token] - seen[other]

    def _wrote(self, token: int, decoder: codecs.IncrementalDecoder) -> str:
        self._counts.completion += 1
        text = decoder.decode(self._engine.piece(token))
        self._parts.append(text)
        return text

    @property
    def text(self) -> str:
        """Everything sampled in this step so far."""
        return "".join(self._parts)
