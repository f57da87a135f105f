"""Ingestion of real files (md, html, pdf, docx) and raw text, bad files, documents, hybrid search.

Real Chroma (PersistentClient in tmp) and the real MiniLM embedder throughout.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from retrieval.embedder import MiniLMEmbedder
from retrieval.errors import (
    BaseExistsError,
    BaseNotFoundError,
    CorruptDocumentError,
    DocumentNotFoundError,
    EmptyDocumentError,
    FileTooLargeError,
    InvalidFilterError,
    UnsupportedFileError,
)
from retrieval.knowledge import KnowledgeStore
from retrieval.parsers import ArchiveLimits, parse_document
from tests.documents import PDF_FACT, docx_bytes, html_page, pdf_bytes, write_mixed_folder, zip_bomb_docx

PARTS = "# Spare parts\n\n" + "\n\n".join(
    f"Part ZX-{n} is a spare valve for the hydraulics, stocked in aisle {n % 9}." for n in range(4400, 4480)
)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def store(tmp_path: Path, embedder: MiniLMEmbedder) -> KnowledgeStore:
    store = KnowledgeStore.from_path(tmp_path / "chroma", embedder, max_file_bytes=50_000)
    store.create_base("acme", "docs")
    return store


def test_each_format_parses_to_text_with_headings_and_a_title() -> None:
    page = parse_document("k.html", html_page("Kitchen rules", "Kitchen", ["Descale on <b>Friday</b> mornings."]))
    assert page.title == "Kitchen rules" and "# Kitchen" in page.text and "Friday mornings" in page.text
    assert "secret" not in page.text and "color" not in page.text
    pdf = parse_document("r.pdf", pdf_bytes([["Line one."], ["Page two (B)."]], title="Report"))
    assert pdf.title == "Report" and "Line one." in pdf.text and "Page two (B)." in pdf.text
    doc = parse_document("s.docx", docx_bytes("Security Policy", [("Visitors", "Wear a badge.")]))
    assert doc.title == "Security Policy" and "## Visitors\n\nWear a badge." in doc.text
    assert parse_document("n.md", b"intro\n\n# Notes\n\nbody").title == "Notes"


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("a.pdf", b"%PDF-1.4 this is not a pdf", CorruptDocumentError),
        ("a.docx", b"PK\x03\x04 truncated zip", CorruptDocumentError),
        ("a.pdf", pdf_bytes([[]]), EmptyDocumentError),
        ("a.txt", b" \n ", EmptyDocumentError),
        ("a.exe", b"MZ", UnsupportedFileError),
        ("noext", b"text", UnsupportedFileError),
    ],
)
def test_bad_files_raise_a_typed_error_naming_the_file(name: str, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        parse_document(name, data)


def test_a_batch_ingests_the_good_files_and_lists_each_failure(store: KnowledgeStore, tmp_path: Path) -> None:
    folder = write_mixed_folder(tmp_path / "docs")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    (folder / "broken.docx").write_bytes(b"not a zip")
    (folder / "empty.md").write_text("")
    (folder / "huge.txt").write_text("x " * 30_000)
    (folder / "photo.png").write_bytes(b"\x89PNG")  # not a document type: skipped inside a folder
    report = store.ingest_paths("acme", "docs", [folder, tmp_path / "docs" / "photo.png"])
    statuses = {d.doc_id: (d.status, d.reason) for d in report.documents}
    assert statuses == {
        "broken.docx": ("failed", "corrupt"),
        "broken.pdf": ("failed", "corrupt"),
        "empty.md": ("failed", "empty"),
        "facilities.pdf": ("added", None),
        "handbook.md": ("added", None),
        "huge.txt": ("failed", "too_large"),
        "kitchen.html": ("added", None),
        "security.docx": ("added", None),
        "photo.png": ("failed", "unsupported"),
    }
    assert all(f.error and f.doc_id.split("/")[-1] in f.error for f in report.failures)
    docs = {d.doc_id: d for d in store.list_documents("acme", "docs")}
    assert set(docs) == {"facilities.pdf", "handbook.md", "kitchen.html", "security.docx"}
    assert docs["facilities.pdf"].title == "Facilities Report" and docs["facilities.pdf"].ingested_at
    hit = store.search("acme", "who services the backup generator")[0]
    assert (hit.doc_id, hit.source) == ("facilities.pdf", "facilities.pdf") and "Voltaris" in hit.text
    assert hit.ingested_at and hit.end > hit.start
    count = store.count("acme", "docs")
    again = store.ingest_paths("acme", "docs", [folder])
    assert store.count("acme", "docs") == count and again.unchanged == 4 and again.chunks == 0


def test_chunk_metadata_is_complete(store: KnowledgeStore) -> None:
    store.ingest_text("acme", "docs", "# Notes\n\nThe spare key is under the blue pot.", title="Notes")
    collection = store._existing("acme", "docs")
    meta = (collection.get(include=["metadatas"])["metadatas"] or [{}])[0]
    assert set(meta) >= {"doc_id", "source", "title", "chunk_index", "start", "end", "hash", "doc_hash", "ingested_at"}


def test_raw_text_is_replaced_by_title_and_documents_can_be_deleted(store: KnowledgeStore) -> None:
    first = store.ingest_text("acme", "docs", "The office opens at 8:00.", title="Hours")
    second = store.ingest_text("acme", "docs", "The office opens at 9:30 on weekdays.", title="Hours")
    assert (first.status, second.status) == ("added", "replaced")
    assert [d.doc_id for d in store.list_documents("acme", "docs")] == ["Hours"]
    assert "9:30" in store.search("acme", "when does the office open")[0].text
    assert store.delete_document("acme", "docs", "Hours") == 1
    assert store.count("acme", "docs") == 0
    with pytest.raises(DocumentNotFoundError):
        store.delete_document("acme", "docs", "Hours")


def test_base_lifecycle_errors(store: KnowledgeStore, tmp_path: Path) -> None:
    with pytest.raises(BaseExistsError):
        store.create_base("acme", "docs")
    with pytest.raises(BaseNotFoundError):
        store.ingest_text("acme", "nope", "text", title="t")
    with pytest.raises(BaseNotFoundError):
        store.list_documents("acme", "nope")
    with pytest.raises(InvalidFilterError):
        store.ingest_text("acme", "docs", "Some text here.", title="t")
        store.search("acme", "text", filters={"colour": "red"})


def test_exact_codes_and_numbers_are_found_among_look_alikes(store: KnowledgeStore) -> None:
    store.ingest_text("acme", "docs", PARTS, title="Spare parts")
    store.ingest_text("acme", "docs", "Invoice 88213 from Nordlicht GmbH is due on 15 May.", title="Invoices")
    store.ingest_text("acme", "docs", PDF_FACT, title="Facilities")
    for query, expected in [("ZX-4471", "ZX-4471"), ("zx 4417", "ZX-4417"), ("invoice 88213", "88213")]:
        hits = store.search("acme", query, top_k=3)
        assert hits and expected in hits[0].text, (query, hits[:1])
        assert hits[0].lexical_score > 0.5


def test_filters_restrict_search_to_matching_chunks(store: KnowledgeStore) -> None:
    store.ingest_text("acme", "docs", "The red van is parked in bay 4.", title="Fleet A", doc_id="fleet-a")
    store.ingest_text("acme", "docs", "The red truck is parked in bay 9.", title="Fleet B", doc_id="fleet-b")
    hits = store.search("acme", "where is the red vehicle parked", filters={"doc_id": "fleet-b"})
    assert hits and {h.doc_id for h in hits} == {"fleet-b"}
    both = store.search("acme", "where is the red vehicle parked", filters={"doc_id": ["fleet-a", "fleet-b"]})
    assert {h.doc_id for h in both} == {"fleet-a", "fleet-b"}


def test_tenants_with_look_alike_names_stay_apart(store: KnowledgeStore) -> None:
    store.create_base("a__b", "docs")
    store.ingest_text("a__b", "docs", "The vault code is 7-7-1-9.", title="Vault")
    store.create_base("a", "docs")
    assert store.list_bases("a") == ["docs"] and store.list_bases("a.b") == []
    assert store.search("a", "what is the vault code") == []
    assert store.search("a__b", "what is the vault code")[0].doc_id == "Vault"


def test_a_zip_bomb_docx_is_refused_before_it_is_inflated() -> None:
    """200 MB of zeros in 200 KB: refused from the zip's directory, using a few MB at most."""
    bomb = zip_bomb_docx(200 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(FileTooLargeError, match=r"bomb\.docx") as refused:
            parse_document("bomb.docx", bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"zip bomb: {len(bomb)} bytes, peak traced memory {peak / 2**20:.1f} MiB")
    assert refused.value.reason == "too_large" and peak < 4 * 2**20


ARCHIVES: list[tuple[str, ArchiveLimits, str]] = [
    ("total", ArchiveLimits(max_total_bytes=3 * 2**20, max_ratio=10_000), "would inflate to"),
    ("member", ArchiveLimits(max_member_bytes=2 * 2**20, max_ratio=10_000), "'word/document.xml' would inflate"),
    ("ratio", ArchiveLimits(max_ratio=100), "compressed"),
    ("members", ArchiveLimits(max_members=5), "holds"),
]


@pytest.mark.parametrize(("case", "limits", "message"), ARCHIVES, ids=[c[0] for c in ARCHIVES])
def test_each_archive_limit_refuses_with_a_message(case: str, limits: ArchiveLimits, message: str) -> None:
    with pytest.raises(FileTooLargeError, match=message):
        parse_document("big.docx", zip_bomb_docx(4 * 2**20), limits)
    if case != "members":  # an ordinary DOCX holds a dozen or more files
        assert "b." in parse_document("ok.docx", docx_bytes("Fine", [("A", "b.")]), limits).text


def test_a_pdf_whose_text_runs_past_the_limit_is_refused() -> None:
    pdf = pdf_bytes([["A line of text that repeats."] * 40] * 5)
    with pytest.raises(FileTooLargeError, match="past 2000 characters"):
        parse_document("long.pdf", pdf, ArchiveLimits(max_total_bytes=2000))
    assert "repeats" in parse_document("long.pdf", pdf).text
