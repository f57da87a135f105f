"""Knowledge bases on the real path: real Chroma (PersistentClient in tmp), real MiniLM embedder."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from model.errors import InputError
from retrieval.chunking import chunk_text, document_title
from retrieval.embedder import MiniLMEmbedder
from retrieval.errors import InvalidNameError, RetrievalError, SourceNotFoundError
from retrieval.knowledge import KnowledgeStore
from tools.base import ToolContext, Vocabulary
from tools.builtin.knowledge import knowledge_search_tool, names_any
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

HANDBOOK = """# Employee Handbook

## Leave

Every employee gets 27 days of paid leave a year plus public holidays. Unused leave up to
five days carries over to the next year and expires on 31 March.

## Expenses

Travel is booked through the office manager, Priya Raman. Meals abroad are reimbursed up to
60 euros a day with receipts. Submit expense claims within 30 days.
"""
HERON = """# Project Heron

Heron is the codename for the new warehouse-routing service. The wifi password for the Heron
lab is "blue-otter-42". The project lead is Tomasz Wiśniewski.
"""
RECIPE = """Grandma's apple cake

Beat 200 g butter with 180 g sugar. Add four eggs, 250 g flour and baking powder. Slice six
tart apples over the batter and bake at 175 °C for 50 minutes.
The secret ingredient is a pinch of cardamom in the batter.
"""


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "projects").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    (folder / "projects" / "heron.md").write_text(HERON, encoding="utf-8")
    (folder / "recipes.txt").write_text(RECIPE, encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG")
    (folder / ".git" / "notes.md").write_text("hidden", encoding="utf-8")
    return folder


@pytest.fixture
def store(tmp_path: Path, embedder: MiniLMEmbedder, docs: Path) -> KnowledgeStore:
    store = KnowledgeStore.from_path(tmp_path / "chroma", embedder)
    report = store.ingest_folder("acme", "notes", docs)
    assert (report.files, report.unchanged) == (3, 0)
    assert report.chunks == store.count("acme", "notes") >= 3
    return store


def test_embedder_gives_unit_384_d_vectors(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["the wifi password", "a cake recipe"])
    assert [len(v) for v in vectors] == [384, 384]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    assert embedder.embed([]) == []


def test_search_finds_the_fact_with_its_metadata(store: KnowledgeStore) -> None:
    hits = store.search("acme", "What is the wifi password in the Heron lab?")
    assert hits, "the distinctive fact should clear the relevance floor"
    best = hits[0]
    assert "blue-otter-42" in best.text
    assert (best.doc_id, best.source, best.title, best.base) == (
        "projects/heron.md",
        "heron.md",
        "Project Heron",
        "notes",
    )
    assert HERON[best.start : best.end] == best.text
    assert best.score >= store.min_score
    assert store.search("acme", "secret ingredient of the apple cake")[0].title == "recipes"  # .txt: the stem


async def test_tool_numbers_passages_and_cites_the_file(store: KnowledgeStore) -> None:
    tool = knowledge_search_tool(store)
    ToolRegistry([tool])
    result = await tool.handler({"query": "how many vacation days do I get"}, ToolContext("acme", "s1"))
    assert result.content.count("[1] (handbook.md)") == 1
    assert "27 days" in result.content
    first = result.citations[0]
    assert (first["id"], first["source"], first["title"], first.get("doc_id")) == (
        "1",
        "handbook.md",
        "Employee Handbook",
        "handbook.md",
    )
    assert len(first["snippet"]) <= 200
    assert [c["id"] for c in result.citations] == [str(i) for i in range(1, len(result.citations) + 1)]


async def test_unrelated_questions_find_nothing(store: KnowledgeStore) -> None:
    for question in ["Who won the football world cup in 2018?", "What time is it in Tokyo?", "Tell me a joke."]:
        assert store.search("acme", question) == [], question
    result = await knowledge_search_tool(store).handler({"query": "capital of Australia"}, ToolContext("acme", "s"))
    assert "could not find it there" in result.content
    assert result.citations == []


def test_reingest_replaces_instead_of_duplicating(store: KnowledgeStore, docs: Path) -> None:
    before = store.count("acme", "notes")
    again = store.ingest_folder("acme", "notes", docs)
    assert (again.files, again.chunks, again.unchanged) == (3, 0, 3)
    assert store.count("acme", "notes") == before

    (docs / "projects" / "heron.md").write_text(HERON.replace("blue-otter-42", "red-fox-7"), encoding="utf-8")
    changed = store.ingest_folder("acme", "notes", docs)
    assert (changed.chunks > 0, changed.unchanged) == (True, 2)
    assert store.count("acme", "notes") == before
    hits = store.search("acme", "wifi password of the Heron lab")
    assert "red-fox-7" in hits[0].text
    assert not any("blue-otter-42" in h.text for h in hits)


def test_tenants_are_isolated(store: KnowledgeStore, docs: Path) -> None:
    assert store.search("globex", "wifi password of the Heron lab") == []
    assert store.search("globex", "wifi password of the Heron lab", min_score=-1.0) == []
    assert store.list_bases("acme") == ["notes"]
    assert store.list_bases("globex") == []
    assert store.count("globex", "notes") == 0


async def test_bases_restrict_the_search(store: KnowledgeStore, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "cars.md").write_text("# Fleet\n\nThe company van is a white Ford Transit, plate KX-221.", "utf-8")
    store.ingest_folder("acme", "fleet", other)
    assert store.list_bases("acme") == ["fleet", "notes"]
    question = {"query": "what is the licence plate of the company van"}
    everywhere = await knowledge_search_tool(store).handler(question, ToolContext("acme", "s"))
    assert everywhere.citations[0]["source"] == "cars.md"
    only_notes = await knowledge_search_tool(store).handler(question, ToolContext("acme", "s", ("notes",)))
    assert all(c["source"] != "cars.md" for c in only_notes.citations)
    assert "knowledge_base" not in knowledge_search_tool(store).spec.parameters["properties"]  # the turn's to narrow
    assert store.delete_base("acme", "fleet") is True
    assert store.list_bases("acme") == ["notes"]


def test_vocabulary_names_what_the_documents_use(store: KnowledgeStore, tmp_path: Path) -> None:
    """The names each document uses are kept with it, and the tool tells the planner and the
    recognizer about them; a turn limited to some bases names only theirs."""
    other = tmp_path / "reactor"
    other.mkdir()
    text = (
        "# Zorblat notes\n\nThe Zorblat reactor was invented by Mira Quell in 2031. Every Zorblat reactor ships "
        "with the ZX-4471 valve. Submit repair requests through the Kestrel lab."
    )
    (other / "zorblat.md").write_text(text, "utf-8")
    store.ingest_folder("acme", "reactor", other)
    vocabulary = store.vocabulary("acme")
    assert vocabulary["reactor"].terms[:2] == ["Zorblat", "Mira Quell"]
    assert {"ZX-4471", "Kestrel"} <= set(vocabulary["reactor"].terms) and "Submit" not in vocabulary["reactor"].terms
    tool = knowledge_search_tool(store)
    assert tool.vocabulary is not None
    said = tool.vocabulary(ToolContext("acme", "s"))
    assert "Zorblat" in said.words and "Zorblat" in said.note and "knowledge_search" in said.note
    only_notes = tool.vocabulary(ToolContext("acme", "s", ("notes",)))
    assert "Zorblat" not in only_notes.note
    assert tool.vocabulary(ToolContext("nobody", "s")) == Vocabulary(idle=("knowledge_search",))  # nothing to search
    assert said.idle == only_notes.idle == ()


def test_every_change_to_a_tenants_bases_is_told(store: KnowledgeStore, docs: Path) -> None:
    """`on_change` hears the tenant after each change (the service moves its generation); reads
    tell it nothing, and a failure to tell leaves the change made."""
    told: list[str] = []
    store.on_change = told.append
    store.list_bases("acme"), store.search("acme", "heron"), store.vocabulary("acme"), store.count("acme", "notes")
    assert told == []
    store.create_base("globex", "faq")
    store.ingest_text("globex", "faq", "The spare key is under the blue pot.", title="Key")
    store.ingest_paths("acme", "notes", [docs / "recipes.txt"])
    store.ingest_bytes("acme", "notes", "key.md", b"# Key\n\nThe key is under the pot.")
    store.delete_document("acme", "notes", "key.md")
    store.delete_base("globex", "faq")
    assert told == ["globex", "globex", "acme", "acme", "acme", "globex"]

    def down(tenant: str) -> None:
        raise ConnectionError("the memory is down")

    store.on_change = down
    store.create_base("acme", "more")
    assert store.has_base("acme", "more")


def test_a_search_for_what_the_documents_neither_hold_nor_name_is_of_no_use(store: KnowledgeStore) -> None:
    """`futile`: a general question finds nothing and names nothing of theirs; a name the
    documents use keeps the search though it finds nothing; a search that finds something stays."""
    tool = knowledge_search_tool(store)
    assert tool.futile is not None
    context = ToolContext("acme", "s")
    assert tool.futile({"query": "Who wrote Romeo and Juliet?"}, context)
    assert tool.futile({"query": "capital of Australia"}, context)
    assert not store.search("acme", "When is Priya Raman's birthday?")
    assert not tool.futile({"query": "When is Priya Raman's birthday?"}, context)  # a name of theirs
    assert tool.futile({"query": "When is Priya's birthday?"}, context)  # not the whole name
    assert not tool.futile({"query": "how many vacation days do I get"}, context)  # found


def test_names_any_matches_every_word_of_a_name_in_any_case() -> None:
    assert names_any("what's the wifi password of the KESTREL lab?", ["The Kestrel lab"])
    assert names_any("who is Mira Quell", ["Zorblat", "Mira Quell"])
    assert not names_any("who is Mira", ["Mira Quell"])
    assert not names_any("kestrels nest", ["Kestrel"]) and not names_any("anything", ["", "..."])


def test_persists_across_clients(store: KnowledgeStore, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    reopened = KnowledgeStore.from_path(tmp_path / "chroma", embedder)
    assert reopened.count("acme", "notes") == store.count("acme", "notes")


def test_errors_are_typed(store: KnowledgeStore, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError):
        store.ingest_folder("acme", "notes", tmp_path / "missing")
    for tenant in ["../x", "", "x" * 65, "a b", "a/b"]:
        with pytest.raises(InvalidNameError):
            store.search(tenant, "anything")
    assert issubclass(SourceNotFoundError, RetrievalError) and issubclass(InvalidNameError, InputError)


def test_chunks_are_exact_slices_split_at_headings_and_bounded() -> None:
    body = " ".join(f"Sentence number {i} says something about the topic." for i in range(60))
    text = f"# Guide\n\n## Setup\n\n{'Install it. ' * 30}\n\n## Usage\n\n{body}\n\n## Notes\n\nShort tail.\n"
    chunks = chunk_text(text, target=800, overlap=120)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert all(len(c.text) <= 800 + 120 for c in chunks)
    assert chunks[0].text.startswith("# Guide") and "## Usage" not in chunks[0].text
    assert any(c.text.startswith("## Usage") for c in chunks)
    usage = [c for c in chunks if "Sentence number" in c.text]
    assert len(usage) >= 3
    assert all(later.start < earlier.end for earlier, later in pairwise(usage)), "overlap"
    assert chunk_text("") == [] and chunk_text("\n\n  \n") == []
    assert document_title("intro\n## Part one\n# Top", "stem") == "Part one"
    assert document_title("no heading", "stem") == "stem"
