"""POST /v1/sessions/{session_id}/turns: one turn, text (JSON) or audio (multipart)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, status
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from agent.runner import TurnRequest, validate_session_id
from api.bodies import json_body, media_type
from api.deps import QuotasDep, RunnerDep, SessionsDep, SettingsDep, TenantDep
from api.errors import problem
from api.schemas import TurnCreate, TurnPublic
from api.settings import Settings
from api.streaming import EVENT_STREAM, public_turn, stream_turn
from model.audio import decode_audio
from model.voices import parse_voice_id

router = APIRouter(prefix="/v1/sessions", tags=["turns"])

TOO_LARGE = "upload is larger than {limit} bytes"
UNSUPPORTED = "send application/json with a 'text' field, or multipart/form-data with an 'audio' file"
NO_AUDIO = "multipart turn needs an 'audio' file part"


async def _parse(request: Request, session_id: str, tenant: str, settings: Settings) -> TurnRequest:
    content_type = media_type(request)
    if content_type == "application/json":
        body = await json_body(request, TurnCreate)
        kbs = tuple(body.knowledge_bases) if body.knowledge_bases is not None else None
        voice = _voice(body.voice)
        return TurnRequest(
            session_id, text=body.text, tenant=tenant, speak=body.speak, knowledge_bases=kbs, voice=voice
        )
    if content_type != "multipart/form-data":
        raise problem(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED)
    form = await request.form(max_files=1, max_fields=16)  # knowledge_bases among them: a turn's few
    upload = form.get("audio")
    if not isinstance(upload, UploadFile):
        raise problem(status.HTTP_400_BAD_REQUEST, NO_AUDIO)
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise problem(status.HTTP_413_CONTENT_TOO_LARGE, TOO_LARGE.format(limit=settings.max_upload_bytes))
    if not data:
        raise problem(status.HTTP_400_BAD_REQUEST, "the 'audio' file is empty")
    audio = await asyncio.to_thread(decode_audio, data, max_seconds=settings.max_audio_seconds)
    speak = str(form.get("speak", "true")).lower() not in {"false", "0", "no"}
    kbs = tuple(str(v) for v in form.getlist("knowledge_bases")) or None
    voice = _voice(str(form["voice"])) if "voice" in form else None
    return TurnRequest(session_id, audio=audio, tenant=tenant, speak=speak, knowledge_bases=kbs, voice=voice)


def _voice(voice: str | None) -> str | None:
    """The turn's `voice` option, checked: a voice id, "" (back to the default) or None (unchanged)."""
    if voice:
        try:
            parse_voice_id(voice)
        except ValueError as err:
            raise problem(status.HTTP_422_UNPROCESSABLE_CONTENT, f"voice: {err}") from err
    return voice


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {EVENT_STREAM: {"schema": {"type": "string", "description": "see api/streaming.py"}}}},
    **{code: {} for code in (400, 401, 409, 413, 415, 422, 429, 503)},
}


# The body is read by hand (JSON or a form, under the body limits), so the document is told what it takes.
_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": TurnCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["audio"],
                "properties": {
                    "audio": {"type": "string", "format": "binary"},
                    "speak": {"type": "boolean"},
                    "knowledge_bases": {"type": "array", "items": {"type": "string"}},
                    "voice": {"type": "string"},
                },
            }
        },
    },
}


@router.post(
    "/{session_id}/turns", response_model=TurnPublic, responses=_RESPONSES, openapi_extra={"requestBody": _BODY}
)
async def create_turn(
    session_id: str,
    request: Request,
    agent: RunnerDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    quotas: QuotasDep,
    tenant: TenantDep,
) -> TurnPublic | StreamingResponse:
    """Run one turn: the answer, its citations and tool calls, and the spoken reply.

    With `Accept: text/event-stream` the turn streams as server-sent events while it runs
    (transcript, tool calls and results, text, audio chunks, then the result).
    """
    validate_session_id(session_id)
    ended = await quotas.reserve_session(sessions, settings, tenant, session_id)
    streaming = False
    try:
        turn = await _parse(request, session_id, tenant, settings)
        if EVENT_STREAM in request.headers.get("accept", ""):
            streaming = True  # the turn runs as the response streams, and ends it there
            return await stream_turn(agent, turn, f"{request.method} {request.url.path}", ended)
        return public_turn(await agent.run_turn(turn))
    finally:
        if not streaming:
            ended()


__all__ = ["router"]
