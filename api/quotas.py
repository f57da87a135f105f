"""Per-tenant quotas: how much one tenant may keep (sessions, knowledge, tools, voices).

The service is shared, so one tenant must not be able to fill the disk, Chroma or Redis
that the others use, nor make every turn slower by registering hundreds of tools. Each
quota is a setting (`VOICEGRAPH_QUOTA_*`); a request that would go past one answers 429,
naming the quota and its setting, before anything is written.

Counts are read when a request comes, not reserved: requests racing each other may pass a
quota by the few that run at once, and one request adding documents may pass the
documents and chunks quotas by what it brings (at most VOICEGRAPH_MAX_DOCUMENTS_BYTES).
"""

from __future__ import annotations

from agent.session_service import SessionService
from api.settings import Settings
from model.errors import VoicegraphError

__all__ = ["QuotaExceededError", "require_room", "require_session_room"]

REACHED = "quota reached: this tenant has {count} {what}, the most it may keep ({setting}); delete some first"


class QuotaExceededError(VoicegraphError):
    """Adding this would take the tenant past one of its quotas (HTTP 429)."""


def require_room(count: int, limit: int, what: str, setting: str) -> None:
    """QuotaExceededError unless one more `what` fits under `limit` (`setting` names it)."""
    if count >= limit:
        raise QuotaExceededError(REACHED.format(count=count, what=what, setting=f"VOICEGRAPH_{setting.upper()}"))


async def require_session_room(sessions: SessionService, settings: Settings, tenant: str, session_id: str) -> None:
    """A turn of a session the tenant has goes on; a new session needs room under the quota."""
    if await sessions.get_session(tenant, session_id) is not None:
        return
    count = len(await sessions.list_sessions(tenant))
    require_room(count, settings.quota_sessions, "sessions", "quota_sessions")
