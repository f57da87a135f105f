"""GET /healthz, and GET /metrics for Prometheus (open like /healthz: it holds no tenant's data)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import AgentDep, ServicesDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(agent: AgentDep) -> Health:
    """The service is up and its models are loaded."""
    planner = agent.deps.planner
    return Health(
        status="ok",
        planner=planner.name,
        speech_native=planner.speech_native,
        tools=agent.deps.registry.names(),
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Turn latency per stage, time to first audio, tool calls by name and status, active sessions."""
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
