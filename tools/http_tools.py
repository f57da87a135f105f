"""HTTP tools that users register at run time: the agent POSTs the arguments as JSON to a URL.

The definition is the tool's name, description and JSON-schema parameters, plus where to
send the call (`url`, optional `headers`, `timeout_s`). The agent cannot know what a POST
does, so a tool not declared `read_only` is taken to change things, and each call waits
for the user's yes (`confirm`, agent/confirmation.py). The response body is the result:
JSON is passed on as JSON text, anything else as text, cut to a size the model can read.

The URL is a request our server makes inside our network: the client must be one whose
transport is `tools.outbound.PinnedTransport`, which refuses private addresses (unless the
operator allowed them) at the moment it connects, and redirects are not followed.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tools.base import (
    UNTRUSTED_REPLY,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    TransientToolError,
    cut_text,
    fenced,
)
from tools.errors import UnsafeTargetError
from tools.outbound import ACCEPTED_ENCODINGS, DEFAULT_MAX_RESPONSE_BYTES, read_capped, redact, redact_in

__all__ = ["HttpToolDefinition", "http_tool"]

_UNREACHABLE = "could not reach {url}: {error}"
_SERVER_ERROR = "{url} answered {status}"
_CLIENT_ERROR = "{url} refused the call with {status}: {body}"


class HttpToolDefinition(BaseModel):
    """What a tenant registers (POST /v1/tools) and what is kept for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    description: str = Field(min_length=1, max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON schema of the arguments (type object)."""
    url: str = Field(min_length=1, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every call (an API key for the target, say); never shown back in listings."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    read_only: bool = False
    """The endpoint changes nothing, so a transient failure may be retried once."""
    confirm: bool | None = None
    """Ask the user before each call ("Shall I ...?") and run it on their yes; None: ask unless `read_only`."""

    @property
    def asks(self) -> bool:
        """Whether each call waits for the user's yes."""
        return not self.read_only if self.confirm is None else self.confirm


def _text(response: httpx.Response, body: bytes, *, more: bool) -> str:
    """The body as the model reads it: JSON as compact JSON, anything else as text, cut."""
    text = None
    if not more:  # a cut JSON document does not parse: it is read as text
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(body), ensure_ascii=False)
    if text is None:
        try:
            text = body.decode(response.charset_encoding or "utf-8", errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
    return cut_text(text, more=more)


def http_tool(
    definition: HttpToolDefinition,
    client: httpx.AsyncClient,
    *,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Tool:
    """The Tool that calls `definition.url` through `client` (shared, pinned), redirects off.

    At most `max_response_bytes` of the answer are read (see tools/outbound.py).
    """
    shown = redact(definition.url)  # errors reach the model and the traces: no credentials in them
    headers = httpx.Headers(definition.headers)
    headers["Accept-Encoding"] = ACCEPTED_ENCODINGS

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            async with client.stream(
                "POST",
                definition.url,
                json=arguments,
                headers=headers,
                timeout=definition.timeout_s,
                follow_redirects=False,
            ) as response:
                if response.status_code >= 500:
                    raise TransientToolError(_SERVER_ERROR.format(url=shown, status=response.status_code))
                body, more = await read_capped(response, max_response_bytes)
        except httpx.TimeoutException as error:
            raise TimeoutError(str(error)) from error
        except httpx.TransportError as error:
            reason = redact_in(str(error), definition.url)
            raise TransientToolError(_UNREACHABLE.format(url=shown, error=reason)) from error
        except UnsafeTargetError as error:  # the host now resolves to a private address
            raise ToolError(str(error)) from error
        text = _text(response, body, more=more)
        if response.status_code >= 300:
            raise ToolError(_CLIENT_ERROR.format(url=shown, status=response.status_code, body=text[:300]))
        return ToolResult(fenced(UNTRUSTED_REPLY.format(name=definition.name), "tool-reply", text))

    spec = ToolSpec(
        name=definition.name,
        description=definition.description,
        parameters=definition.parameters,
        timeout_s=definition.timeout_s,
        read_only=definition.read_only,
        confirm=definition.asks,
    )
    return Tool(spec=spec, handler=handler)
