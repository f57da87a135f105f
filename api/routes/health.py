"""GET /healthz (liveness), GET /readyz (readiness), and GET /metrics for Prometheus.

All three are open, like probes need: they hold no tenant's data.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import RunnerDep, ServicesDep
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(agent: RunnerDep) -> Health:
    """The service is up and its models are loaded."""
    planner = agent.deps.planner
    return Health(
        status="ok",
        planner=planner.name,
        speech_native=planner.speech_native,
        tools=agent.deps.registry.names(),
    )


@router.get("/readyz", responses={503: {}})
async def readyz(services: ServicesDep) -> Ready:
    """Ready for turns: the memory backend answers (Redis reachable), else 503 within a few seconds.

    A load balancer then sends turns to other replicas, while /healthz stays 200, so an outage
    of Redis does not get every replica restarted; the answer is 200 again once Redis is back.
    """
    await services.runner.memory.ping()  # MemoryUnavailableError answers 503 (api/errors.py)
    return Ready(status="ready", memory=services.settings.memory_kind)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Turn latency per stage, time to first audio, tool calls by name and status, active sessions."""
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
