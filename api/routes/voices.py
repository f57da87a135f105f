"""/v1/voices: the voice library. List or search voices, add one from a sample clip, hear a sample.

The library's calls block (Chroma, resemblyzer, the synthesizer), so each runs in a worker
thread. A voice's id is what a turn's `voice` option and the session report carry.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from api.bodies import BINARY, media_type, request_body
from api.deps import ServicesDep, SettingsDep, TenantDep
from api.errors import problem
from api.quotas import require_room
from model.audio import decode_audio
from retrieval.voices import Voice, VoiceHit, VoiceLibrary

__all__ = ["VoicePublic", "router"]

router = APIRouter(prefix="/v1/voices", tags=["voices"])

VOICES_OFF = "the voice library is off (VOICEGRAPH_VOICES=false)"
NEED_SAMPLE = "send multipart/form-data with a 'sample' audio file and a 'description' field"
TOO_LARGE = "the sample is larger than {limit} bytes"
NO_SAMPLE = "no voice {voice!r} with a sample here"


class VoicePublic(BaseModel):
    id: str
    """Pass it as a turn's `voice` to speak in this voice."""
    name: str
    description: str
    engine: str
    parameters: dict[str, Any]
    builtin: bool
    pitch_hz: float
    rate: float
    score: float | None = None
    """Search results only: how near the voice is (higher is nearer)."""


def _public(voice: Voice, score: float | None = None) -> VoicePublic:
    fields = {k: v for k, v in asdict(voice).items() if k != "sample_path"}
    return VoicePublic.model_validate({**fields, "score": score})


def _hits(hits: list[VoiceHit]) -> list[VoicePublic]:
    return [_public(hit.voice, round(hit.score, 4)) for hit in hits]


def _library(services: ServicesDep) -> VoiceLibrary:
    if services.voices is None:
        raise problem(status.HTTP_503_SERVICE_UNAVAILABLE, VOICES_OFF)
    return services.voices


async def _sample(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    if media_type(request) != "multipart/form-data":
        raise problem(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, NEED_SAMPLE)
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("sample")
    if not isinstance(upload, UploadFile):
        raise problem(status.HTTP_400_BAD_REQUEST, NEED_SAMPLE)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise problem(status.HTTP_413_CONTENT_TOO_LARGE, TOO_LARGE.format(limit=limit))
    return data, {k: str(v) for k, v in form.items() if isinstance(v, str)}


@router.get("")
async def list_voices(
    services: ServicesDep, tenant: TenantDep, q: str | None = None, top_k: int = 5
) -> list[VoicePublic]:
    """Every voice the caller can use (built-ins, then their own); with `q`, the nearest to that description."""
    library = _library(services)
    if q:
        return _hits(await asyncio.to_thread(library.search, tenant, q, max(1, min(top_k, 50))))
    return [_public(voice) for voice in await asyncio.to_thread(library.list_voices, tenant)]


_SAMPLE = {
    "type": "object",
    "required": ["sample", "description"],
    "properties": {"sample": BINARY, "description": {"type": "string"}, "name": {"type": "string"}},
}
_EXAMPLE = {"type": "object", "required": ["sample"], "properties": {"sample": BINARY}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={400: {}, 413: {}, 415: {}, 422: {}, 429: {}},
    openapi_extra=request_body(form=_SAMPLE),
)
async def add_voice(request: Request, services: ServicesDep, settings: SettingsDep, tenant: TenantDep) -> VoicePublic:
    """A voice like the `sample` clip: the nearest built-in timbre at the sample's pitch and pace."""
    library = _library(services)
    async with services.quotas.adding(tenant, "voices"):
        own = await asyncio.to_thread(library.count_own, tenant)
        require_room(own, settings.quota_voices, "voices", "quota_voices")
        clip, fields = await _sample(request, settings.max_upload_bytes)
        description = fields.get("description", "").strip()
        if not description:
            raise problem(status.HTTP_422_UNPROCESSABLE_CONTENT, NEED_SAMPLE)
        name = fields.get("name", "").strip() or None
        voice = await asyncio.to_thread(library.add, tenant, description=description, clip=clip, name=name)
    return _public(voice)


@router.post("/search", responses={400: {}, 413: {}, 415: {}, 422: {}}, openapi_extra=request_body(form=_EXAMPLE))
async def search_by_example(
    request: Request, services: ServicesDep, settings: SettingsDep, tenant: TenantDep, top_k: int = 5
) -> list[VoicePublic]:
    """The voices whose samples sound nearest to the `sample` clip (speaker embeddings)."""
    library = _library(services)
    clip, _ = await _sample(request, settings.max_upload_bytes)
    audio = await asyncio.to_thread(decode_audio, clip, max_seconds=settings.max_audio_seconds)
    hits = await asyncio.to_thread(library.search_by_example, tenant, audio, 16_000, max(1, min(top_k, 50)))
    return _hits(hits)


@router.get("/sample", responses={401: {}, 404: {}}, response_class=Response)
async def voice_sample(voice: str, services: ServicesDep, tenant: TenantDep) -> Response:
    """The rendered sample (WAV) of a built-in voice or one of the caller's: what the voice sounds like."""
    wav = await asyncio.to_thread(_library(services).sample_wav, voice, tenant)
    if wav is None:
        raise problem(status.HTTP_404_NOT_FOUND, NO_SAMPLE.format(voice=voice))
    return Response(content=wav, media_type="audio/wav")
