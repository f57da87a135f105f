"""What nodes reach through the runtime context: the turn's input and the agent's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from model.base import Planner, SpeechRecognizer, SpeechSynthesizer
from tools.base import ToolContext
from tools.registry import ToolRegistry

if TYPE_CHECKING:
    from agent.speech import SentenceSpeaker

__all__ = ["AgentDeps", "Emit", "TurnContext", "VoiceActivityDetector"]


class VoiceActivityDetector(Protocol):
    def trim(self, audio: np.ndarray) -> np.ndarray: ...


Emit = Callable[[Any], None]
"""Where nodes send what a client may want as it happens (audio chunks, text, tool calls)."""


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


@dataclass(frozen=True)
class TurnContext:
    """One turn's input and the deps, handed to every node as `runtime.context`."""

    deps: AgentDeps
    tenant: str
    session_id: str
    text: str | None = None
    audio: np.ndarray | None = None
    """16 kHz mono float32, already decoded and checked."""
    speak: bool = True
    knowledge_bases: tuple[str, ...] | None = None
    speaker: SentenceSpeaker | None = None
    """Speaks the answer as it streams in; None when the turn is not spoken."""

    def tool_context(self) -> ToolContext:
        return ToolContext(tenant=self.tenant, session_id=self.session_id, knowledge_bases=self.knowledge_bases)
