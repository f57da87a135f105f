"""The Step-Audio 2 planner: a speech LLM that hears the user, calls tools, and speaks.

It talks to StepFun's vLLM fork or SGLang (see model/step_audio2_format.py for the
dialect). One `plan` is one request: the answer streams back as text and `<audio_N>`
speech tokens (in `tts_content` deltas, or inline in the text), tool calls as `tool_calls`
deltas or `<tool_call>function\\n{name}\\n{json}</tool_call>` in the text.

What it yields, and why:
- text as TextDelta while it streams, including the short filler line the model says
  before a tool call ("Let me look that up."), so the graph can speak it while the tool runs;
- the raw speech tokens as SpeechTokens (the graph keeps them in history, where the model
  expects to find its own speech);
- with a vocoder, the speech as one SpeechChunk at the end of the step, in the session
  voice (the voice's clip is the vocoder's prompt); without one, no audio, and the graph
  speaks the text with the local TTS.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from model.base import PlanEvent, Planner, PlanRequest, SpeechChunk, SpeechTokens, TextDelta, ToolCallEvent, Usage
from model.base import Vocoder as VocoderBase
from model.errors import PlannerError
from model.openai_wire import chat_url, declarations, headers, usage_counts
from model.sse import aiter_sse, check_response
from model.step_audio2_format import AUDIO_PADDING, AUDIO_TOKEN, build_messages, system_prompt
from model.tool_stream import TaggedTextSplitter, ToolCallAssembler, parse_call_bodies

__all__ = ["DEFAULT_SAMPLING", "StepAudio2Planner", "VoiceClip"]

VoiceClip = Callable[[str | None], bytes | None]
"""Resolves the session voice to a WAV clip of it (None: the default voice, no clip)."""

DEFAULT_SAMPLING: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.9,
    "repetition_penalty": 1.05,
    "skip_special_tokens": False,
    "parallel_tool_calls": False,
}
"""StepFun's sampling for Step-Audio 2; special tokens are kept so that tags survive."""
UNREACHABLE = "the Step-Audio 2 server at {url} cannot be reached: {error}"
BAD_RESPONSE = "the Step-Audio 2 server at {url} answered without a choice: {body!r}"
_SPOKEN_MAX_TOKENS = 2048
"""Speech takes about 25 tokens a second besides the text: a spoken step needs room (StepFun uses 2048)."""
_MARKUP = re.compile(r"<tts_start>|<tts_end>|<\|EOT\|>|<\|BOT\|>|<audio_start>|<audio_end>")


def _now() -> datetime:
    return datetime.now().astimezone()


class _StepState:
    """What one step has read so far: spoken text, speech tokens, calls in both shapes."""

    def __init__(self) -> None:
        self.spoken = TaggedTextSplitter()
        self.aside = TaggedTextSplitter()
        """`content` that came beside `tts_text`: read for tool calls only."""
        self.calls = ToolCallAssembler()
        self.tokens: list[int] = []
        self.usage = (0, 0)

    def read(self, delta: Mapping[str, Any]) -> tuple[str, list[int]]:
        """The speakable text and the speech tokens in one delta (or a whole message)."""
        self.calls.feed(delta.get("tool_calls") or [])
        tts = delta.get("tts_content") or {}
        content = delta.get("content") or ""
        if tts.get("tts_text"):
            self.aside.feed(content)
            text = self.spoken.feed(tts["tts_text"])
        else:
            text = self.spoken.feed(content)
        return self._split(text, tts.get("tts_audio") or "")

    def finish(self) -> tuple[str, list[int]]:
        self.aside.finish()
        return self._split(self.spoken.finish(), "")

    def _split(self, text: str, audio: str) -> tuple[str, list[int]]:
        tokens = [int(n) for n in AUDIO_TOKEN.findall(audio)] + [int(n) for n in AUDIO_TOKEN.findall(text)]
        self.tokens.extend(tokens)
        return _MARKUP.sub("", AUDIO_TOKEN.sub("", text)), tokens


class StepAudio2Planner(Planner):
    """Step-Audio 2 behind an OpenAI-compatible server, with an optional token2wav vocoder."""

    speech_native = True

    def __init__(
        self,
        base_url: str,
        model: str = "step-audio-2-mini",
        *,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        vocoder: VocoderBase | None = None,
        voice_clip: VoiceClip | None = None,
        today: Callable[[], datetime] | None = None,
        stream: bool = True,
        tools_as_message: bool = False,
        tts_output_flag: bool = False,
        sampling: Mapping[str, Any] | None = None,
        timeout_s: float = 120.0,
        name: str | None = None,
    ) -> None:
        """`tools_as_message`: declare tools in a `tool_json_schemas` message rather than in
        `tools` (for a server whose template does not render them). `tts_output_flag`: ask for
        speech with SGLang's `tts_output: true` rather than a continued `<tts_start>`."""
        self.url = chat_url(base_url)
        self.model = model
        self.name = name or f"step-audio-2:{model}"
        self.vocoder = vocoder
        self.voice_clip = voice_clip
        self.today = today or _now
        self.stream = stream
        self.tools_as_message = tools_as_message
        self.tts_output_flag = tts_output_flag
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._headers = headers(api_key)
        self._sampling = {**DEFAULT_SAMPLING, **(sampling or {})}

    async def aclose(self) -> None:
        await self._client.aclose()
        close = getattr(self.vocoder, "aclose", None)
        if close is not None:
            await close()

    def payload(self, request: PlanRequest, clip: bytes | None) -> dict[str, Any]:
        """The whole request body for one step (public so that tests can check the dialect)."""
        continued = request.speak and not self.tts_output_flag
        messages = build_messages(
            request.messages,
            system="\n\n".join(filter(None, [system_prompt(self.today(), request.voice), request.preamble])),
            tools=request.callable_tools,
            speak=continued,
            voice_clip=clip,
            tools_as_message=self.tools_as_message,
        )
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max(request.max_new_tokens, _SPOKEN_MAX_TOKENS) if request.speak else request.max_new_tokens,
            "stream": self.stream,
            **self._sampling,
        }
        if continued:
            body.update(continue_final_message=True, add_generation_prompt=False)
        if request.speak and self.tts_output_flag:
            body["tts_output"] = True
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if request.callable_tools and not self.tools_as_message:
            body["tools"] = declarations(request.callable_tools)
            body["tool_choice"] = "auto"
        return body

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        started = time.perf_counter()
        clip = self.voice_clip(request.voice) if self.voice_clip else None
        state = _StepState()
        async for text, tokens in self._deltas(self.payload(request, clip), state):
            if text:
                yield TextDelta(text)
            if tokens:
                yield SpeechTokens(tokens)
        text, tokens = state.finish()
        if text:
            yield TextDelta(text)
        if tokens:
            yield SpeechTokens(tokens)
        vocoded_ms = 0.0
        sound = [t for t in state.tokens if t < AUDIO_PADDING]
        if self.vocoder is not None and request.speak and sound:
            vocoding = time.perf_counter()
            audio = await self.vocoder.vocode(sound, clip)
            vocoded_ms = (time.perf_counter() - vocoding) * 1000
            yield SpeechChunk(audio=audio, sample_rate=self.vocoder.sample_rate)
        names = {spec["name"] for spec in request.callable_tools}
        calls = state.calls.calls()
        seen = {(c["name"], repr(c["arguments"])) for c in calls}
        for body_call in parse_call_bodies([*state.spoken.bodies, *state.aside.bodies], names).calls:
            if (body_call["name"], repr(body_call["arguments"])) not in seen:
                calls.append(body_call)
        for call in calls if request.callable_tools else []:
            yield ToolCallEvent(call)
        extra = {"speech_tokens": len(state.tokens), "vocoded_ms": round(vocoded_ms, 1)}
        yield Usage(self.name, *state.usage, duration_ms=(time.perf_counter() - started) * 1000, extra=extra)

    async def _deltas(self, body: dict[str, Any], state: _StepState) -> AsyncIterator[tuple[str, list[int]]]:
        try:
            if not self.stream:
                response = await self._client.post(self.url, json=body, headers=self._headers)
                check_response(response, response.content)
                answer = response.json()
                state.usage = usage_counts(answer)
                try:
                    message = answer["choices"][0]["message"]
                except (KeyError, IndexError, TypeError):
                    raise PlannerError(BAD_RESPONSE.format(url=self.url, body=str(answer)[:200])) from None
                yield state.read(message)
                return
            async with self._client.stream("POST", self.url, json=body, headers=self._headers) as response:
                check_response(response, await response.aread() if response.status_code >= 400 else b"")
                async for chunk in aiter_sse(response):
                    state.usage = usage_counts(chunk) if chunk.get("usage") else state.usage
                    for choice in chunk.get("choices") or []:
                        yield state.read(choice.get("delta") or {})
        except httpx.HTTPError as error:
            raise PlannerError(UNREACHABLE.format(url=self.url, error=error)) from error
