"""WebSocket /v1/realtime: the OpenAI Realtime protocol on voicegraph's agent (api/realtime.py).

The key comes as `Authorization: Bearer` (servers, the openai SDK) or as the
`openai-insecure-api-key.<key>` subprotocol (browsers); a refused key is refused at the
handshake (HTTP 401/429, with the reason). `?session_id=` picks the voicegraph session the
connection talks in (a new one when absent), so a client can come back to its memory.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, WebSocket
from fastapi.responses import JSONResponse

from agent.runner import validate_session_id
from api.deps import get_tenant, services_of
from api.quotas import QuotaExceededError
from api.realtime import RealtimeConnection
from api.realtime_protocol import new_id
from model.errors import InputError

router = APIRouter(tags=["realtime"])
log = logging.getLogger(__name__)

NO_ASR = "realtime needs a speech recognizer, and this service's planner runs without one"


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    services = services_of(websocket)
    try:
        tenant = await get_tenant(websocket, services)
        session_id = websocket.query_params.get("session_id") or new_id("rt")
        validate_session_id(session_id)
        if services.runner.deps.asr is None:
            raise HTTPException(503, NO_ASR)
        ended = await services.quotas.reserve_session(services.sessions, services.settings, tenant, session_id)
    except HTTPException as refused:
        response = JSONResponse({"detail": refused.detail}, refused.status_code, headers=refused.headers)
        await websocket.send_denial_response(response)
        return
    except InputError as bad:
        await websocket.send_denial_response(JSONResponse({"detail": str(bad)}, 400))
        return
    except QuotaExceededError as full:
        await websocket.send_denial_response(JSONResponse({"detail": str(full)}, 429))
        return
    try:  # a new session stays reserved under the quota while its connection is open
        offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
        connection = RealtimeConnection(
            websocket,
            services.runner,
            asr=services.runner.deps.asr,
            tenant=tenant,
            session_id=session_id,
            model=services.runner.deps.planner.name,
        )
        await connection.run()
    finally:
        ended()
