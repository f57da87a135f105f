"""The planner contract: one interface for every speech LLM backend.

A planner reads the conversation and the tool specs and streams events: text deltas, tool
calls, speech, and a final usage record. A speech-native backend (Step-Audio 2) hears audio
parts itself and may speak; a cascade (`speech_native = False`) gets text only, and the
graph runs ASR before it and TTS after it.

Messages are plain JSON-able dicts in the OpenAI chat shape so that the checkpointer can
store them as they are and served backends can send them with little translation.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np

__all__ = [
    "AudioPart",
    "Futile",
    "Message",
    "PlanEvent",
    "PlanRequest",
    "Planner",
    "SpeechChunk",
    "SpeechRecognizer",
    "SpeechSynthesizer",
    "SpeechTokens",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallEvent",
    "ToolChosen",
    "ToolSpecDict",
    "Usage",
    "Vocoder",
    "message_text",
    "prompt_text",
    "untrusted_text",
]


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class AudioPart(TypedDict):
    """Audio the user said, for speech-native planners: base64 16 kHz mono 16-bit WAV."""

    type: Literal["input_audio"]
    data: str


class ToolCall(TypedDict):
    id: str
    name: str
    arguments: dict[str, Any]


class Message(TypedDict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[TextPart | AudioPart]
    tool_calls: NotRequired[list[ToolCall]]
    """Assistant messages only: the calls the planner made."""
    tool_call_id: NotRequired[str]
    """Tool messages only: the call this message answers."""
    name: NotRequired[str]
    """Tool messages only: the tool's name."""
    speech_tokens: NotRequired[list[int]]
    """Assistant messages of a speech-native planner: the speech tokens it spoke, as written
    (padding included), so that its history can re-send its own speech (Step-Audio 2)."""


class ToolSpecDict(TypedDict):
    """What a planner is told about a tool: the JSON-schema function declaration."""

    name: str
    description: str
    parameters: dict[str, Any]


def message_text(message: Message) -> str:
    """The text of a message, whatever the shape of its content."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part["type"] == "text")


_CONTROL_MARKER = re.compile(
    r"<(?=\|[^<>|\s]{1,40}\|>|/?(?:tool_call|tool_response|tools|think|tts_start|tts_end|audio_start|audio_end)>"
    r"|audio_\d+>)"
)


def untrusted_text(text: str) -> str:
    """`text` with every chat-template control marker in it (`<|im_start|>`, `<tool_call>`,
    Step-Audio 2's `<audio_123>`) defused: its `<` becomes `‹`, so no tokenizer reads it as
    the control token it spells, and a passage or a user cannot open a turn or forge a call."""
    return _CONTROL_MARKER.sub("‹", text)


def prompt_text(message: Message) -> str:
    """A message's text as a planner's prompt shows it: what users and tools wrote, which may
    carry words from anywhere, with its control markers defused; our own text as it is."""
    text = message_text(message)
    return untrusted_text(text) if message["role"] in ("user", "tool") else text


Futile = Callable[[str, Mapping[str, Any]], bool]
"""Whether a call (the tool's name, its arguments) would surely be of no use (`PlanRequest.futile`)."""


@dataclass(frozen=True)
class PlanRequest:
    messages: Sequence[Message]
    """The whole conversation so far, the system prompt excluded (the planner writes its own)."""
    tools: Sequence[ToolSpecDict]
    """The agent's tools; whether this step may call them is `tool_choice`."""
    speak: bool = False
    """Ask a speech-native planner to speak its answer (ignored by a cascade)."""
    voice: str | None = None
    """The session voice id (None: the default voice), for planners that speak themselves."""
    max_new_tokens: int = 256
    tool_choice: Literal["auto", "none"] = "auto"
    """"none": answer now, calling nothing. The tools stay in `tools` all the same, so that a
    planner that keeps its prompt's KV cache sees the same prompt as in the steps before."""
    instructions: str = ""
    """The client's own instructions for the session, read after the planner's system prompt."""
    notes: str = ""
    """What the tools tell the planner of this user's data ("The user's own documents mention:
    ..."), read after `instructions`: the planner's to read, never to say. A local planner takes
    back an answer that begins to read it out."""
    unavailable: frozenset[str] = frozenset()
    """Tools in `tools` this step may not call: they have nothing for this user now (the
    knowledge search without a document). Declared all the same, so that the prompt stays the
    one every user's steps begin with."""
    futile: Futile | None = None
    """Whether a call (the tool's name, its arguments) would surely be of no use: a search of the
    user's documents for what they neither hold nor name ("Who wrote Romeo and Juliet?"). A
    local planner thinks such a call over again, leaning toward answering, as it does one whose
    words were not said. Blocking; called on the planner's worker thread."""
    claimed: str | None = None
    """The tool the user's words point to: they say a word only its data knows ("When was the
    Veldt bridge completed?" with a document about it). A local planner that chooses another
    tool, or to answer without one, chooses again leaning toward this one."""
    pace: Callable[[], None] | None = None
    """Called by a local planner's worker thread before each token: it blocks while the voice
    needs the CPU more (the turn's first audio being synthesized), so the two do not halve
    each other's speed on a small machine."""

    @property
    def preamble(self) -> str:
        """What the planner reads after its own system prompt: `instructions`, then `notes`."""
        return "\n\n".join(text for text in (self.instructions, self.notes) if text)

    @property
    def preamble_messages(self) -> list[dict[str, Any]]:
        """`preamble` as the system message that follows the planner's own, if there is one."""
        return [{"role": "system", "content": self.preamble}] if self.preamble else []

    @property
    def callable_tools(self) -> Sequence[ToolSpecDict]:
        """The tools the planner may call in this step."""
        if self.tool_choice != "auto":
            return ()
        return [tool for tool in self.tools if tool["name"] not in self.unavailable]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolChosen:
    """The planner has chosen to call this tool and is writing its arguments; its
    `ToolCallEvent` follows. Lets the agent say a line that needs no arguments sooner."""

    name: str


@dataclass(frozen=True)
class ToolCallEvent:
    call: ToolCall


@dataclass(frozen=True)
class SpeechChunk:
    """Audio the planner spoke itself, float32 mono at `sample_rate`."""

    audio: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class SpeechTokens:
    """Speech tokens that a vocoder turns into audio."""

    tokens: list[int]


@dataclass(frozen=True)
class Usage:
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    reused_tokens: int = 0
    """Prompt tokens whose KV state the backend already held (not prefilled again)."""
    queue_ms: float = 0.0
    """Time the step waited for the model while other sessions used it."""

    @property
    def prefilled_tokens(self) -> int:
        return self.prompt_tokens - self.reused_tokens


PlanEvent = TextDelta | ToolChosen | ToolCallEvent | SpeechChunk | SpeechTokens | Usage


class Planner(ABC):
    """A speech LLM backend. Implementations: cascade (model/cascade.py), scripted (testing)."""

    name: str
    speech_native: bool = False

    @abstractmethod
    def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        """Stream the events of one planning step; ends after a `Usage` event."""

    def prepare(self, request: PlanRequest) -> None:  # noqa: B027 - optional hook
        """Get ready for a step on this conversation, whose next user message is not known yet
        (it is still being recognized): a planner that keeps its KV cache reads meanwhile what
        the step will begin with. Returns at once; called on the event loop."""

    async def warm_up(self, tools: Sequence[ToolSpecDict]) -> None:  # noqa: B027 - optional hook
        """Get ready for the first turn with these tools (read the system block, say), so that
        the first user does not wait for it."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what the backend holds (connections, GPU memory)."""


class Vocoder(ABC):
    """Speech tokens to audio for planners that speak in tokens. Implementations: token2wav
    over HTTP (model/vocoder.py).

    The prompt clip sets the timbre: token2wav copies the voice of the clip it is given, so
    the session voice reaches a speech-native planner's answer through here.
    """

    name: str
    sample_rate: int
    """The rate of the audio `vocode` returns."""

    @abstractmethod
    async def vocode(self, tokens: Sequence[int], prompt_wav: bytes | None = None) -> np.ndarray:
        """Float32 mono audio at `sample_rate`; `prompt_wav` None is the backend's default voice."""


@dataclass(frozen=True)
class Transcript:
    """What a recognizer heard, how sure it was, and which model heard it."""

    text: str
    logprob: float | None = None
    """The mean log probability of its tokens (0 is certain); None where the recognizer gives none."""
    tokens: int = 0
    by: str = ""
    """The model whose transcript this is."""
    relistened: bool = False
    """Heard a second time, by a second model, because the first was unsure."""

    @classmethod
    def joined(cls, parts: Sequence[Transcript], by: str = "") -> Transcript:
        """Stretches heard one after another: their words, and their mean log probability
        weighed by their tokens; stretches with no words leave no trace."""
        parts = [part for part in parts if part.text]
        tokens = sum(part.tokens for part in parts)
        scored = sum((part.logprob or 0.0) * part.tokens for part in parts)
        return cls(" ".join(part.text for part in parts), scored / tokens if tokens else 0.0, tokens, by)


class SpeechRecognizer(ABC):
    """Speech to text for the cascade. Implementations: faster-whisper (model/asr.py).

    Input is always 16 kHz mono float32 (what `model.audio.decode_audio` returns), so that
    decoding, resampling and trimming happen once, outside every recognizer.
    """

    name: str

    @abstractmethod
    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        """The words in `audio`, stripped; "" when nothing was said.

        `hint`: text the speech is likely to follow or use (the conversation so far, names
        the user's documents hold), to bias the words heard toward it; "" for none."""

    def hear(self, audio: np.ndarray, hint: str = "") -> Transcript:
        """What `transcribe` returns, with how sure the recognizer was where it says."""
        return Transcript(self.transcribe(audio, hint), by=self.name)


class SpeechSynthesizer(ABC):
    """Text to speech for the cascade. Implementations: Piper (model/tts.py).

    It yields sentence by sentence so that playback can start after the first sentence
    instead of after the whole answer, and so that barge-in can stop between chunks.
    """

    name: str
    sample_rate: int
    """The rate of every chunk `synthesize` yields."""

    @abstractmethod
    def synthesize(self, text: str, voice: str | None = None) -> Iterator[np.ndarray]:
        """Float32 mono chunks at `sample_rate`; `voice` None is the backend's default."""
