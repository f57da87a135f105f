from __future__ import annotations

from fastapi import APIRouter

from api.deps import AgentDep
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
