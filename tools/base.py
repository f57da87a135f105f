"""The tool contract: a spec, an async handler, and the result the handler returns.

A handler gets validated arguments and a ToolContext (who is asking, which session) and
returns a ToolResult: text for the model, the citations that text rests on, and optional
updates to session state (the session voice, for audio search).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict

from model.base import ToolSpecDict
from model.errors import VoicegraphError

__all__ = [
    "CITATION_MARKER",
    "Citation",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolHandler",
    "ToolResult",
    "ToolSpec",
    "TransientToolError",
]


class ToolError(VoicegraphError):
    """Raised by a handler to tell the model why the call failed; the message goes to the model."""


CITATION_MARKER = re.compile(r"\[(\d+)\]")
"""How text cites a source: "[n]", n being the citation's id. Tools number their passages so."""


class TransientToolError(ToolError):
    """A failure that may pass if tried again (a refused connection, a 5xx): read-only tools get one retry."""


class Citation(TypedDict):
    id: str
    """The number the model cites, as text: "1", "2", ... unique within a turn."""
    source: str
    """Where it came from: a file name, a site, a tool."""
    title: str
    snippet: str
    url: NotRequired[str]
    doc_id: NotRequired[str]


@dataclass(frozen=True)
class ToolContext:
    tenant: str
    session_id: str
    knowledge_bases: tuple[str, ...] | None = None
    """The knowledge bases this turn may search; None means all of the tenant's."""


@dataclass
class ToolResult:
    content: str
    """What the model reads."""
    citations: list[Citation] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    """Updates to session state, such as {"voice": "..."}."""


class ToolHandler(Protocol):
    def __call__(self, arguments: dict[str, Any], context: ToolContext) -> Awaitable[ToolResult]: ...


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]
    """JSON schema of the arguments (an object schema)."""
    timeout_s: float = 15.0
    read_only: bool = False
    """The call changes nothing anywhere, so a transient failure may be retried once."""

    def declaration(self) -> ToolSpecDict:
        """The spec as a planner sees it."""
        return ToolSpecDict(name=self.name, description=self.description, parameters=dict(self.parameters))


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    handler: ToolHandler | Callable[[dict[str, Any], ToolContext], Awaitable[ToolResult]]
