"""POST /v1/chat/completions: the agent for clients of the audio Chat Completions API (api/chat_completions.py).

Errors answer in OpenAI's shape (`{"error": {"message", "type", "code"}}`), which its SDKs
read and show; a missing or wrong key still gets the service's own 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from api.bodies import json_body, request_body
from api.chat_completions import ChatRequest, completion, completion_chunks
from api.deps import RunnerDep, SessionsDep, SettingsDep, TenantDep
from api.errors import error_answer
from api.schemas import Problem

router = APIRouter(tags=["chat"])


class ChatErrorDetail(BaseModel):
    message: str
    type: str
    param: None = None
    code: int


class ChatError(BaseModel):
    """OpenAI's error shape, which its SDKs read and show."""

    error: ChatErrorDetail


# The body limits, the key check and the rate limit answer before the route, in the service's own shape.
_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ChatError | Problem} for code in (400, 401, 404, 413, 415, 422, 429, 500, 502, 503, 504)
}


@router.post(
    "/v1/chat/completions", response_model=None, responses=_RESPONSES, openapi_extra=request_body(json=ChatRequest)
)
async def chat_completions(
    request: Request, agent: RunnerDep, sessions: SessionsDep, settings: SettingsDep, tenant: TenantDep
) -> dict[str, Any] | StreamingResponse | JSONResponse:
    """One answer to the conversation's last user message (text or `input_audio`), spoken
    when `modalities` has "audio"; streamed as chunks with `stream`."""
    try:
        body = await json_body(request, ChatRequest)
        if body.stream:
            chunks = await completion_chunks(agent, sessions, body, tenant, settings)
            return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        return await completion(agent, sessions, body, tenant, settings)
    except HTTPException as refused:
        return _error(refused.status_code, str(refused.detail))
    except Exception as error:
        return _error(*error_answer(error, "POST /v1/chat/completions"))


def _error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


__all__ = ["router"]
