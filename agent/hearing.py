"""Hearing a turn: trim, transcribe with the turn's hint, and measure how it was said.

The listen node (agent/nodes.py) calls `hear` for the transcript and the user message's
content, then `cue_of` once the measurement is done.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import numpy as np
from opentelemetry.trace import Span

from agent.context import AgentDeps, TurnContext
from agent.cues import Cue, describe, public, update_baseline, without_cue
from agent.state import AgentState
from agent.tracing import (
    ASR_HEARD_BY,
    ASR_HINT,
    ASR_LOGPROB,
    ASR_MODEL,
    ASR_RELISTENED,
    AUDIO_IN_S,
    CUE,
    PARALINGUISTICS,
)
from agent.vocabulary import hearing_hint
from model.audio import SAMPLE_RATE, encode_wav
from model.base import AudioPart, TextPart, message_text
from model.errors import InputError, PlannerError
from model.paralinguistics import Acoustics, Paralinguistics, measure_acoustics
from tools.base import Vocabulary

__all__ = ["NO_SPEECH", "Measuring", "asked", "cue_of", "hear", "last_words"]

NO_SPEECH = "no speech was found in the audio"
Measuring = asyncio.Future[Acoustics] | None


async def hear(
    ctx: TurnContext, span: Span, previous: str | None, meanwhile: Callable[[Vocabulary], None] | None = None
) -> tuple[str, str | list[TextPart | AudioPart], Measuring]:
    """The transcript, the user message's content and, for a spoken turn, how it was said
    (measured alongside the recognizer); `span` is the listen span, `previous` what the user
    said last turn (the recognizer is told it, and the names the tools know). `meanwhile` is
    called with the turn's vocabulary as the recognizer starts."""
    deps = ctx.deps
    if ctx.audio is None:
        transcript = (ctx.text or "").strip()
        return transcript, transcript, None
    if ctx.text is not None and not deps.planner.speech_native:  # heard already (a realtime turn)
        transcript = ctx.text.strip()
        return transcript, transcript, measure(deps, ctx.audio)
    vocabulary = asyncio.ensure_future(ctx.vocabulary.get(ctx))  # read while the VAD trims
    audio = await asyncio.to_thread(deps.vad.trim, ctx.audio) if deps.vad else ctx.audio
    if audio.size == 0:
        raise InputError(NO_SPEECH)
    measuring = measure(deps, audio)
    if deps.planner.speech_native:
        wav = base64.b64encode(encode_wav(audio, SAMPLE_RATE)).decode("ascii")
        return "", [AudioPart(type="input_audio", data=wav)], measuring
    if deps.asr is None:
        raise PlannerError("the planner needs text, and no speech recognizer is configured")
    known = await vocabulary
    hint = hearing_hint(known, previous)
    if meanwhile is not None:
        meanwhile(known)
    attributes = {ASR_MODEL: deps.asr.name, AUDIO_IN_S: round(audio.size / SAMPLE_RATE, 3)}
    if ctx.trace.capture_content:
        attributes[ASR_HINT] = hint
    with ctx.trace.span("asr", attributes, parent=span) as heard_span:
        heard = await asyncio.to_thread(deps.asr.hear, audio, hint)
        how: dict[str, str | bool | float] = {ASR_HEARD_BY: heard.by, ASR_RELISTENED: heard.relistened}
        if heard.logprob is not None:
            how[ASR_LOGPROB] = round(heard.logprob, 3)
        heard_span.set_attributes(how)
    transcript = heard.text.strip()
    if not transcript:
        raise InputError(NO_SPEECH)
    return transcript, transcript, measuring


def last_words(state: AgentState) -> str:
    """What the user said last turn, as the planner read it less the cue."""
    return next(iter(_user_words(state, 1)), "")


def asked(state: AgentState) -> tuple[str, ...]:
    """What the user asked, as a call is weighed against it (`TurnContext.futile`): this turn's
    words, and the last turn's followed by them, for a follow-up such as "And in Rome?"."""
    said = _user_words(state, 2)
    return (said[-1], " ".join(said)) if len(said) == 2 else tuple(said)


def _user_words(state: AgentState, last: int) -> list[str]:
    """The user's `last` latest messages, as the planner read them less the cue, oldest first."""
    return [without_cue(message_text(m)) for m in state.get("messages") or [] if m["role"] == "user"][-last:]


def measure(deps: AgentDeps, audio: np.ndarray) -> Measuring:
    """Start measuring how `audio` was said, on a thread beside the recognizer's."""
    return asyncio.ensure_future(asyncio.to_thread(measure_acoustics, audio)) if deps.paralinguistics else None


def cue_of(state: AgentState, ctx: TurnContext, span: Span, heard: Paralinguistics) -> tuple[Cue, dict[str, Any]]:
    """The cue for how this turn was said and the state it updates: the turn's figures and the
    speaker's baseline."""
    cue = describe(heard, state.get("speaker"))
    figures = public(heard, cue, adapted=ctx.deps.adapt_delivery)
    span.set_attributes(
        {PARALINGUISTICS.format(name=k): v for k, v in heard.as_dict().items() if v is not None} | {CUE: cue.text}
    )
    return cue, {"paralinguistics": figures, "speaker": update_baseline(state.get("speaker"), heard)}
