"""How near the user's words are to what a tool does: a call the words do not ask for is
thought over again (model/base.py `PlanRequest.futile`).

A small planner offered a tool calls it on questions the tool cannot answer: "When was the
Declaration of Independence signed?" beside `calculate_age` became the age of a person born on
1776-07-04. Such a question and the tool's description are far apart in a sentence embedding
(all-MiniLM-L6-v2), as a question a tool answers and its description are not.

The bound was chosen on BFCL's live cases (users' own questions and functions, kept out of
`voicegraph eval`): under 0.2 fell 74 % of the irrelevance cases' nearest functions and 11 %
of the functions a live case needed (0.5 % of the non-live simple and multiple cases' own).
A doubt is not a veto: the planner chooses again leaning toward answering, and a call that
was asked for keeps its lead.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from retrieval.embedder import Embedder

__all__ = ["UNRELATED_BELOW", "ToolRelevance", "tool_text"]

UNRELATED_BELOW = 0.2
"""Cosine similarity under which the user's words and a tool's description are unrelated."""
_CACHED = 512
_SEPARATORS = re.compile(r"[._\-/]+")


def tool_text(spec: Mapping[str, Any]) -> str:
    """What a tool does, as its words are compared: its name in words, then its description."""
    name = _SEPARATORS.sub(" ", str(spec.get("name", ""))).strip()
    description = str(spec.get("description") or "").strip()
    return f"{name}: {description}" if description else name


class ToolRelevance:
    """Cosine similarity between what the user said and what a tool does, embeddings cached."""

    def __init__(self, embedder: Embedder, *, below: float = UNRELATED_BELOW) -> None:
        """`below`: the similarity under which a call is unrelated (0 or less: none is)."""
        self.embedder = embedder
        self.below = below
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def score(self, asked: Sequence[str], spec: Mapping[str, Any]) -> float:
        """How near the nearest of `asked` (the user's words: this turn's, alone and after the
        last turn's, for a follow-up such as "And in Rome?") is to what the tool does."""
        texts = [text for text in (t.strip() for t in asked) if text]
        if not texts:
            return 1.0
        tool, *said = self._embed([tool_text(spec), *texts])
        return max(float(tool @ vector) for vector in said)

    def unrelated(self, asked: Sequence[str], spec: Mapping[str, Any]) -> bool:
        """Whether the user's words are too far from what the tool does to ask for it."""
        return self.below > 0 and self.score(asked, spec) < self.below

    def _embed(self, texts: list[str]) -> list[np.ndarray]:
        with self._lock:  # a few milliseconds; the planner's steps take turns anyway
            missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
            for text, vector in zip(missing, self.embedder.embed(missing) if missing else [], strict=True):
                row = np.asarray(vector, dtype=np.float32)
                self._vectors[text] = row / (np.linalg.norm(row) or 1.0)
            for text in texts:
                self._vectors.move_to_end(text)
            out = [self._vectors[text] for text in texts]
            while len(self._vectors) > _CACHED:
                self._vectors.popitem(last=False)
        return out
