"""Knowledge bases over Chroma: create them, ingest documents, search them, cite what was found.

One Chroma collection per tenant and base, named `kb__<tenant>__<base>`, so that a tenant
can only ever reach its own collections and a base can be dropped in one call. Chunks
are embedded by our embedder and handed to Chroma as vectors (never as texts for Chroma
to embed: its default embedder would try to download weights).

A document's id is stable (its path in the ingested folder, the uploaded file name, or
the caller's id for raw text), and its chunks are replaced as a whole: ingesting the same
document again never duplicates it, and unchanged content is not even re-embedded.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.chroma import open_chroma
from retrieval.embedder import Embedder
from retrieval.errors import (
    BaseExistsError,
    BaseNotFoundError,
    DocumentNotFoundError,
    FileTooLargeError,
    InvalidNameError,
    SourceNotFoundError,
)
from retrieval.ingest import FileOutcome, IngestReport, Progress, collect_files, write_document
from retrieval.parsers import ArchiveLimits, ParsedDocument, parse_document
from retrieval.search import DEFAULT_LEXICAL_WEIGHT, DEFAULT_MIN_SCORE, Hit, hybrid_search
from retrieval.vocabulary import split_terms

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = ["BaseVocabulary", "DocumentInfo", "KnowledgeStore", "tenant_key"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_BAD_NAME = "invalid {what} name {name!r}: use letters, digits and single - or _ (at most 63 characters)"
_BAD_TENANT = "invalid tenant {name!r}: use letters, digits, _ . - (at most 64, starting with a letter or digit)"
_NO_FOLDER = "cannot ingest {path}: no such folder"
_NO_BASE = "no knowledge base named {base!r}"
_BASE_EXISTS = "a knowledge base named {base!r} already exists"
_NO_DOCUMENT = "knowledge base {base!r} holds no document {doc_id!r}"
_TOO_LARGE = "{name}: {size} bytes is over the limit of {limit} bytes"


@dataclass(frozen=True)
class BaseVocabulary:
    """What a base holds, in brief: its documents' titles and the names they use."""

    titles: list[str]
    terms: list[str]


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    source: str
    title: str
    chunks: int
    ingested_at: str
    content_hash: str


def tenant_key(tenant: str) -> str:
    """The tenant's part of a collection name, which no other tenant's can begin with.

    A plain name (no "__", no dot) is used as it is, readable in Chroma. Any other tenant
    the API-key settings allow (dots, double underscores) is hashed to `h.<hex>`: a dot
    never occurs in a plain name, so the two forms cannot collide, and no key holds "__",
    so "kb__<key>__" never prefixes another tenant's collections.
    """
    if len(tenant) <= 63 and _NAME.fullmatch(tenant):
        return tenant
    if not _TENANT.fullmatch(tenant):
        raise InvalidNameError(_BAD_TENANT.format(name=tenant))
    return "h." + hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:24]


def _check_name(what: str, name: str) -> str:
    if len(name) > 63 or not _NAME.fullmatch(name):
        raise InvalidNameError(_BAD_NAME.format(what=what, name=name))
    return name


class KnowledgeStore:
    """Every tenant's knowledge bases in one Chroma client (embedded PersistentClient or a server)."""

    chunk_chars = 800
    """Target chunk size: about 150-200 MiniLM tokens, well inside its 256-token window."""
    overlap_chars = 120

    def __init__(
        self,
        client: ClientAPI,
        embedder: Embedder,
        *,
        min_score: float = DEFAULT_MIN_SCORE,
        lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
        max_file_bytes: int = 10 * 1024 * 1024,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        self._client = client
        self._embedder = embedder
        self.min_score = min_score
        self.lexical_weight = lexical_weight
        self.max_file_bytes = max_file_bytes
        self.archive_limits = archive_limits or ArchiveLimits()
        """How far an uploaded document may inflate (a zip bomb is refused unread)."""
        self.on_change: Callable[[str], None] | None = None
        """Told the tenant whose bases changed (created, filled, emptied, dropped), after the
        change: the service moves the tenant's generation (retrieval/registrations.py), so
        every replica reads the bases' names again. A failure is logged: the change stands."""

    @classmethod
    def from_path(cls, path: Path, embedder: Embedder, **options: Any) -> KnowledgeStore:
        """An embedded store persisted under `path`, with Chroma's telemetry off."""
        return cls(open_chroma(path=path), embedder, **options)

    @classmethod
    def from_url(cls, url: str, embedder: Embedder, **options: Any) -> KnowledgeStore:
        """A store on a Chroma server (`chroma run`), e.g. http://chroma:8000, telemetry off."""
        return cls(open_chroma(url=url), embedder, **options)

    def _changed(self, tenant: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(tenant)
        except Exception as error:
            log.warning("could not tell the replicas that the knowledge bases of %s changed: %s", tenant, error)

    # Bases

    def _name(self, tenant: str, base: str) -> str:
        return f"kb__{tenant_key(tenant)}__{_check_name('base', base)}"

    def _collection(self, tenant: str, base: str) -> Collection | None:
        from chromadb.errors import NotFoundError

        try:
            return self._client.get_collection(self._name(tenant, base), embedding_function=None)
        except (NotFoundError, ValueError):
            return None

    def _existing(self, tenant: str, base: str) -> Collection:
        collection = self._collection(tenant, base)
        if collection is None:
            raise BaseNotFoundError(_NO_BASE.format(base=base))
        return collection

    def create_base(self, tenant: str, base: str, *, exist_ok: bool = False) -> None:
        """A new, empty base; BaseExistsError when the tenant has one by that name."""
        name = self._name(tenant, base)
        if self._collection(tenant, base) is not None:
            if exist_ok:
                return
            raise BaseExistsError(_BASE_EXISTS.format(base=base))
        # cosine: our vectors are unit length; embedding_function=None: Chroma must never embed.
        self._client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        self._changed(tenant)

    def has_base(self, tenant: str, base: str) -> bool:
        """Whether the tenant has this base (InvalidNameError for a name no base can have)."""
        return self._collection(tenant, base) is not None

    def list_bases(self, tenant: str) -> list[str]:
        """The names of the tenant's bases, sorted."""
        prefix = f"kb__{tenant_key(tenant)}__"
        names = (c.name for c in self._client.list_collections())
        return sorted(n.removeprefix(prefix) for n in names if n.startswith(prefix))

    def delete_base(self, tenant: str, base: str) -> bool:
        """Drop a base and all its chunks; False when it did not exist."""
        if self._collection(tenant, base) is None:
            return False
        self._client.delete_collection(self._name(tenant, base))
        self._changed(tenant)
        return True

    def count(self, tenant: str, base: str) -> int:
        """Chunks in a base; 0 for a base that does not exist."""
        collection = self._collection(tenant, base)
        return 0 if collection is None else collection.count()

    def usage(self, tenant: str) -> tuple[int, int]:
        """The documents and chunks the tenant keeps across its bases (for its quotas)."""
        documents = chunks = 0
        for base in self.list_bases(tenant):
            collection = self._existing(tenant, base)
            chunks += collection.count()
            documents += len(collection.get(where={"chunk_index": 0}, include=[])["ids"])
        return documents, chunks

    def vocabulary(self, tenant: str, bases: Sequence[str] | None = None) -> dict[str, BaseVocabulary]:
        """What each of the tenant's bases (or of `bases`) holds: its documents' titles and the
        names they use, most used first; one metadata read per base."""
        out: dict[str, BaseVocabulary] = {}
        for base in self.list_bases(tenant) if bases is None else list(dict.fromkeys(bases)):
            collection = self._collection(tenant, base)
            if collection is None:
                continue
            metadatas = collection.get(where={"chunk_index": 0}, include=["metadatas"])["metadatas"] or []
            counts: Counter[str] = Counter()
            for meta in metadatas:
                counts.update(split_terms(meta.get("terms")))
            titles = sorted({str(m.get("title") or m.get("source") or "") for m in metadatas} - {""})
            out[base] = BaseVocabulary(titles=titles, terms=[t for t, _ in counts.most_common()])
        return out

    # Documents

    def list_documents(self, tenant: str, base: str) -> list[DocumentInfo]:
        """The base's documents with their chunk counts, sorted by id."""
        metadatas = self._existing(tenant, base).get(include=["metadatas"])["metadatas"] or []
        documents: dict[str, DocumentInfo] = {}
        for meta in metadatas:
            doc_id = str(meta["doc_id"])
            known = documents.get(doc_id)
            documents[doc_id] = DocumentInfo(
                doc_id=doc_id,
                source=str(meta.get("source", "")),
                title=str(meta.get("title", "")),
                chunks=(known.chunks if known else 0) + 1,
                ingested_at=str(meta.get("ingested_at", "")),
                content_hash=str(meta.get("doc_hash", "")),
            )
        return [documents[k] for k in sorted(documents)]

    def delete_document(self, tenant: str, base: str, doc_id: str) -> int:
        """Remove a document's chunks; the number removed. DocumentNotFoundError when none."""
        collection = self._existing(tenant, base)
        ids = collection.get(where={"doc_id": doc_id}, include=[])["ids"]
        if not ids:
            raise DocumentNotFoundError(_NO_DOCUMENT.format(base=base, doc_id=doc_id))
        collection.delete(ids=ids)
        self._changed(tenant)
        return len(ids)

    # Ingestion

    def ingest_folder(self, tenant: str, base: str, folder: Path, *, progress: Progress | None = None) -> IngestReport:
        """Ingest a folder into a base, creating the base if needed (the start-up `--kb DIR`)."""
        if not folder.is_dir():
            raise SourceNotFoundError(_NO_FOLDER.format(path=folder))
        self.create_base(tenant, base, exist_ok=True)
        return self.ingest_paths(tenant, base, [folder], progress=progress)

    def ingest_paths(
        self, tenant: str, base: str, paths: Sequence[Path], *, progress: Progress | None = None
    ) -> IngestReport:
        """Ingest files and folders into an existing base; a bad file is reported, not raised."""
        collection = self._existing(tenant, base)
        items = collect_files(paths)
        report = IngestReport()
        for doc_id, path in items:
            outcome = self._ingest_one(collection, doc_id, path.name, partial(self._read, path))
            report.documents.append(outcome)
            if progress is not None:
                progress(outcome)
        self._changed(tenant)
        return report

    def ingest_bytes(self, tenant: str, base: str, name: str, data: bytes, *, doc_id: str | None = None) -> FileOutcome:
        """Ingest one uploaded file; its name gives its type and, by default, its id."""
        collection = self._existing(tenant, base)

        def parse() -> ParsedDocument:
            if len(data) > self.max_file_bytes:
                raise FileTooLargeError(_TOO_LARGE.format(name=name, size=len(data), limit=self.max_file_bytes))
            return parse_document(name, data, self.archive_limits)

        outcome = self._ingest_one(collection, doc_id or name, Path(name).name, parse)
        self._changed(tenant)
        return outcome

    def ingest_text(self, tenant: str, base: str, text: str, *, title: str, doc_id: str | None = None) -> FileOutcome:
        """Ingest raw text under a title; the id defaults to the title, so re-sending replaces it."""
        collection = self._existing(tenant, base)
        ident = doc_id or title
        outcome = self._ingest_one(
            collection, ident, ident, lambda: parse_document(f"{ident}.txt", text.encode()), title
        )
        self._changed(tenant)
        return outcome

    def _read(self, path: Path) -> ParsedDocument:
        size = path.stat().st_size
        if size > self.max_file_bytes:
            raise FileTooLargeError(_TOO_LARGE.format(name=path.name, size=size, limit=self.max_file_bytes))
        return parse_document(path.name, path.read_bytes(), self.archive_limits)

    def _ingest_one(
        self,
        collection: Collection,
        doc_id: str,
        source: str,
        parse: Callable[[], ParsedDocument],
        title: str | None = None,
    ) -> FileOutcome:
        chunking = {"chunk_chars": self.chunk_chars, "overlap_chars": self.overlap_chars}
        return write_document(collection, self._embedder, doc_id, source, parse, title=title, **chunking)

    # Search

    def search(
        self,
        tenant: str,
        query: str,
        *,
        bases: Sequence[str] | None = None,
        top_k: int = 4,
        min_score: float | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The best chunks across `bases` (None: all the tenant's), best first.

        Chunks below the relevance floor are dropped, so a question the documents do not
        answer gets no hits rather than the least bad ones. A base that does not exist
        holds nothing and is skipped. `filters` match chunk metadata exactly
        ({"doc_id": "a.pdf"}, {"source": ["a.pdf", "b.md"]}).
        """
        floor = self.min_score if min_score is None else min_score
        names = self.list_bases(tenant) if bases is None else list(dict.fromkeys(bases))
        found_in = [(b, c) for b in names if (c := self._collection(tenant, b)) is not None and c.count()]
        if not found_in or not query.strip():
            return []
        vector = self._embedder.embed([query])[0]
        return hybrid_search(
            found_in, vector, query, top_k=top_k, min_score=floor, lexical_weight=self.lexical_weight, filters=filters
        )
