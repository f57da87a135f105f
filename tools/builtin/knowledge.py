"""The `knowledge_search` tool: passages from the user's own documents, numbered for citing.

The model reads "[1] (handbook.md) ..." and cites [1]; the same numbers come back as
citations, so the answer and its sources line up. When nothing clears the store's
relevance floor the tool says so plainly, which is what lets the model answer "I don't
know" instead of guessing from the nearest unrelated passage.
"""

from __future__ import annotations

import asyncio
from typing import Any

from retrieval.knowledge import Hit, KnowledgeStore
from tools.base import Citation, Tool, ToolContext, ToolResult, ToolSpec

__all__ = ["NAME", "format_hits", "knowledge_search_tool"]

NAME = "knowledge_search"
_DESCRIPTION = (
    "Search the user's private documents (knowledge base) for facts; use for questions about their notes, "
    "files, policies or projects."
)
_PARAMETERS = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to look for, as a short question or keywords."}},
    "required": ["query"],
    "additionalProperties": False,
}
_NOTHING = (
    "No relevant passage was found in the user's documents for {query!r}. "
    "Say that the documents do not answer this; do not guess."
)
_HEADER = "Passages from the user's documents; cite them by number, like [1]:"
_SNIPPET_CHARS = 200


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1].rstrip() + "…"


def format_hits(query: str, hits: list[Hit]) -> ToolResult:
    """Numbered passages for the model and the matching citations ("1", "2", ...)."""
    if not hits:
        return ToolResult(content=_NOTHING.format(query=query))
    lines = [_HEADER]
    citations: list[Citation] = []
    for number, hit in enumerate(hits, start=1):
        lines.append(f"[{number}] ({hit.source}) {hit.text.strip()}")
        citations.append(
            Citation(id=str(number), source=hit.source, title=hit.title, snippet=_snippet(hit.text), doc_id=hit.doc_id)
        )
    return ToolResult(content="\n\n".join(lines), citations=citations)


def knowledge_search_tool(store: KnowledgeStore, top_k: int = 4) -> Tool:
    """The tool over `store`, searching the bases the turn allows (all the tenant's by default).

    Search runs in a worker thread: embedding the query and reading Chroma are blocking,
    and the event loop keeps streaming audio meanwhile.
    """

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        query = str(arguments["query"]).strip()
        hits = await asyncio.to_thread(store.search, context.tenant, query, bases=context.knowledge_bases, top_k=top_k)
        return format_hits(query, hits)

    # 30 s: the first search in a process may still be loading the embedding model.
    spec = ToolSpec(name=NAME, description=_DESCRIPTION, parameters=_PARAMETERS, timeout_s=30.0)
    return Tool(spec=spec, handler=handler)
