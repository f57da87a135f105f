"""Hybrid search over knowledge-base collections: vector neighbours fused with BM25.

For each base we gather a candidate pool: the query vector's nearest chunks, plus chunks
that contain the query's codes and numbers verbatim (Chroma's full-text `$contains`).
Each candidate scores `max(cosine, (1 - w) * cosine + w * lexical)`: the lexical match can
lift a chunk (an exact code, a name) but never sinks a good paraphrase that shares no
words with the question. Candidates under the floor are dropped, so an unanswerable
question gets nothing rather than the least bad passage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.errors import InvalidFilterError
from retrieval.lexical import distinctive_terms, lexical_scores

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["DEFAULT_LEXICAL_WEIGHT", "DEFAULT_MIN_SCORE", "Hit", "hybrid_search", "where_clause"]

DEFAULT_LEXICAL_WEIGHT = 0.4
"""Share of the lexical score in the fused one; see DEFAULT_MIN_SCORE for the calibration."""
DEFAULT_MIN_SCORE = 0.345
"""Fused score a chunk needs to count as relevant. Calibrated on MiniLM with title-prefixed
chunks on the `voicegraph kb bench` set (12 documents, 60 look-alike distractors): the
answer's best chunk scored at least 0.373 on all 26 questions, the best chunk for 8 unrelated
questions at most 0.316. On cosine alone the ranges overlap (answers down to 0.24, unrelated
up to 0.274) because bare codes such as "ci-07" or "88231" barely embed."""
_POOL_FACTOR = 5
_FILTERABLE = frozenset({"doc_id", "source", "title", "chunk_index"})
_BAD_FILTER = "cannot filter on {key!r}: use one of " + ", ".join(sorted(_FILTERABLE))


@dataclass(frozen=True)
class Hit:
    text: str
    score: float
    """The fused score, max(vector, (1 - w) * vector + w * lexical): higher is closer."""
    doc_id: str
    source: str
    title: str
    chunk_index: int
    base: str
    start: int
    end: int
    ingested_at: str = ""
    vector_score: float = 0.0
    """Cosine similarity to the query (1 - Chroma's cosine distance)."""
    lexical_score: float = 0.0
    """BM25 over the candidate pool, scaled to [0, 1]."""


def where_clause(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Equality filters on chunk metadata as a Chroma `where` clause (lists mean "any of")."""
    if not filters:
        return None
    clauses: list[dict[str, Any]] = []
    for key, value in filters.items():
        if key not in _FILTERABLE:
            raise InvalidFilterError(_BAD_FILTER.format(key=key))
        clauses.append({key: {"$in": list(value)} if isinstance(value, list | tuple) else value})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _hit(base: str, text: str, meta: Mapping[str, Any], score: float, vector: float, lexical: float) -> Hit:
    return Hit(
        text=text,
        score=score,
        doc_id=str(meta.get("doc_id", "")),
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        chunk_index=int(meta.get("chunk_index", 0)),
        base=base,
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        ingested_at=str(meta.get("ingested_at", "")),
        vector_score=vector,
        lexical_score=lexical,
    )


def _variants(term: str) -> list[str]:
    # `$contains` is case-sensitive; codes are usually written upper-case, ASR writes lower.
    return list(dict.fromkeys([term, term.upper(), term.lower()]))


def _pool(
    collection: Collection, vector: Sequence[float], query: str, size: int, where: Mapping[str, Any] | None
) -> dict[str, tuple[str, Mapping[str, Any], float | None]]:
    """id -> (text, metadata, cosine or None when only the full-text match found it)."""
    found = collection.query(
        query_embeddings=np.asarray([vector], dtype=np.float32),
        n_results=min(size, collection.count()),
        where=dict(where) if where else None,
        include=["documents", "metadatas", "distances"],
    )
    pool: dict[str, tuple[str, Mapping[str, Any], float | None]] = {}
    rows = zip(
        found["ids"][0],
        (found["documents"] or [[]])[0],
        (found["metadatas"] or [[]])[0],
        (found["distances"] or [[]])[0],
        strict=True,
    )
    for chunk_id, text, meta, distance in rows:
        pool[chunk_id] = (text or "", meta, 1.0 - float(distance))
    codes = [v for term in distinctive_terms(query) for v in _variants(term)]
    if codes:
        contains: list[dict[str, Any]] = [{"$contains": c} for c in codes]
        clause: Any = contains[0] if len(contains) == 1 else {"$or": contains}
        exact = collection.get(
            where=dict(where) if where else None, where_document=clause, limit=size, include=["documents", "metadatas"]
        )
        for chunk_id, text, meta in zip(exact["ids"], exact["documents"] or [], exact["metadatas"] or [], strict=True):
            pool.setdefault(chunk_id, (text or "", meta, None))
    return pool


def _cosines(collection: Collection, ids: list[str], vector: Sequence[float]) -> dict[str, float]:
    """Cosine of the query to chunks found only by full text (their vectors are unit length)."""
    if not ids:
        return {}
    got = collection.get(ids=ids, include=["embeddings"])
    embeddings = got["embeddings"]
    if embeddings is None:
        return {}
    scores = np.asarray(embeddings, dtype=np.float32) @ np.asarray(vector, dtype=np.float32)
    return {chunk_id: float(score) for chunk_id, score in zip(got["ids"], scores, strict=True)}


def hybrid_search(
    collections: Sequence[tuple[str, Collection]],
    vector: Sequence[float],
    query: str,
    *,
    top_k: int,
    min_score: float,
    lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
    filters: Mapping[str, Any] | None = None,
) -> list[Hit]:
    """The best `top_k` chunks across (base name, collection) pairs, best first, above the floor."""
    where = where_clause(filters)
    size = max(top_k * _POOL_FACTOR, 20)
    hits: list[Hit] = []
    for base, collection in collections:
        pool = _pool(collection, vector, query, size, where)
        missing = _cosines(collection, [i for i, (_, _, cos) in pool.items() if cos is None], vector)
        entries = list(pool.items())
        lexical = lexical_scores(query, [f"{meta.get('title', '')}\n{text}" for _, (text, meta, _) in entries])
        for (chunk_id, (text, meta, cosine)), lex in zip(entries, lexical, strict=True):
            vec = cosine if cosine is not None else missing.get(chunk_id, 0.0)
            score = max(vec, (1 - lexical_weight) * vec + lexical_weight * lex)
            if score >= min_score:
                hits.append(_hit(base, text, meta, score, vec, lex))
    hits.sort(key=lambda h: h.score, reverse=True)
    return hits[:top_k]
