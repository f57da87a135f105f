"""Knowledge bases over Chroma: ingest a folder of notes, search it, cite what was found.

One Chroma collection per tenant and base, named `kb__<tenant>__<base>`, so that a tenant
can only ever reach its own collections and a base can be dropped in one call. Chunks
are embedded by our embedder and handed to Chroma as vectors (never as texts for Chroma
to embed: its default embedder would try to download weights). Every chunk is a slice of
its file, so the stored span points at the exact characters a citation rests on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.embedder import Embedder
from retrieval.errors import InvalidNameError, RetrievalError, SourceNotFoundError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = [
    "DEFAULT_MIN_SCORE",
    "SUFFIXES",
    "Chunk",
    "Hit",
    "IngestReport",
    "KnowledgeStore",
    "chunk_text",
    "document_title",
]

DEFAULT_MIN_SCORE = 0.32
"""Cosine similarity a chunk needs to count as relevant. Calibrated on MiniLM with title-prefixed
chunks: paraphrased questions scored 0.36-0.70 on their passage, unrelated ones at most 0.29."""
SUFFIXES = (".md", ".markdown", ".txt")
_NAME = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")
_HEADING = re.compile(r"#{1,6}\s+(.+?)\s*#*\s*$")
_BAD_NAME = "invalid {what} name {name!r}: use letters, digits and single - or _ (at most 63 characters)"
_NO_FOLDER = "cannot ingest {path}: no such folder"
_INGEST_FAILED = "ingesting {doc} into {name} failed: {error}"


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: text == document[start:end]."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    text: str
    score: float
    """Cosine similarity to the query (1 - Chroma's cosine distance): higher is closer."""
    doc_id: str
    source: str
    title: str
    chunk_index: int
    base: str
    start: int
    end: int


@dataclass(frozen=True)
class IngestReport:
    """Files read; chunks written; files skipped because the base already held that content."""

    files: int
    chunks: int
    unchanged: int


def document_title(text: str, fallback: str) -> str:
    """The first markdown heading, else the fallback (the file stem)."""
    for line in text.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            return match.group(1)
    return fallback


def _blocks(text: str, target: int) -> Iterator[tuple[int, int, bool]]:
    """Paragraph and heading spans (start, end, is_heading); long paragraphs cut near target."""
    pos, start, end = 0, -1, -1
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not stripped or _HEADING.match(stripped):
            if start >= 0:
                yield from _cut(text, start, end, target)
                start = -1
            if stripped:
                yield pos + line.index(stripped[0]), pos + len(line.rstrip()), True
        else:
            if start < 0:
                start = pos + line.index(stripped[0])
            end = pos + len(line.rstrip())
        pos += len(line)
    if start >= 0:
        yield from _cut(text, start, end, target)


def _cut(text: str, start: int, end: int, target: int) -> Iterator[tuple[int, int, bool]]:
    """Split one paragraph at sentence ends (else spaces) into pieces of at most target."""
    while end - start > target:
        window = text[start : start + target]
        cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "), window.rfind("\n"))
        cut = cut + 1 if cut > target // 2 else window.rfind(" ")
        if cut <= 0:
            cut = target
        yield start, start + cut, False
        start += cut
        while start < end and text[start].isspace():
            start += 1
    yield start, end, False


def _overlap_start(text: str, start: int, end: int, overlap: int) -> int:
    """Where the next chunk begins so it repeats about `overlap` chars, from a sentence or word."""
    begin = max(start, end - overlap)
    tail = text[begin:end]
    sentence = re.search(r"[.!?]\s+(?=\S)", tail)
    if sentence:
        return begin + sentence.end()
    space = tail.find(" ")
    return begin + space + 1 if 0 <= space < len(tail) - 1 else end


def chunk_text(text: str, *, target: int = 800, overlap: int = 120) -> list[Chunk]:
    """Pack paragraphs into chunks of about `target` chars, starting a new one at headings.

    A heading does not cut a chunk that is still short: tiny chunks embed poorly. A chunk
    cut for size repeats the last ~`overlap` chars of the one before, so a fact that
    straddles the cut is still whole in one of them.
    """
    spans: list[tuple[int, int]] = []
    start = end = -1
    has_body = False
    for block_start, block_end, heading in _blocks(text, target):
        if start >= 0 and has_body and ((heading and end - start >= target // 4) or block_end - start > target):
            spans.append((start, end))
            resume = _overlap_start(text, start, end, overlap)
            start = block_start if heading or resume >= end else resume
            has_body = False
        if start < 0:
            start = block_start
        end = block_end
        has_body = has_body or not heading
    if start >= 0:
        spans.append((start, end))
    return [Chunk(text[s:e], s, e) for s, e in spans]


def _check_name(what: str, name: str) -> str:
    if len(name) > 63 or not _NAME.fullmatch(name):
        raise InvalidNameError(_BAD_NAME.format(what=what, name=name))
    return name


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class KnowledgeStore:
    """A tenant's knowledge bases in one Chroma client (embedded PersistentClient or a server)."""

    chunk_chars = 800
    """Target chunk size: about 150-200 MiniLM tokens, well inside its 256-token window."""
    overlap_chars = 120

    def __init__(self, client: ClientAPI, embedder: Embedder, *, min_score: float = DEFAULT_MIN_SCORE) -> None:
        self._client = client
        self._embedder = embedder
        self.min_score = min_score

    @classmethod
    def from_path(cls, path: Path, embedder: Embedder, **options: Any) -> KnowledgeStore:
        """An embedded store persisted under `path`, with Chroma's telemetry off."""
        import chromadb
        from chromadb.config import Settings

        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        return cls(client, embedder, **options)

    def _name(self, tenant: str, base: str) -> str:
        return f"kb__{_check_name('tenant', tenant)}__{_check_name('base', base)}"

    def _collection(self, tenant: str, base: str) -> Collection | None:
        from chromadb.errors import NotFoundError

        try:
            return self._client.get_collection(self._name(tenant, base), embedding_function=None)
        except (NotFoundError, ValueError):
            return None

    def list_bases(self, tenant: str) -> list[str]:
        """The names of the tenant's bases, sorted."""
        prefix = f"kb__{_check_name('tenant', tenant)}__"
        names = (c.name for c in self._client.list_collections())
        return sorted(n.removeprefix(prefix) for n in names if n.startswith(prefix))

    def delete_base(self, tenant: str, base: str) -> bool:
        """Drop a base and all its chunks; False when it did not exist."""
        if self._collection(tenant, base) is None:
            return False
        self._client.delete_collection(self._name(tenant, base))
        return True

    def count(self, tenant: str, base: str) -> int:
        """Chunks in a base; 0 for a base that does not exist."""
        collection = self._collection(tenant, base)
        return 0 if collection is None else collection.count()

    def ingest_folder(self, tenant: str, base: str, folder: Path) -> IngestReport:
        """Index every .md/.txt file under `folder` (recursively, hidden paths skipped).

        A file's doc_id is its path relative to the folder, so ingesting again replaces
        that document's chunks instead of adding copies; an unchanged file is skipped.
        """
        if not folder.is_dir():
            raise SourceNotFoundError(_NO_FOLDER.format(path=folder))
        # embedding_function=None: Chroma must never embed (or download a model) by itself.
        metadata = {"hnsw:space": "cosine"}
        collection = self._client.get_or_create_collection(
            self._name(tenant, base), metadata=metadata, embedding_function=None
        )
        files = chunks = unchanged = 0
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            hidden = any(part.startswith(".") for part in relative.parts)
            if hidden or not path.is_file() or path.suffix.lower() not in SUFFIXES:
                continue
            files += 1
            written = self._ingest_text(collection, relative.as_posix(), path.name, path)
            chunks += max(written, 0)
            unchanged += written < 0
        return IngestReport(files=files, chunks=chunks, unchanged=unchanged)

    def _ingest_text(self, collection: Collection, doc_id: str, source: str, path: Path) -> int:
        """Replace one document's chunks; the count written, or -1 when it was unchanged.

        The new chunks are embedded before the old ones are deleted, so a failing model
        leaves the previous version searchable.
        """
        from chromadb.errors import ChromaError

        text = path.read_text(encoding="utf-8", errors="replace")
        doc_hash = _digest(text)
        try:
            old = collection.get(where={"doc_id": doc_id}, include=["metadatas"])
            if old["ids"] and {m.get("doc_hash") for m in old["metadatas"] or []} == {doc_hash}:
                return -1
            title = document_title(text, path.stem)
            pieces = chunk_text(text, target=self.chunk_chars, overlap=self.overlap_chars)
            vectors = self._embedder.embed([f"{title}\n\n{c.text}" for c in pieces])
            common = {"doc_id": doc_id, "source": source, "title": title, "doc_hash": doc_hash}
            if old["ids"]:
                collection.delete(ids=old["ids"])
            if pieces:
                collection.add(
                    ids=[f"{doc_id}#{i}" for i in range(len(pieces))],
                    embeddings=vectors,  # type: ignore[arg-type]
                    documents=[c.text for c in pieces],
                    metadatas=[
                        {**common, "chunk_index": i, "start": c.start, "end": c.end, "hash": _digest(c.text)}
                        for i, c in enumerate(pieces)
                    ],
                )
        except ChromaError as error:
            raise RetrievalError(_INGEST_FAILED.format(doc=doc_id, name=collection.name, error=error)) from error
        return len(pieces)

    def search(
        self,
        tenant: str,
        query: str,
        *,
        bases: Sequence[str] | None = None,
        top_k: int = 4,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The best chunks across `bases` (None: all the tenant's), best first.

        Chunks below the relevance floor are dropped, so a question the documents do not
        answer gets no hits rather than the least bad ones. A base that does not exist
        holds nothing and is skipped.
        """
        floor = self.min_score if min_score is None else min_score
        names = self.list_bases(tenant) if bases is None else list(bases)
        found_in = [(c, n) for b in names if (c := self._collection(tenant, b)) is not None and (n := c.count())]
        if not found_in or not query.strip():
            return []
        vector = self._embedder.embed([query])[0]
        hits: list[Hit] = []
        for collection, size in found_in:
            found = collection.query(
                query_embeddings=[vector],  # type: ignore[arg-type]
                n_results=min(top_k, size),
                include=["documents", "metadatas", "distances"],
            )
            base = collection.name.rsplit("__", 1)[1]
            documents = (found["documents"] or [[]])[0]
            metadatas = (found["metadatas"] or [[]])[0]
            distances = (found["distances"] or [[]])[0]
            for text, meta, distance in zip(documents, metadatas, distances, strict=True):
                score = 1.0 - float(distance)
                if score >= floor:
                    fields = {k: meta[k] for k in ("doc_id", "source", "title", "chunk_index", "start", "end")}
                    hits.append(Hit(text=text or "", score=score, base=base, **fields))  # type: ignore[arg-type]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:top_k]
