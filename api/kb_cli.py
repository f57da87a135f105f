"""`voicegraph kb ...`: manage knowledge bases from the shell, without loading the speech models.

Ingestion draws a progress bar (files, chunks, chunks per second) on stderr; search can
print JSON for scripts. Bad input exits with code 2 and a one-line message, as the rest
of the CLI does; a batch with some unreadable files still ingests the others, lists each
failure and exits with code 1.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from api.cli_common import EXIT_FAILURE, EXIT_INPUT, fail, guard, load_settings
from api.compose import open_knowledge, open_settings_memory
from api.settings import Settings
from retrieval.ingest import FileOutcome, IngestReport, collect_files
from retrieval.knowledge import KnowledgeStore

__all__ = ["kb_app"]

kb_app = typer.Typer(no_args_is_help=True, help="Knowledge bases: create, fill, search.")

EXIT_PARTIAL = EXIT_FAILURE
_NO_BASE = "no knowledge base named {base!r} (create it with `voicegraph kb create {base}`)"
_ADD_WHAT = "give files or folders to add, or --text with --title"

TenantOption = Annotated[str | None, typer.Option("--tenant", help="Act as this tenant (default: the local one).")]


def _open(tenant: str | None) -> tuple[KnowledgeStore, str]:
    settings = load_settings()
    store = open_knowledge(settings)
    store.on_change = lambda changed: _touch(settings, changed)
    return store, tenant or settings.tenant


def _touch(settings: Settings, tenant: str) -> None:
    """Move the tenant's generation in the session memory: running replicas read the names
    in its bases again (agent/vocabulary.py)."""

    async def touch() -> None:
        async with open_settings_memory(settings) as memory:
            await memory.registrations.touch(tenant)

    asyncio.run(touch())


@kb_app.command("create")
def create(name: str, tenant: TenantOption = None) -> None:
    """Create an empty knowledge base."""
    store, who = _open(tenant)
    guard(store.create_base, who, name)
    typer.echo(f"created {name}")


@kb_app.command("list")
def list_bases(tenant: TenantOption = None) -> None:
    """The knowledge bases and their chunk counts."""
    store, who = _open(tenant)
    for name in guard(store.list_bases, who):
        typer.echo(f"{name}\t{store.count(who, name)} chunks")


@kb_app.command("delete")
def delete(name: str, tenant: TenantOption = None) -> None:
    """Delete a knowledge base and everything in it."""
    store, who = _open(tenant)
    if not guard(store.delete_base, who, name):
        fail(_NO_BASE.format(base=name))
    typer.echo(f"deleted {name}")


def _ingest_with_progress(store: KnowledgeStore, tenant: str, base: str, paths: list[Path]) -> IngestReport:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    files = guard(collect_files, paths)
    started = time.perf_counter()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[chunks]} chunks  {task.fields[rate]:.1f} chunks/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(f"ingesting into {base}", total=len(files), chunks=0, rate=0.0)
        written = 0

        def advance(outcome: FileOutcome) -> None:
            nonlocal written
            written += outcome.chunks
            rate = written / max(time.perf_counter() - started, 1e-6)
            progress.update(task, advance=1, chunks=written, rate=rate)

        report: IngestReport = guard(store.ingest_paths, tenant, base, paths, progress=advance)
    return report


@kb_app.command("add")
def add(
    name: str,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and folders (txt, md, html, pdf, docx).")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Add this text as a document.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="The title of --text.")] = None,
    tenant: TenantOption = None,
) -> None:
    """Add documents; adding the same document again replaces it (no duplicates)."""
    if bool(paths) == (text is not None) or (text is not None and not title):
        fail(_ADD_WHAT)
    store, who = _open(tenant)
    if not guard(store.has_base, who, name):
        fail(_NO_BASE.format(base=name))
    if text is not None and title:
        report = IngestReport([guard(store.ingest_text, who, name, text, title=title)])
    else:
        report = _ingest_with_progress(store, who, name, list(paths or []))
    counts = {s: sum(d.status == s for d in report.documents) for s in ("added", "replaced", "unchanged", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    typer.echo(
        f"{name}: {summary or 'nothing to add'}; {report.chunks} chunks written, {store.count(who, name)} in all"
    )
    for failure in report.failures:
        typer.secho(f"failed: {failure.error}", err=True, fg=typer.colors.RED)
    if report.failures:
        raise typer.Exit(EXIT_PARTIAL if len(report.failures) < report.files else EXIT_INPUT)


@kb_app.command("docs")
def docs(name: str, tenant: TenantOption = None) -> None:
    """The documents of a knowledge base."""
    store, who = _open(tenant)
    for doc in guard(store.list_documents, who, name):
        typer.echo(f"{doc.doc_id}\t{doc.chunks} chunks\t{doc.ingested_at}\t{doc.title}")


@kb_app.command("remove")
def remove(name: str, doc_id: str, tenant: TenantOption = None) -> None:
    """Remove one document from a knowledge base."""
    store, who = _open(tenant)
    removed = guard(store.delete_document, who, name, doc_id)
    typer.echo(f"removed {doc_id} ({removed} chunks)")


@kb_app.command("search")
def search(
    query: str,
    kb: Annotated[
        list[str] | None, typer.Option("--kb", help="Search this base (repeat for more; default all).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50, help="How many passages.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    tenant: TenantOption = None,
) -> None:
    """The passages that best answer a question, best first (nothing below the relevance floor)."""
    store, who = _open(tenant)
    for base in kb or []:
        if not guard(store.has_base, who, base):
            fail(_NO_BASE.format(base=base))
    hits = guard(store.search, who, query, bases=kb or None, top_k=top_k)
    if as_json:
        typer.echo(json.dumps({"query": query, "hits": [asdict(h) for h in hits]}, indent=2, ensure_ascii=False))
        return
    if not hits:
        typer.echo("no relevant passage found")
    for number, hit in enumerate(hits, 1):
        snippet = " ".join(hit.text.split())[:160]
        typer.echo(f"[{number}] {hit.score:.3f} {hit.base}/{hit.doc_id} ({hit.title}): {snippet}")


@kb_app.command("bench")
def bench(
    chunks: Annotated[int, typer.Option(help="Chunks to ingest for the rate (real embedder).")] = 400,
    sizes: Annotated[str, typer.Option(help="Base sizes for query latency, comma separated.")] = "10000,100000",
    queries: Annotated[int, typer.Option(help="Queries timed per size.")] = 50,
) -> None:
    """Ingestion rate vs the embedder's, query latency p50/p95 by base size, and recall@5."""
    from api.kb_bench import run_kb_bench

    typer.echo(run_kb_bench(chunks=chunks, sizes=[int(s) for s in sizes.split(",") if s], queries=queries))
