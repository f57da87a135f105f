"""`voicegraph kb bench` (or `python -m api.kb_bench`): knowledge-base figures on this machine.

1. Ingestion rate in chunks per second through our whole pipeline (parse, chunk, embed,
   write to Chroma), beside the embedder's own encode rate on the same chunk texts in the
   same run: their ratio is the overhead of the pipeline over the model.
2. Query latency p50/p95 of a full hybrid search (query embedding, vector query,
   full-text lookups, BM25 fusion) at each base size. The chunks of these bases carry
   synthetic text and random unit vectors inserted directly (embedding 100k chunks on a
   CPU would take most of an hour); the output says so.
3. Recall@5 on the labelled set of api/kb_bench_data.py, hybrid versus vector-only, and how
   many unrelated questions wrongly found something.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from api.kb_bench_data import DOCUMENTS, QUESTIONS, UNRELATED, distractors
from retrieval.chunking import chunk_text
from retrieval.embedder import MiniLMEmbedder
from retrieval.knowledge import KnowledgeStore
from retrieval.parsers import parse_document

__all__ = ["run_kb_bench"]

_WORDS = (
    "invoice shipment pump valve warehouse routing policy leave expense travel budget server build release "
    "customer contract renewal audit backup network printer laptop badge office meeting quarterly report"
).split()
_LATENCY_QUERIES = ("ZX-4471", "invoice 88213", "how do I book travel", "what is the backup policy", "printer")


def _filler(index: int, rng: np.random.Generator) -> str:
    """A synthetic document of a few paragraphs, about 5 chunks."""
    paragraphs = []
    for _ in range(12):
        words = rng.choice(_WORDS, size=55)
        paragraphs.append(" ".join(words).capitalize() + f" Reference RF-{index}-{rng.integers(1000)}.")
    return f"# Synthetic document {index}\n\n" + "\n\n".join(paragraphs)


def _rate(store: KnowledgeStore, embedder: MiniLMEmbedder, root: Path, chunks: int) -> list[str]:
    rng = np.random.default_rng(1)
    folder = root / "rate"
    folder.mkdir()
    texts: list[str] = []
    index = 0
    while len(texts) < chunks:
        text = _filler(index, rng)
        (folder / f"doc-{index:04d}.md").write_text(text, encoding="utf-8")
        parsed = parse_document("x.md", text.encode())
        texts += [f"{parsed.title}\n\n{c.text}" for c in chunk_text(parsed.text)]
        index += 1
    embedder.embed(texts[:32])  # warm: neither figure pays for loading the model
    started = time.perf_counter()
    embedder.embed(texts)
    encode_rate = len(texts) / (time.perf_counter() - started)
    store.create_base("bench", "rate")
    started = time.perf_counter()
    report = store.ingest_paths("bench", "rate", [folder])
    seconds = time.perf_counter() - started
    rate = report.chunks / seconds
    return [
        f"ingestion: {report.files} files, {report.chunks} chunks in {seconds:.1f} s = {rate:.1f} chunks/s",
        f"embedder alone on the same {len(texts)} chunk texts: {encode_rate:.1f} chunks/s "
        f"(pipeline/embedder = {rate / encode_rate:.2f})",
    ]


def _fill(store: KnowledgeStore, base: str, size: int) -> float:
    """Insert `size` synthetic chunks with random unit vectors; the seconds it took."""
    from chromadb.api.models.Collection import Collection

    store.create_base("bench", base)
    collection: Collection = store._existing("bench", base)  # a benchmark may reach in
    rng = np.random.default_rng(size)
    started = time.perf_counter()
    batch = 5000
    for first in range(0, size, batch):
        count = min(batch, size - first)
        vectors = rng.standard_normal((count, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"doc-{(first + i) // 5}#{(first + i) % 5}" for i in range(count)]
        texts = [" ".join(rng.choice(_WORDS, size=60)) + f" Code ZX-{first + i}." for i in range(count)]
        metadatas = [
            {"doc_id": i.split("#")[0], "source": "synthetic", "title": "synthetic", "chunk_index": 0, "start": 0}
            for i in ids
        ]
        collection.add(ids=ids, embeddings=vectors, documents=texts, metadatas=metadatas)  # type: ignore[arg-type]
    return time.perf_counter() - started


def _latency(store: KnowledgeStore, sizes: list[int], queries: int) -> list[str]:
    lines = ["query latency (full hybrid search; synthetic chunks with random unit vectors, inserted directly):"]
    for size in sizes:
        base = f"size-{size}"
        fill_s = _fill(store, base, size)
        store.search("bench", "warm up", bases=[base])
        timings = []
        for index in range(queries):
            query = _LATENCY_QUERIES[index % len(_LATENCY_QUERIES)]
            started = time.perf_counter()
            store.search("bench", query, bases=[base], top_k=5)
            timings.append((time.perf_counter() - started) * 1000)
        p50 = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[18]
        lines.append(
            f"  {size:>7} chunks: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({queries} queries; filled in {fill_s:.0f} s)"
        )
    return lines


def _recall(store: KnowledgeStore, root: Path) -> list[str]:
    folder = root / "labelled"
    folder.mkdir()
    documents = {**DOCUMENTS, **distractors(60)}
    for name, text in documents.items():
        (folder / name).write_text(text, encoding="utf-8")
    store.create_base("bench", "labelled")
    report = store.ingest_paths("bench", "labelled", [folder])
    lines = [f"recall@5 on {len(QUESTIONS)} labelled questions ({len(documents)} documents, {report.chunks} chunks):"]
    floor, weight = store.min_score, store.lexical_weight
    for label, lexical, min_score in (("hybrid", weight, floor), ("vector only", 0.0, 0.32)):
        store.lexical_weight, store.min_score = lexical, min_score
        found = sum(
            any(h.doc_id == gold for h in store.search("bench", q, bases=["labelled"], top_k=5))
            for q, gold in QUESTIONS
        )
        noise = sum(bool(store.search("bench", q, bases=["labelled"], top_k=5)) for q in UNRELATED)
        lines.append(
            f"  {label:<11} (floor {min_score}): recall@5 {found / len(QUESTIONS):.2f} ({found}/{len(QUESTIONS)}); "
            f"unrelated questions with hits: {noise}/{len(UNRELATED)}"
        )
    store.lexical_weight, store.min_score = weight, floor
    return lines


def run_kb_bench(*, chunks: int = 400, sizes: list[int] | None = None, queries: int = 50) -> str:
    """Run the three measurements in a throw-away embedded Chroma and return the report."""
    embedder = MiniLMEmbedder()
    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores; embedder all-MiniLM-L6-v2 on CPU"]
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        root = Path(tmp)
        store = KnowledgeStore.from_path(root / "chroma", embedder)
        lines += _rate(store, embedder, root, chunks)
        lines += _recall(store, root)
        lines += _latency(store, sizes if sizes is not None else [10_000, 100_000], queries)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run_kb_bench())
