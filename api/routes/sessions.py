"""GET /v1/sessions, GET and DELETE /v1/sessions/{session_id}, GET .../traces: the caller's tenant's sessions.

Another tenant's session answers 404, exactly like one that never existed, so ids leak
nothing across tenants.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from api.deps import SessionsDep, TenantDep
from api.errors import problem
from api.schemas import SessionPublic, SessionsPublic, SessionSummary, SessionTurnPublic, TracePublic, TracesPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

NOT_FOUND = "no session {session_id!r}"


def _not_found(session_id: str) -> HTTPException:
    return problem(status.HTTP_404_NOT_FOUND, NOT_FOUND.format(session_id=session_id))


@router.get("", responses={401: {}, 429: {}, 503: {}})
async def list_sessions(sessions: SessionsDep, tenant: TenantDep) -> SessionsPublic:
    """The tenant's live sessions, most recently used first."""
    found = await sessions.list_sessions(tenant)
    return SessionsPublic(sessions=[SessionSummary.model_validate(info) for info in found])


@router.get("/{session_id}", responses={401: {}, 404: {}, 422: {}, 429: {}, 503: {}})
async def get_session(session_id: str, sessions: SessionsDep, tenant: TenantDep) -> SessionPublic:
    """The session and its kept turns: transcript, answer, tool calls, citations, voice."""
    found = await sessions.get_session(tenant, session_id)
    if found is None:
        raise _not_found(session_id)
    info, records = found
    return SessionPublic(
        session_id=info["session_id"],
        created_at=info["created_at"],  # type: ignore[arg-type]  # pydantic reads epoch seconds
        updated_at=info["updated_at"],  # type: ignore[arg-type]
        turn_count=info["turns"],
        turns=[SessionTurnPublic.model_validate(record) for record in records],
        voice=records[-1].get("voice") if records else None,
    )


@router.get("/{session_id}/traces", responses={401: {}, 404: {}, 422: {}, 429: {}, 503: {}})
async def get_traces(session_id: str, sessions: SessionsDep, tenant: TenantDep) -> TracesPublic:
    """Every kept turn's span tree: what was heard, each planning step, each tool call with its
    arguments and result, and the speech, with their durations."""
    found = await sessions.traces(tenant, session_id)
    if found is None:
        raise _not_found(session_id)
    return TracesPublic(session_id=session_id, traces=[TracePublic.model_validate(t) for t in found])


@router.delete(
    "/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}, 404: {}, 409: {}, 429: {}, 503: {}}
)
async def delete_session(session_id: str, sessions: SessionsDep, tenant: TenantDep) -> Response:
    """Forget the session: its conversation and its turn log."""
    deleted = await sessions.delete_session(tenant, session_id)
    if not deleted:
        raise _not_found(session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
