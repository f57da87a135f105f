"""Which tokens a model context holds, and the KV states of sessions kept for later.

A conversation's prompt only grows: each planning step, and each turn, appends to the text
the model has already read. So a step need only prefill what is new, if the model's KV
cache still holds the rest. Two things make that hold:

- `Sequence` remembers the text behind every token in a context. A new prompt is compared
  with it as text, and only the text past the common part is tokenized and prefilled: a
  tokenizer that would split the joined text differently from its pieces (BPE merges across
  the seam) cannot cost a re-prefill of everything after the seam.
- `KVStates` keeps the KV state of conversations the context has moved away from (another
  session took the model), least recently used out, within a byte budget; a step picks the
  one sharing the longest beginning with its prompt. The system block is part of every
  conversation, so a new session starts from any kept state at least that far.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from array import array
from collections import OrderedDict
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KVStates", "SavedStates", "Sequence", "common_prefix"]


def common_prefix(a: bytes, b: bytes) -> int:
    """The length of the longest common beginning of `a` and `b` (bisection over C-speed compares)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass
class Sequence:
    """Tokens in a context, with the UTF-8 text each one stands for."""

    tokens: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    """Where each token's text ends in `text`, in bytes."""
    text: bytes = b""

    def __len__(self) -> int:
        return len(self.tokens)

    def extend(self, tokens: SequenceOf[int], pieces: SequenceOf[bytes]) -> None:
        end = len(self.text)
        for token, piece in zip(tokens, pieces, strict=True):
            end += len(piece)
            self.tokens.append(token)
            self.ends.append(end)
        self.text += b"".join(pieces)

    def truncate(self, n_tokens: int) -> None:
        del self.tokens[n_tokens:], self.ends[n_tokens:]
        self.text = self.text[: self.ends[-1]] if self.ends else b""

    def shared_tokens(self, prompt: bytes) -> int:
        """How many of our tokens stand for text that `prompt` begins with."""
        return bisect.bisect_right(self.ends, common_prefix(self.text, prompt))

    def copy(self) -> Sequence:
        return Sequence(list(self.tokens), list(self.ends), self.text)


@dataclass
class _Entry:
    sequence: Sequence
    state: bytes


class KVStates:
    """Saved KV states by the sequence they hold; the least recently used go beyond `budget_bytes`."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def put(self, sequence: Sequence, state: bytes) -> None:
        """Keep `state`; kept states whose text it extends are dropped, as it serves them as well."""
        if len(state) > self.budget_bytes:
            return
        for key in [key for key in self._entries if sequence.text.startswith(key)]:
            self._drop(key)
        self._entries[sequence.text] = _Entry(sequence.copy(), state)
        self._bytes += len(state)
        while self._bytes > self.budget_bytes:
            self._drop(next(iter(self._entries)))

    def best(self, prompt: bytes) -> tuple[Sequence, bytes, int] | None:
        """The kept state sharing the most tokens with `prompt`: (sequence, state, shared tokens)."""
        found: tuple[bytes, int] | None = None
        for key, entry in self._entries.items():
            shared = entry.sequence.shared_tokens(prompt)
            if shared and (found is None or shared > found[1]):
                found = (key, shared)
        if found is None:
            return None
        self._entries.move_to_end(found[0])
        entry = self._entries[found[0]]
        return entry.sequence.copy(), entry.state, found[1]

    def _drop(self, key: bytes) -> None:
        self._bytes -= len(self._entries.pop(key).state)


class SavedStates:
    """KV states on disk, one file per token sequence read with `keep_on_disk`; the newest
    replaces the others (the system block changes with the date and the tools)."""

    def __init__(self, directory: Path | None, identity: str) -> None:
        self.directory = directory
        self._identity = identity.encode()

    def _path(self, tokens: list[int]) -> Path:
        assert self.directory is not None
        digest = hashlib.sha256(self._identity + array("i", tokens).tobytes()).hexdigest()
        return self.directory / f"{digest[:32]}.kv"

    def load(self, tokens: list[int]) -> bytes | None:
        if self.directory is None:
            return None
        try:
            return self._path(tokens).read_bytes()
        except OSError:
            return None

    def save(self, tokens: list[int], state: bytes) -> None:
        if self.directory is None:
            return
        path = self._path(tokens)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for old in self.directory.glob("*.kv"):
                old.unlink(missing_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(state)
            partial.replace(path)
        except OSError:
            pass  # only start-up time is lost
