"""The lexical half of hybrid search: BM25 over the candidate pool, scaled to [0, 1].

Embeddings match meaning but blur exact strings: "ZX-4471" and "ZX-4417" embed almost
alike, and a bare invoice number has no meaning to match. BM25 matches the strings. It is
scored over the pool of candidates a search gathered (vector neighbours plus chunks that
contain the query's codes verbatim) rather than over a whole-base index, so it needs no
second store to keep in step with Chroma, and replicas sharing a Chroma server agree.

The score is normalised by what a chunk holding every query term once would get, so it
means "how much of the query's weight this chunk contains": an absolute number that can
be fused with the cosine and held against a fixed relevance floor (rank-based fusion such
as RRF cannot: its best hit scores the same however poor it is).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["distinctive_terms", "lexical_scores", "terms"]

_TOKEN = re.compile(r"[^\W_]+(?:[-_./][^\W_]+)*")
_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just me more most my no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours tell please know find give get say said""".split()
)
_K1 = 1.2
_B = 0.75


def terms(text: str) -> list[str]:
    """Lower-case word tokens without stop words; a code like "zx-4471" also yields its parts."""
    found: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        parts = re.split(r"[-_./]", token)
        found.extend(t for t in ([token, *parts] if len(parts) > 1 else [token]) if t not in _STOPWORDS)
    return found


def distinctive_terms(query: str, limit: int = 3) -> list[str]:
    """The query's strings worth finding verbatim: codes and numbers (anything with a digit).

    These are what embeddings miss; searching each with Chroma's full-text `$contains`
    brings chunks into the pool that the vector search ranked too low to return.
    """
    seen: list[str] = []
    for match in _TOKEN.finditer(query):
        token = match.group().strip("./")
        if any(c.isdigit() for c in token) and len(token) >= 3 and token not in seen:
            seen.append(token)
    return sorted(seen, key=len, reverse=True)[:limit]


def lexical_scores(query: str, texts: Sequence[str]) -> list[float]:
    """For each text, its BM25 score for `query` over the pool `texts`, scaled to [0, 1]."""
    wanted = set(terms(query))
    if not wanted or not texts:
        return [0.0] * len(texts)
    counts = [Counter(t for t in terms(text) if t in wanted) for text in texts]
    lengths = [max(1, len(text.split())) for text in texts]
    average = sum(lengths) / len(lengths)
    size = len(texts)
    frequency = Counter(term for count in counts for term in count)
    idf = {t: math.log(1 + (size - frequency[t] + 0.5) / (frequency[t] + 0.5)) for t in wanted}
    ideal = sum(idf.values())
    scores = []
    for count, length in zip(counts, lengths, strict=True):
        norm = _K1 * (1 - _B + _B * length / average)
        bm25 = sum(idf[t] * tf * (_K1 + 1) / (tf + norm) for t, tf in count.items())
        scores.append(min(1.0, bm25 / ideal))
    return scores
