"""Runs one turn of a session through the graph and reports it as a TurnResult.

A turn either lands whole or leaves the session as it was: input is checked before the
graph runs, and if the graph fails midway the thread is restored to its state before the
turn. A session runs one turn at a time: a second one sent meanwhile is refused with
SessionBusyError (see agent/locks.py), here and across replicas sharing Redis.

After a turn lands, its public result goes into the session index (agent/sessions.py)
and the thread gets its upkeep (old checkpoints pruned, expiry refreshed). A session
memory that cannot be reached fails the turn with MemoryUnavailableError.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, assert_never, cast

import anyio
import numpy as np
from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

from agent.context import AgentDeps, TurnContext
from agent.events import AnswerText, Audio, Heard, NodeEvent, ToolCalled, ToolFinished, TurnDone, TurnEvent, TurnFailed
from agent.graph import build_graph
from agent.hearing import last_words
from agent.memory import MemoryBackend, RollbackFailedError, session_thread
from agent.outcome import Progress, ReplyAudio, TurnOutput, TurnResult
from agent.sessions import validate_session_id
from agent.speech import LineCache, speak_along, trace_speech
from agent.state import AgentState, Replace, fresh_turn
from agent.tracing import Tracing, TurnTrace
from agent.vocabulary import hearing_hint
from model.audio import SAMPLE_RATE
from model.base import Message, ToolSpecDict
from model.errors import InputError
from tools.base import ToolContext

__all__ = [
    "MAX_TEXT_CHARS",
    "TurnRequest",
    "TurnRunner",
    "validate_session_id",
]

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4000
ROLLBACK_FAILED = (
    "session {session!r}: the turn failed ({failure}) and could not be undone ({error}); the session may "
    "keep part of it: read it (GET /v1/sessions/{session}) before going on, or delete it"
)


@dataclass(frozen=True)
class TurnRequest:
    session_id: str
    text: str | None = None
    audio: np.ndarray | None = None
    """16 kHz mono float32, decoded and within limits (see model.audio.decode_audio)."""
    transcript: str | None = None
    """What `audio` says, when the caller heard it already (a realtime turn); a planner that
    hears is given the audio all the same."""
    tenant: str = "local"
    speak: bool = True
    knowledge_bases: tuple[str, ...] | None = None
    voice: str | None = None
    """Speak in this voice from this turn on ("": the default voice); None keeps the session's."""
    instructions: str = ""
    """The client's own instructions (a realtime session's), read after the system prompt."""
    tool_choice: Literal["auto", "none"] = "auto"
    client_tools: tuple[ToolSpecDict, ...] = ()
    """Tools the client runs itself (a realtime session's functions)."""
    tool_outputs: tuple[tuple[str, str], ...] = ()
    """(call id, output) for calls of client tools the last turn ended with: the input instead
    of text or audio."""


class TurnRunner:
    """The graph with its deps and memory: runs turns, the one object every face (HTTP, CLI) runs them through.

    Reading and deleting sessions is the session service's (agent/session_service.py)."""

    def __init__(self, deps: AgentDeps, memory: MemoryBackend, *, tracing: Tracing | None = None) -> None:
        self.deps = deps
        self.tracing = tracing or Tracing()
        self.memory = memory
        self.graph = build_graph(memory.checkpointer)
        self.lines = LineCache()
        """The audio of the lines said while tools run, said again without synthesis."""

    @staticmethod
    def validate(request: TurnRequest) -> None:
        validate_session_id(request.session_id)
        if (request.text is not None) + (request.audio is not None) + bool(request.tool_outputs) != 1:
            raise InputError("a turn takes one of text, audio or tool outputs")
        if request.transcript is not None and request.audio is None:
            raise InputError("a transcript comes with the audio it was heard in")
        if request.text is not None:
            if not request.text.strip():
                raise InputError("text is empty")
            if len(request.text) > MAX_TEXT_CHARS:
                raise InputError(f"text is longer than {MAX_TEXT_CHARS} characters")
        if request.audio is not None and request.audio.size == 0:
            raise InputError("audio is empty")

    async def history(self, tenant: str, session_id: str) -> StateSnapshot:
        validate_session_id(session_id)
        return await self.graph.aget_state(_config(tenant, session_id))

    async def hint_for(self, tenant: str, session_id: str) -> str:
        """What the recognizer is told before the session's next words, heard outside a turn
        (a realtime connection hears them as they come): the user's last words and the names
        the tenant's tools know, the hint `hear` gives an uploaded turn."""
        with self.memory.errors():
            state = await self.history(tenant, session_id)
            tools = await self.deps.registry_for(tenant)
        vocabulary = await self.deps.vocabulary(list(tools), ToolContext(tenant=tenant, session_id=session_id))
        return hearing_hint(vocabulary, last_words(cast(AgentState, state.values)))

    async def stream_turn(self, request: TurnRequest) -> AsyncGenerator[TurnEvent, None]:
        """The turn's events as they happen, ending with `TurnDone` or `TurnFailed`.

        What refuses the turn before it starts (bad input, a busy session, memory down) is
        raised instead; so is a cancellation. Closing the stream early rolls the turn back.
        """
        self.validate(request)
        with self.memory.errors():
            async with self.memory.locks.hold(session_thread(request.tenant, request.session_id)):
                await self.memory.forget_expired()
                # Closed here, not whenever it is collected: a turn its client left is rolled
                # back before the session's lock is let go.
                async with contextlib.aclosing(self._run(request)) as events:
                    async for event in events:
                        yield event

    async def run_turn(self, request: TurnRequest) -> TurnOutput:
        """The whole turn at once; a turn that failed raises its error."""
        audio = ReplyAudio()
        async with contextlib.aclosing(self.stream_turn(request)) as events:  # closed: the lock is let go
            async for event in events:
                match event:
                    case Audio():
                        audio.add(event.audio, event.sample_rate)
                    case TurnDone(result=result, tokens=tokens):
                        return audio.output(result, tokens)
                    case TurnFailed(error=error):
                        raise error
                    case Heard() | AnswerText() | ToolCalled() | ToolFinished():
                        pass
                    case _:
                        assert_never(event)
        raise AssertionError("a turn's events end with its result or its failure")

    def _start_trace(self, request: TurnRequest, turn: int) -> TurnTrace:
        audio = request.audio
        return self.tracing.start_turn(
            tenant=request.tenant,
            session_id=request.session_id,
            turn=turn,
            planner=self.deps.planner.name,
            modality="text" if audio is None else "audio",
            audio_seconds=0.0 if audio is None else audio.size / SAMPLE_RATE,
        )

    async def _keep_trace(
        self,
        request: TurnRequest,
        trace: TurnTrace,
        progress: Progress,
        timings: dict[str, float],
        error: BaseException | None = None,
    ) -> None:
        """End the turn's trace and keep it: a failed turn's trace too, it says why it failed.

        Tracing never fails a turn: a trace that cannot be stored is logged and dropped.
        """
        tree = trace.finish(progress.figures(trace, timings), error)
        try:
            await self.memory.sessions.record_trace(request.tenant, request.session_id, tree)
        except Exception:
            log.warning("could not keep the trace of a turn of %s", request.session_id, exc_info=True)

    async def _context(self, request: TurnRequest, trace: TurnTrace) -> TurnContext:
        return TurnContext(
            deps=self.deps,
            tenant=request.tenant,
            session_id=request.session_id,
            text=request.text if request.audio is None else request.transcript,
            audio=request.audio,
            speak=request.speak,
            knowledge_bases=request.knowledge_bases,
            registry=await self.deps.registry_for(request.tenant),
            voice=request.voice,
            instructions=request.instructions,
            tool_choice=request.tool_choice,
            client_tools=request.client_tools,
            tool_outputs=request.tool_outputs,
            trace=trace,
        )

    async def _run(self, request: TurnRequest) -> AsyncGenerator[TurnEvent, None]:
        config = _config(request.tenant, request.session_id)
        # The checkpoint itself, not the graph's view of it (aget_state): all a turn needs is
        # where to roll back to and its number.
        saved = await self.memory.checkpointer.aget_tuple(config)
        before = config if saved is None else saved.config
        turn = 1 + int((saved.checkpoint["channel_values"].get("turn") or 0) if saved else 0)
        trace = self._start_trace(request, turn)
        context = await self._context(request, trace)
        progress = Progress()
        tts = self.deps.tts if request.speak else None

        async def node_events() -> AsyncIterator[NodeEvent]:
            stream = cast(
                AsyncGenerator[tuple[str, Any], None],  # astream is an async generator, typed as an iterator
                self.graph.astream(
                    fresh_turn(), config, context=context, stream_mode=["custom", "values"], durability="exit"
                ),
            )
            async with contextlib.aclosing(stream):  # a turn left midway stops before it is rolled back
                async for mode, data in stream:
                    if mode == "values":
                        progress.values = data
                    else:
                        yield cast(NodeEvent, data)

        try:
            try:
                stage = speak_along(
                    node_events(),
                    tts,
                    speak_text=not self.deps.planner.speech_native,
                    spoken=progress.spoken,
                    gate=context.first_audio,
                    lines=self.lines,
                )
                async with contextlib.aclosing(stage):
                    async for event in stage:
                        progress.saw(event)
                        yield event
            finally:
                if tts is not None:
                    trace_speech(trace, tts, progress.spoken)
            values = progress.values
            timings = progress.timings(trace)
            result = TurnResult(
                session_id=request.session_id,
                turn=values["turn"],
                transcript=values["transcript"],
                paralinguistics=values.get("paralinguistics"),
                answer=values["answer"],
                citations=values["citations"],
                tool_calls=values["tool_calls"],
                voice=values.get("voice"),
                timings_ms=timings,
                trace_id=trace.trace_id,
            )
            # Inside the try: a turn the index cannot record is rolled back, not half kept.
            await self.memory.sessions.record_turn(request.tenant, request.session_id, {**result, "at": time.time()})
        except BaseException as error:
            # Shielded: a turn cancelled because its client left is rolled back all the same.
            with anyio.CancelScope(shield=True):
                unrestored = await self._restore(before, error)
                await self._keep_trace(request, trace, progress, progress.timings(trace), unrestored or error)
            if unrestored is not None and not isinstance(error, Exception):
                log.error("%s", unrestored)  # a cancellation goes on as one; the failure is still told
            error = unrestored or self.memory.unavailable_error(error) or error
            if isinstance(error, Exception):
                yield TurnFailed(error)
                return
            raise
        tokens = trace.token_usage()
        await self._keep_trace(request, trace, progress, timings)
        try:
            await self.memory.upkeep(config["configurable"]["thread_id"])
        except self.memory.unavailable:  # the turn landed; upkeep is retried after the next one
            log.warning("session upkeep failed for %s", request.session_id, exc_info=True)
        yield TurnDone(result, tokens)

    async def record_exchange(self, request: TurnRequest, transcript: str, answer: str) -> None:
        """Land a turn that did not run through the graph: the user's message and the answer
        as it stands. A cut answer (the user spoke over it) is kept as far as it was heard,
        maybe nothing, after the cut turn itself was rolled back (what its tools did is not
        kept); a stateless chat's earlier turns are laid down this way before its last."""
        config = _config(request.tenant, request.session_id)
        with self.memory.errors():
            async with self.memory.locks.hold(session_thread(request.tenant, request.session_id)):
                before = await self.graph.aget_state(config)
                turn = int(before.values.get("turn") or 0) + 1
                messages = [Message(role="user", content=transcript)]
                if answer:
                    messages.append(Message(role="assistant", content=answer))
                update = {
                    **fresh_turn(),
                    "messages": messages,
                    "turn": turn,
                    "transcript": transcript,
                    "answer": answer,
                }
                await self.graph.aupdate_state(config, update, as_node="plan")
                record = TurnResult(
                    session_id=request.session_id,
                    turn=turn,
                    transcript=transcript,
                    paralinguistics=None,
                    answer=answer,
                    citations=[],
                    tool_calls=[],
                    voice=before.values.get("voice"),
                    timings_ms={},
                    trace_id="",
                )
                await self.memory.sessions.record_turn(
                    request.tenant, request.session_id, {**record, "at": time.time()}
                )

    async def amend_answer(self, tenant: str, session_id: str, heard: str) -> bool:
        """Keep only `heard` of the session's last answer (the client stopped playing it there);
        False when the session has no answer to amend."""
        config = _config(tenant, session_id)
        with self.memory.errors():
            async with self.memory.locks.hold(session_thread(tenant, session_id)):
                messages: list[Message] = list((await self.graph.aget_state(config)).values.get("messages") or [])
                last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "assistant"), None)
                if last is None:
                    return False
                messages[last] = Message(role="assistant", content=heard)
                await self.graph.aupdate_state(config, {"messages": [Replace(replace=messages)]}, as_node="plan")
                await self.memory.sessions.amend_answer(tenant, session_id, heard)
                return True

    async def _restore(self, before: RunnableConfig, failure: BaseException) -> RollbackFailedError | None:
        """Put the thread back at checkpoint `before` (the thread's config, with no checkpoint
        id when it had none) after a failed turn; the error to answer with when that failed too,
        so the caller learns the session may hold part of the turn (the thread and the index may
        disagree) instead of it being only logged."""
        thread_id = before["configurable"]["thread_id"]
        try:
            if before["configurable"].get("checkpoint_id") is None:
                await self.memory.checkpointer.adelete_thread(thread_id)
            else:
                await self.graph.aupdate_state(before, None)
        except Exception as error:
            session = thread_id.partition(":")[2]
            unrestored = RollbackFailedError(
                ROLLBACK_FAILED.format(session=session, failure=type(failure).__name__, error=type(error).__name__)
            )
            unrestored.__cause__ = error
            return unrestored
        return None


def _config(tenant: str, session_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": session_thread(tenant, session_id)}}
