"""Request and response bodies of the knowledge-base API (/v1/knowledge-bases)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_TURN_BASES",
    "BaseNames",
    "DocumentPublic",
    "FileOutcomePublic",
    "IngestReportPublic",
    "KnowledgeBaseCreate",
    "KnowledgeBasePublic",
    "SearchHitPublic",
    "SearchPublic",
    "SearchRequest",
    "TextDocumentCreate",
]

FilterValue = str | int | list[str] | list[int]
MAX_TURN_BASES = 16
"""Knowledge bases one turn or search may name (each costs a lookup); all of them: name none."""
BaseNames = Annotated[list[Annotated[str, Field(min_length=1, max_length=63)]], Field(max_length=MAX_TURN_BASES)]
"""A list of knowledge base names, as a turn or a search names them."""


class KnowledgeBaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    """Letters, digits and single - or _."""


class KnowledgeBasePublic(BaseModel):
    name: str
    chunks: int


class TextDocumentCreate(BaseModel):
    """Raw text as a document; sending the same title (or doc_id) again replaces it."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=200)
    doc_id: str | None = Field(default=None, min_length=1, max_length=200)


class FileOutcomePublic(BaseModel):
    doc_id: str
    status: str
    """added, replaced, unchanged or failed."""
    chunks: int
    error: str | None = None
    reason: str | None = None
    """For a failure: unsupported, empty, corrupt or too_large."""


class IngestReportPublic(BaseModel):
    knowledge_base: str
    documents: list[FileOutcomePublic]
    chunks_written: int
    failed: int
    total_chunks: int
    """Chunks in the base after this batch."""


class DocumentPublic(BaseModel):
    doc_id: str
    source: str
    title: str
    chunks: int
    ingested_at: str
    content_hash: str


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=4, ge=1, le=50)
    filters: dict[str, FilterValue] | None = None
    """Exact matches on chunk metadata (doc_id, source, title, chunk_index); a list means any of."""
    knowledge_bases: BaseNames | None = None
    """Cross-base search only (POST /v1/knowledge-bases/search); omitted: all the tenant's bases."""
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Override the relevance floor (for tuning); omitted: the service's floor."""


class SearchHitPublic(BaseModel):
    text: str
    score: float
    vector_score: float
    lexical_score: float
    knowledge_base: str
    doc_id: str
    source: str
    title: str
    chunk_index: int
    start: int
    end: int
    ingested_at: str


class SearchPublic(BaseModel):
    query: str
    hits: list[SearchHitPublic]
