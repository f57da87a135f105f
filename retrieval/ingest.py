"""Ingestion: files to chunks in a collection, one document at a time, replaced as a whole.

A document is identified by a stable id (its path inside the ingested folder, the
uploaded file's name, or the caller's id for raw text). Writing it deletes whatever
chunks that id had before, so ingesting the same document again never duplicates it;
identical content (same content hash) is not even re-embedded. A file that cannot be read
becomes a failed FileOutcome with the reason, and the batch goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from retrieval.chunking import chunk_text
from retrieval.embedder import Embedder
from retrieval.errors import DocumentError, RetrievalError, SourceNotFoundError
from retrieval.parsers import SUFFIXES, ParsedDocument
from retrieval.vocabulary import join_terms, salient_terms

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["FileOutcome", "IngestReport", "Progress", "collect_files", "content_hash", "write_document"]

_NO_SOURCE = "cannot ingest {path}: no such file or folder"
_WRITE_FAILED = "ingesting {doc} into {name} failed: {error}"
_WRITE_BATCH = 4000
"""Chunks per Chroma add: under the embedded client's maximum batch (5461 in chromadb 1.5)."""

Status = Literal["added", "replaced", "unchanged", "failed"]


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one document of a batch; `error` says why when it failed."""

    doc_id: str
    status: Status
    chunks: int = 0
    error: str | None = None
    reason: str | None = None
    """Why it failed, as one word: unsupported, empty, corrupt or too_large."""


@dataclass
class IngestReport:
    """A batch: each document's outcome, the chunks written, and the failures by name."""

    documents: list[FileOutcome] = field(default_factory=list)

    @property
    def files(self) -> int:
        return len(self.documents)

    @property
    def chunks(self) -> int:
        return sum(d.chunks for d in self.documents)

    @property
    def unchanged(self) -> int:
        return sum(d.status == "unchanged" for d in self.documents)

    @property
    def failures(self) -> list[FileOutcome]:
        return [d for d in self.documents if d.status == "failed"]


Progress = Callable[[FileOutcome], None]
"""Called after each document of a batch, so a CLI can draw a progress bar."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def collect_files(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(doc_id, path) for each file, folders walked recursively (hidden paths skipped).

    A file inside a folder is named by its path relative to that folder, a file given on
    its own by its name: ingesting the same folder again gives the same ids. Inside a
    folder only supported types are taken; a file named explicitly is always tried, so an
    unsupported one is reported rather than silently skipped.
    """
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_file():
            found.append((path.name, path))
        elif path.is_dir():
            for item in sorted(path.rglob("*")):
                relative = item.relative_to(path)
                hidden = any(part.startswith(".") for part in relative.parts)
                if not hidden and item.is_file() and item.suffix.lower() in SUFFIXES:
                    found.append((relative.as_posix(), item))
        else:
            raise SourceNotFoundError(_NO_SOURCE.format(path=path))
    return found


def write_document(
    collection: Collection,
    embedder: Embedder,
    doc_id: str,
    source: str,
    parse: Callable[[], ParsedDocument],
    *,
    title: str | None = None,
    chunk_chars: int,
    overlap_chars: int,
) -> FileOutcome:
    """Replace one document's chunks, or report why it could not be read.

    The new chunks are embedded before the old ones are deleted, so a failing model
    leaves the previous version searchable; identical content is left as it is.
    """
    from chromadb.errors import ChromaError

    try:
        parsed = parse()
    except DocumentError as error:
        return FileOutcome(doc_id, "failed", error=str(error), reason=error.reason)
    title = title or parsed.title
    doc_hash = content_hash(f"{title}\n{parsed.text}")
    try:
        old = collection.get(where={"doc_id": doc_id}, include=["metadatas"])
        if old["ids"] and {m.get("doc_hash") for m in old["metadatas"] or []} == {doc_hash}:
            return FileOutcome(doc_id, "unchanged")
        pieces = chunk_text(parsed.text, target=chunk_chars, overlap=overlap_chars)
        vectors = embedder.embed([f"{title}\n\n{c.text}" for c in pieces])
        now = datetime.now(UTC).isoformat(timespec="seconds")
        common = {
            "doc_id": doc_id,
            "source": source,
            "title": title,
            "doc_hash": doc_hash,
            "ingested_at": now,
            "terms": join_terms(salient_terms(f"{title}\n\n{parsed.text}")),
        }
        if old["ids"]:
            collection.delete(ids=old["ids"])
        for first in range(0, len(pieces), _WRITE_BATCH):
            batch = pieces[first : first + _WRITE_BATCH]
            collection.add(
                ids=[f"{doc_id}#{first + i}" for i in range(len(batch))],
                embeddings=vectors[first : first + _WRITE_BATCH],  # type: ignore[arg-type]
                documents=[c.text for c in batch],
                metadatas=[
                    {**common, "chunk_index": first + i, "start": c.start, "end": c.end, "hash": content_hash(c.text)}
                    for i, c in enumerate(batch)
                ],
            )
    except ChromaError as error:
        raise RetrievalError(_WRITE_FAILED.format(doc=doc_id, name=collection.name, error=error)) from error
    return FileOutcome(doc_id, "replaced" if old["ids"] else "added", chunks=len(pieces))
