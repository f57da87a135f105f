"""/v1/knowledge-bases: a tenant's knowledge bases, their documents, and search over them.

Chroma and the embedder block, so every store call runs in a worker thread. Uploads are
a batch: each file is ingested or reported on its own, and the request fails as a whole
only when no file could be ingested.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response, status
from starlette.datastructures import UploadFile

from api.bodies import BINARY, json_body, media_type, request_body
from api.deps import ServicesDep, SettingsDep, TenantDep
from api.errors import problem
from api.kb_schemas import (
    DocumentPublic,
    FileOutcomePublic,
    IngestReportPublic,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    SearchHitPublic,
    SearchPublic,
    SearchRequest,
    TextDocumentCreate,
)
from api.quotas import require_room
from api.settings import Settings
from retrieval.ingest import FileOutcome
from retrieval.knowledge import KnowledgeStore
from retrieval.search import Hit

__all__ = ["router"]

router = APIRouter(prefix="/v1/knowledge-bases", tags=["knowledge-bases"])

NO_FILES = "send multipart/form-data with one or more 'files' parts, or application/json with 'text' and 'title'"
UNSUPPORTED_BODY = "send multipart/form-data files or application/json text"
TOO_LARGE = "{name}: over the limit of {limit} bytes"
TEXT_TOO_LONG = "text: longer than {limit} characters, the most a document may hold (VOICEGRAPH_MAX_DOCUMENT_CHARS)"
ALL_FAILED = "no document could be ingested: {problems}"
NO_BASE = "no knowledge base named {kb!r}"
MAX_FILES = 256
_FAILURE_STATUS = {"unsupported": 415, "too_large": 413}


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking store call in a worker thread (its errors answer via api/errors.py)."""
    return await asyncio.to_thread(function, *args, **kwargs)


def _hit(hit: Hit) -> SearchHitPublic:
    fields = asdict(hit)
    fields["knowledge_base"] = fields.pop("base")
    return SearchHitPublic.model_validate(fields)


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {}, 422: {}, 429: {}})
async def create_knowledge_base(
    body: KnowledgeBaseCreate, services: ServicesDep, tenant: TenantDep
) -> KnowledgeBasePublic:
    """Create an empty base; 409 when the tenant already has one by that name, 429 when it has its quota."""
    async with services.quotas.adding(tenant, "knowledge bases"):
        bases = await _call(services.knowledge.list_bases, tenant)
        if body.name not in bases:  # one it has already is a 409 (create_base says so), full or not
            quota = services.settings.quota_knowledge_bases
            require_room(len(bases), quota, "knowledge bases", "quota_knowledge_bases")
        await _call(services.knowledge.create_base, tenant, body.name)
    return KnowledgeBasePublic(name=body.name, chunks=0)


@router.get("")
async def list_knowledge_bases(services: ServicesDep, tenant: TenantDep) -> list[KnowledgeBasePublic]:
    """The caller's bases with their chunk counts (other tenants' never show)."""
    store = services.knowledge

    def listing() -> list[KnowledgeBasePublic]:
        return [KnowledgeBasePublic(name=n, chunks=store.count(tenant, n)) for n in store.list_bases(tenant)]

    result: list[KnowledgeBasePublic] = await _call(listing)
    return result


@router.delete("/{kb}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_knowledge_base(kb: str, services: ServicesDep, tenant: TenantDep) -> Response:
    if not await _call(services.knowledge.delete_base, tenant, kb):
        raise problem(status.HTTP_404_NOT_FOUND, NO_BASE.format(kb=kb))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _upload(store: KnowledgeStore, tenant: str, kb: str, request: Request, limit: int) -> list[FileOutcome]:
    form = await request.form(max_files=MAX_FILES, max_fields=16)
    uploads = [v for key in ("files", "file") for v in form.getlist(key) if isinstance(v, UploadFile)]
    if not uploads:
        raise problem(status.HTTP_400_BAD_REQUEST, NO_FILES)
    outcomes: list[FileOutcome] = []
    for upload in uploads:
        name = upload.filename or "upload"
        data = await upload.read(limit + 1)
        if len(data) > limit:
            message = TOO_LARGE.format(name=name, limit=limit)
            outcomes.append(FileOutcome(name, "failed", error=message, reason="too_large"))
            continue
        outcomes.append(await _call(store.ingest_bytes, tenant, kb, name, data))
    return outcomes


async def _ingest(
    store: KnowledgeStore, tenant: str, kb: str, request: Request, settings: Settings
) -> list[FileOutcome]:
    """The request's documents ingested: a JSON text, or the files of a form."""
    content_type = media_type(request)
    if content_type == "application/json":
        body = await json_body(request, TextDocumentCreate)
        if len(body.text) > settings.max_document_chars:
            raise problem(status.HTTP_413_CONTENT_TOO_LARGE, TEXT_TOO_LONG.format(limit=settings.max_document_chars))
        return [await _call(store.ingest_text, tenant, kb, body.text, title=body.title, doc_id=body.doc_id)]
    if content_type == "multipart/form-data":
        return await _upload(store, tenant, kb, request, settings.max_upload_bytes)
    raise problem(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_BODY)


_FILES = {"type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": BINARY}}}


@router.post(
    "/{kb}/documents",
    responses={400: {}, 404: {}, 413: {}, 415: {}, 422: {}, 429: {}},
    openapi_extra=request_body(json=TextDocumentCreate, form=_FILES),
)
async def add_documents(
    kb: str, request: Request, services: ServicesDep, settings: SettingsDep, tenant: TenantDep
) -> IngestReportPublic:
    """Ingest uploaded files (multipart `files`), or one raw text (JSON with `text` and `title`).

    Each file is ingested or fails on its own; the report lists every file. Only when no
    file could be ingested does the request fail, with the status of the first failure.
    """
    store = services.knowledge
    if not await _call(store.has_base, tenant, kb):  # before any upload is read
        raise problem(status.HTTP_404_NOT_FOUND, NO_BASE.format(kb=kb))
    async with services.quotas.adding(tenant, "documents"):  # the check and the ingest, one at a time
        documents, chunks = await _call(store.usage, tenant)
        require_room(documents, settings.quota_documents, "documents", "quota_documents")
        require_room(chunks, settings.quota_chunks, "chunks", "quota_chunks")
        outcomes = await _ingest(store, tenant, kb, request, settings)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed and len(failed) == len(outcomes):
        code = _FAILURE_STATUS.get(failed[0].reason or "", status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise problem(code, ALL_FAILED.format(problems="; ".join(o.error or o.doc_id for o in failed)))
    return IngestReportPublic(
        knowledge_base=kb,
        documents=[FileOutcomePublic.model_validate(asdict(o)) for o in outcomes],
        chunks_written=sum(o.chunks for o in outcomes),
        failed=len(failed),
        total_chunks=await _call(store.count, tenant, kb),
    )


@router.get("/{kb}/documents", responses={404: {}})
async def list_documents(kb: str, services: ServicesDep, tenant: TenantDep) -> list[DocumentPublic]:
    documents = await _call(services.knowledge.list_documents, tenant, kb)
    return [DocumentPublic.model_validate(asdict(d)) for d in documents]


@router.delete("/{kb}/documents/{doc_id:path}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_document(kb: str, doc_id: str, services: ServicesDep, tenant: TenantDep) -> Response:
    """Remove a document and all its chunks (doc_id may hold slashes: a path in a folder)."""
    await _call(services.knowledge.delete_document, tenant, kb, doc_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _search(store: KnowledgeStore, tenant: str, bases: list[str] | None, body: SearchRequest) -> SearchPublic:
    known = set(await _call(store.list_bases, tenant))
    missing = [b for b in bases or [] if b not in known]
    if missing:
        raise problem(status.HTTP_404_NOT_FOUND, NO_BASE.format(kb=missing[0]))
    hits = await _call(
        store.search, tenant, body.query, bases=bases, top_k=body.top_k, min_score=body.min_score, filters=body.filters
    )
    return SearchPublic(query=body.query, hits=[_hit(h) for h in hits])


@router.post("/search", responses={404: {}, 422: {}})
async def search_knowledge_bases(body: SearchRequest, services: ServicesDep, tenant: TenantDep) -> SearchPublic:
    """Search several bases at once (`knowledge_bases`; omitted: all the caller's)."""
    return await _search(services.knowledge, tenant, body.knowledge_bases, body)


@router.post("/{kb}/search", responses={404: {}, 422: {}})
async def search_knowledge_base(kb: str, body: SearchRequest, services: ServicesDep, tenant: TenantDep) -> SearchPublic:
    """Top-k passages of one base, best first; none when nothing clears the relevance floor."""
    return await _search(services.knowledge, tenant, [kb], body)
