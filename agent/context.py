"""What nodes reach through the runtime context: the turn's input and the agent's parts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from agent.speech import FirstAudioGate
from agent.tracing import TurnTrace, untraced
from agent.vocabulary import TurnVocabulary, VocabularyCache, gather
from model.base import Planner, SpeechRecognizer, SpeechSynthesizer, ToolSpecDict
from retrieval.relevance import ToolRelevance
from tools.base import Tool, ToolContext, Vocabulary
from tools.registry import ToolRegistry
from tools.runtime import DEFAULT_MAX_CONCURRENCY

__all__ = ["AgentDeps", "TurnContext", "VoiceActivityDetector"]

log = logging.getLogger(__name__)


class VoiceActivityDetector(Protocol):
    def trim(self, audio: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class AgentDeps:
    """The parts a turn runs on; built once by the composition root."""

    planner: Planner
    registry: ToolRegistry
    asr: SpeechRecognizer | None = None
    """Needed when the planner is not speech-native and a turn brings audio."""
    tts: SpeechSynthesizer | None = None
    """Speaks answers the planner did not speak itself; None: text only."""
    vad: VoiceActivityDetector | None = None
    max_tool_rounds: int = 3
    history_turns: int = 8
    """How many earlier turns the planner is shown."""
    max_stored_turns: int | None = None
    """Turns a session keeps (older ones dropped, unseen ones trimmed); None: every turn."""
    tenant_tools: Callable[[str], Awaitable[list[Tool]]] | None = None
    """The tools a tenant registered itself (HTTP, MCP), added to `registry` for its turns."""
    max_tool_concurrency: int = DEFAULT_MAX_CONCURRENCY
    """Calls of one planning step that may run at the same time."""
    announce_tools: bool = True
    """While tools run, say the line their specs give ("Let me check the time in Tokyo."), unless
    the planner already said something before calling them."""
    paralinguistics: bool = True
    """Measure how each spoken turn was said (pitch, loudness, pace, pauses), show it in the
    result and give the planner a cue line when something stands out (agent/cues.py)."""
    adapt_delivery: bool = True
    """Let the reply's pitch and pace follow the cue (calmer and slower for a hurried speaker)."""
    relevance: ToolRelevance | None = None
    """Tells a call the user's words do not ask for (retrieval/relevance.py), for tools that
    cannot tell themselves; None: every such call stands."""
    vocabularies: VocabularyCache | None = None
    """What the tools know of each tenant, kept across turns (agent/vocabulary.py); None: read every turn."""

    async def vocabulary(self, tools: Sequence[Tool], context: ToolContext) -> Vocabulary:
        """What `tools` know of the context's tenant: as kept (`vocabularies`), else read now."""
        kept = self.vocabularies
        return await (gather(tools, context) if kept is None else kept.get(tools, context))

    async def registry_for(self, tenant: str) -> ToolRegistry:
        """`registry` plus the tenant's own tools, fixed for the length of a turn."""
        extra = await self.tenant_tools(tenant) if self.tenant_tools else []
        return self.registry.overlay(extra) if extra else self.registry


@dataclass(frozen=True)
class TurnContext:
    """One turn's input and the deps, handed to every node as `runtime.context`."""

    deps: AgentDeps
    tenant: str
    session_id: str
    text: str | None = None
    """What the user typed, or what the audio says when it was heard already."""
    audio: np.ndarray | None = None
    """16 kHz mono float32, already decoded and checked."""
    speak: bool = True
    knowledge_bases: tuple[str, ...] | None = None
    registry: ToolRegistry | None = None
    """This turn's tools (the deps' plus the tenant's); None: the deps' registry alone."""
    voice: str | None = None
    """A voice the request asked for, the session voice from this turn on; "" the default; None: unchanged."""
    instructions: str = ""
    """The client's own instructions for its session (a realtime session.update)."""
    tool_choice: Literal["auto", "none"] = "auto"
    """"none": answer without calling a tool."""
    client_tools: tuple[ToolSpecDict, ...] = ()
    """Tools the client runs itself: a call to one ends the turn, and its output comes back as
    the next turn's input (`tool_outputs`)."""
    tool_outputs: tuple[tuple[str, str], ...] = ()
    """(call id, output) of the client's calls: this turn's input instead of text or audio."""
    trace: TurnTrace = field(default_factory=untraced)
    """Where the nodes add their spans (see agent/tracing.py)."""
    vocabulary: TurnVocabulary = field(default_factory=TurnVocabulary)
    """What the turn's tools know of the tenant: names to hear, a note for the planner."""
    first_audio: FirstAudioGate = field(default_factory=FirstAudioGate)
    """Holds the planner back while the turn's first audio is synthesized (agent/speech.py)."""

    def declarations(self) -> list[ToolSpecDict]:
        """Every tool the planner is offered: the service's and the tenant's, then the client's."""
        return [*self.tools.declarations(), *self.client_tools]

    def runs_on_client(self, name: str) -> bool:
        return any(spec["name"] == name for spec in self.client_tools)

    @property
    def tools(self) -> ToolRegistry:
        return self.registry if self.registry is not None else self.deps.registry

    def futile(self, name: str, arguments: Mapping[str, Any], asked: Sequence[str] = ()) -> bool:
        """Whether a call with these arguments would be of no use: the tool says so
        (`Tool.futile`), or, for a tool that cannot tell, the user's words `asked` are unrelated
        to what it does (`AgentDeps.relevance`). What cannot tell (a store that is down) leaves
        the call be."""
        tool = self.tools.get(name)
        try:
            if tool is not None and tool.futile is not None:
                return tool.futile(dict(arguments), self.tool_context())
            relevance = self.deps.relevance
            spec = next((s for s in self.declarations() if s["name"] == name), None)
            return relevance is not None and spec is not None and relevance.unrelated(asked, spec)
        except Exception:
            log.warning("could not tell whether a call of tool %s would be of use", name, exc_info=True)
            return False

    def tool_context(self) -> ToolContext:
        return ToolContext(tenant=self.tenant, session_id=self.session_id, knowledge_bases=self.knowledge_bases)
