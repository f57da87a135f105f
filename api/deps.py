"""FastAPI dependencies: the services built at start-up, reached through app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent.runner import Agent
from api.compose import Services
from api.settings import Settings

__all__ = ["AgentDep", "ServicesDep", "SettingsDep", "TenantDep"]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_agent(services: Annotated[Services, Depends(get_services)]) -> Agent:
    return services.agent


def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


def get_tenant(settings: Annotated[Settings, Depends(get_settings)]) -> str:
    """The caller's tenant. One local tenant until API keys map keys to tenants."""
    return settings.tenant


ServicesDep = Annotated[Services, Depends(get_services)]
AgentDep = Annotated[Agent, Depends(get_agent)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TenantDep = Annotated[str, Depends(get_tenant)]
