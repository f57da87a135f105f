"""FastAPI dependencies: the services built at start-up, reached through app.state, and the caller's tenant.

With VOICEGRAPH_API_KEYS set, every /v1 request must bring a key (`Authorization: Bearer`
or `X-API-Key`); the key decides the tenant, and everything the request reaches is that
tenant's. Keys are compared in constant time against every configured key, and never
logged: only a hash of a key names its rate-limit counter. Requests refused for their key
are counted per client address, and an address past its limit is refused (429) before
any key it brings is even compared, so keys cannot be guessed at speed.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from agent.runner import TurnRunner
from agent.session_service import SessionService
from api.compose import Services
from api.forwarded import TrustedProxies
from api.quotas import Quotas
from api.ratelimit import RateLimiter, RateLimitUnavailableError
from api.settings import Settings

__all__ = [
    "QuotasDep",
    "RunnerDep",
    "ServicesDep",
    "SessionsDep",
    "SettingsDep",
    "TenantDep",
    "authenticate",
    "check_key",
    "get_tenant",
    "services_of",
]

NO_KEY = "this service needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
BAD_KEY = "the API key is not valid"
RATE_LIMITED = "too many requests for this API key: at most {limit} a minute; retry in {retry:.0f} s"
TOO_MANY_FAILURES = (
    "too many requests with a missing or wrong API key from this address: at most {limit} a minute "
    "(VOICEGRAPH_AUTH_FAILURES_PER_MINUTE); retry in {retry:.0f} s"
)
UNAVAILABLE_RETRY_S = 5
_CHECKED = "voicegraph.key"
"""Where a request's scope keeps the key check's outcome, so it is made once per request."""


def services_of(request: HTTPConnection) -> Services:
    services: Services = request.app.state.services
    return services


# The dependencies are coroutines, though none awaits: FastAPI runs a plain function's in a
# worker thread, a hand-off to and from a thread per dependency of every request.


async def get_services(request: HTTPConnection) -> Services:
    return services_of(request)


async def get_runner(services: Annotated[Services, Depends(get_services)]) -> TurnRunner:
    return services.runner


async def get_sessions(services: Annotated[Services, Depends(get_services)]) -> SessionService:
    return services.sessions


async def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


async def get_quotas(services: Annotated[Services, Depends(get_services)]) -> Quotas:
    return services.quotas


BROWSER_KEY_PROTOCOL = "openai-insecure-api-key."
"""A browser cannot set a WebSocket's headers, so it offers its key as a subprotocol."""


def _presented_key(request: HTTPConnection) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if key := request.headers.get("x-api-key"):
        return key
    for offered in request.headers.get("sec-websocket-protocol", "").split(","):
        if offered.strip().startswith(BROWSER_KEY_PROTOCOL):
            return offered.strip()[len(BROWSER_KEY_PROTOCOL) :] or None
    return None


def _match(presented: str, keys: dict[str, str]) -> str | None:
    """The tenant of `presented`, checking every key so timing does not tell how far a guess got."""
    tenant: str | None = None
    given = presented.encode()
    for key, owner in keys.items():
        if hmac.compare_digest(given, key.encode()):
            tenant = owner
    return tenant


def authenticate(request: HTTPConnection, keys: dict[str, str]) -> tuple[str, str]:
    """The tenant of the key the request brings and the key itself; HTTPException 401 without a valid one.

    Also run by api/limits.py before a request's body is read, so a caller without a key
    cannot make the server buffer anything.
    """
    presented = _presented_key(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if presented is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, NO_KEY, headers=challenge)
    found = _match(presented, keys)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, BAD_KEY, headers=challenge)
    return found, presented


async def _counted(limiter: RateLimiter, caller: str, *, peek: bool = False) -> float | None:
    """`limiter`'s answer for `caller`; 503 when it cannot count (the limit fails closed)."""
    try:
        return await (limiter.peek(caller) if peek else limiter.hit(caller))
    except RateLimitUnavailableError as error:
        retry = {"Retry-After": str(UNAVAILABLE_RETRY_S)}
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error), headers=retry) from error


def _too_many(message: str, retry: float) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, message, headers={"Retry-After": str(int(retry))})


async def check_key(
    request: HTTPConnection, keys: dict[str, str], failures: RateLimiter | None, proxies: TrustedProxies
) -> tuple[str, str]:
    """`authenticate`, with the requests it refuses counted against the client's address in
    `failures` (read past `proxies` only, api/forwarded.py): an address over that limit gets 429
    without its key being compared."""
    checked: tuple[str, str] | None = request.scope.get("state", {}).get(_CHECKED)
    if checked is not None:
        return checked
    address = "address:" + proxies.client(request.scope)
    if failures is not None and (retry := await _counted(failures, address, peek=True)) is not None:
        raise _too_many(TOO_MANY_FAILURES.format(limit=failures.per_minute, retry=retry), retry)
    try:
        checked = authenticate(request, keys)
    except HTTPException:
        if failures is not None:
            await _counted(failures, address)
        raise
    request.scope.setdefault("state", {})[_CHECKED] = checked
    return checked


async def get_tenant(request: HTTPConnection, services: Annotated[Services, Depends(get_services)]) -> str:
    """The caller's tenant: the configured key's, or the one local tenant when no keys are configured."""
    settings = services.settings
    caller = f"tenant:{settings.tenant}"
    tenant = settings.tenant
    if services.tenant_keys:
        tenant, presented = await check_key(request, services.tenant_keys, services.auth_failures, services.proxies)
        caller = "key:" + hashlib.sha256(presented.encode()).hexdigest()[:24]
    if services.rate_limiter is not None:
        retry = await _counted(services.rate_limiter, caller)
        if retry is not None:
            raise _too_many(RATE_LIMITED.format(limit=settings.rate_limit_per_minute, retry=retry), retry)
    return tenant


ServicesDep = Annotated[Services, Depends(get_services)]
RunnerDep = Annotated[TurnRunner, Depends(get_runner)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
QuotasDep = Annotated[Quotas, Depends(get_quotas)]
TenantDep = Annotated[str, Depends(get_tenant)]
