"""One realtime connection: live audio in, turns found by the server's VAD, answers streamed
out as OpenAI Realtime events, and barge-in.

A connection is a voicegraph session (its memory, tenant, traces and metrics): each
committed user item becomes a turn of the agent, run by `TurnRunner.stream_turn`, and that
turn's typed events become the response's server events. voicegraph's own tools run on
the server and show up as `mcp_call` items (server_label "voicegraph"): the client sees
what was called and how it went, and has nothing to answer.

Speech that starts while a response is playing cancels it at once (planner and voice
stop; `response.done` with status `cancelled`), and the session keeps of the answer only
what the user heard: by the client's `conversation.item.truncate` when it sends one, else
by the server's own reckoning (audio plays in real time from its first delta).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from agent.events import Heard
from agent.runner import TurnRunner
from api.realtime_early import EarlyAnswer, HeldSend
from api.realtime_hearing import LiveTranscript
from api.realtime_protocol import (
    ClientError,
    RealtimeConfig,
    decode_pcm16,
    function_output,
    new_id,
    parse_client_event,
    user_message,
)
from api.realtime_protocol import server_event as ev
from api.realtime_response import PendingInput, Response, Spoken
from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer
from model.turn_detection import SpeechStarted, SpeechStopped, TurnDetector

__all__ = ["RealtimeConnection"]

log = logging.getLogger(__name__)

MAX_BUFFER_S = 600
"""The most audio an uncommitted input buffer holds."""
MIN_COMMIT_MS = 100
EARLY_AFTER_MS = 160
"""Silence before an answer is begun early: shorter gaps are mostly between words."""


class RealtimeConnection:
    def __init__(
        self,
        websocket: WebSocket,
        agent: TurnRunner,
        *,
        asr: SpeechRecognizer,
        tenant: str,
        session_id: str,
        model: str,
    ) -> None:
        self.ws, self.agent, self.asr = websocket, agent, asr
        self.tenant, self.session_id, self.model = tenant, session_id, model
        self.config = RealtimeConfig()
        self.detector: TurnDetector | None = self._detector()
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.live: LiveTranscript | None = None
        self.speech_item: str | None = None
        self.pending: PendingInput | None = None
        """The input not answered yet."""
        self.last_item: str | None = None
        self.response: Response | None = None
        self.early: EarlyAnswer | None = None
        """An answer begun while the user pauses, its events held until the turn ends."""
        self.response_task: asyncio.Task[None] | None = None
        self.answered: tuple[str, Spoken] | None = None
        """The last finished response's message item and what it said (for truncation)."""
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self.send(ev("session.created", session=self.config.public(self.session_id, self.model)))
        try:
            while True:
                raw = await self.ws.receive()
                if raw["type"] == "websocket.disconnect":
                    return
                event: dict[str, Any] | None = None
                try:
                    event = parse_client_event(raw.get("text") or raw.get("bytes") or b"")
                    await self.handle(event)
                except ClientError as error:
                    error.event_id = event.get("event_id") if event else None
                    await self.send(error.event())
        except WebSocketDisconnect:
            return
        finally:
            self._drop_live()
            await self._drop_early()
            await self._stop_response("client_gone", notify=False)

    async def send(self, event: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(event, ensure_ascii=False))

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.truncate": self._truncate,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }
        await handlers[kind](event)

    # -- session and input --------------------------------------------------------------

    async def _session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            raise ClientError("session.update needs a 'session' object", param="session")
        config = self.config.merged(update)
        ours = set((await self.agent.deps.registry_for(self.tenant)).names())
        if clash := sorted(ours & {tool.name for tool in config.tools}):
            raise ClientError(f"voicegraph runs a tool of that name itself: {', '.join(clash)}", param="session.tools")
        detection_changed = config.audio.input.turn_detection != self.config.audio.input.turn_detection
        self.config = config
        if detection_changed:
            self._drop_live()
            self.detector = self._detector()
        await self.send(ev("session.updated", session=config.public(self.session_id, self.model)))

    def _detector(self) -> TurnDetector | None:
        settings = self.config.audio.input.turn_detection
        return settings.detector() if settings is not None else None

    async def _append(self, event: dict[str, Any]) -> None:
        audio = decode_pcm16(event.get("audio"))
        if self.detector is None:  # committed by hand: the buffer holds everything until then
            if self.buffered + len(audio) > MAX_BUFFER_S * SAMPLE_RATE:
                raise ClientError(f"the input audio buffer holds at most {MAX_BUFFER_S} s; commit or clear it")
            self.buffer.append(audio)
            self.buffered += len(audio)
            return
        for found in self.detector.feed(audio):
            if isinstance(found, SpeechStarted):
                await self._speech_started(found)
            else:
                await self._speech_stopped(found)
        if self.live is not None and self.detector.speaking:
            speech = self.detector.speech_so_far()
            self.live.update(speech, self.detector.spoken_samples(), pausing=self.detector.pausing)
            await self._answer_early(self.live, speech)

    async def _answer_early(self, live: LiveTranscript, speech: np.ndarray) -> None:
        """Start answering when the user pauses; drop that answer if they go on."""
        assert self.detector is not None
        settings = self.config.audio.input.turn_detection
        if self.early is not None and not self.detector.pausing:
            await self._drop_early()
        elif self.early is None and self.detector.silent_for_ms >= EARLY_AFTER_MS and self.response is None:
            transcript = live.ready(self.detector.spoken_samples())
            if transcript and settings is not None and settings.create_response:
                held = HeldSend(self.send)
                response = self._response(PendingInput(transcript, audio=speech), held, self.speech_item)
                self.early = EarlyAnswer(transcript, response, held)
                self.early.task = asyncio.create_task(self._respond(response))

    async def _speech_started(self, found: SpeechStarted) -> None:
        self._drop_live()
        self.speech_item = new_id("item")
        await self.send(ev("input_audio_buffer.speech_started", audio_start_ms=found.at_ms, item_id=self.speech_item))
        settings = self.config.audio.input.turn_detection
        if settings is not None and settings.interrupt_response:
            if self.response is not None:
                await self._stop_response("turn_detected")
            elif self.answered is not None and self.answered[1].still_playing():
                # Sent whole, but not yet all heard: keep what was, by the pace of playback.
                await self.agent.amend_answer(self.tenant, self.session_id, self.answered[1].heard_so_far())
        self.live = self._live()

    def _live(self) -> LiveTranscript:
        """The transcript of speech starting now (a stretch the VAD found, or a whole buffer or
        clip, heard at once by `final`), its hint begun: the session's, as an uploaded turn's."""
        return LiveTranscript(self.asr, self._transcript_delta, hint=self.agent.hint_for(self.tenant, self.session_id))

    def _take_speech(self) -> tuple[str, LiveTranscript]:
        """The item and the transcript of the speech in hand (begun when the VAD found it, else
        now); the connection holds neither after."""
        item_id, live = self.speech_item or new_id("item"), self.live or self._live()
        self.speech_item, self.live = None, None
        return item_id, live

    def _drop_live(self) -> None:
        """Forget the speech in hand: its transcription stops and tells nothing more."""
        if self.live is not None:
            self.live.cancel()
        self.speech_item, self.live = None, None

    async def _speech_stopped(self, found: SpeechStopped) -> None:
        item_id, live = self._take_speech()
        await self.send(ev("input_audio_buffer.speech_stopped", audio_end_ms=found.at_ms, item_id=item_id))
        self._reset_buffer()
        transcript = await live.final(found.audio, found.spoken_samples)
        await self._committed(item_id, found.audio, transcript.strip())
        early = self.early
        if early is not None and early.transcript == transcript.strip() and self.pending is not None:
            self.early = self.pending = None
            return await self._adopt(early)
        await self._drop_early()
        settings = self.config.audio.input.turn_detection
        if settings is not None and settings.create_response and self.pending and self.response is None:
            await self._start_response()

    async def _transcript_delta(self, heard: Heard) -> None:
        if self.config.transcribes and self.speech_item:
            event = ev("conversation.item.input_audio_transcription.delta", content_index=0, delta=heard.text)
            await self.send({**event, "item_id": self.speech_item})

    async def _commit(self, event: dict[str, Any]) -> None:
        if self.detector is not None:  # the server's VAD holds the speech so far
            audio = self.detector.speech_so_far()
        else:
            audio = np.concatenate(self.buffer) if self.buffer else np.zeros(0, np.float32)
        if len(audio) < MIN_COMMIT_MS * SAMPLE_RATE // 1000:
            raise ClientError(
                f"the input audio buffer holds under {MIN_COMMIT_MS} ms of audio",
                code="input_audio_buffer_commit_empty",
            )
        self._reset_buffer()
        self.detector = self._detector()
        item_id, live = self._take_speech()
        await self._committed(item_id, audio, await live.final(audio, len(audio)))

    async def _clear(self, event: dict[str, Any]) -> None:
        await self._drop_early()
        self._drop_live()
        self._reset_buffer()
        self.detector = self._detector()
        await self.send(ev("input_audio_buffer.cleared"))

    def _reset_buffer(self) -> None:
        self.buffer, self.buffered = [], 0

    async def _committed(self, item_id: str, audio: np.ndarray, transcript: str) -> None:
        previous, self.last_item = self.last_item, item_id
        await self.send(ev("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id))
        part: dict[str, Any] = {"type": "input_audio", "transcript": None}
        item = {"id": item_id, "type": "message", "object": "realtime.item", "role": "user", "content": [part]}
        await self.send(
            ev("conversation.item.added", previous_item_id=previous, item={**item, "status": "in_progress"})
        )
        if self.config.transcribes:
            usage = {"type": "duration", "seconds": round(len(audio) / SAMPLE_RATE, 3)}
            done = ev("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0)
            await self.send({**done, "transcript": transcript, "usage": usage})
        part["transcript"] = transcript
        await self.send(ev("conversation.item.done", previous_item_id=previous, item={**item, "status": "completed"}))
        if transcript:  # noise with no words in it is not a turn
            self.pending = PendingInput(transcript, audio=audio)

    async def _item_create(self, event: dict[str, Any]) -> None:
        item: dict[str, Any] = event["item"] if isinstance(event.get("item"), dict) else {}
        if item.get("type") == "function_call_output":
            return await self._function_output(item)
        texts, audio = user_message(item)
        item_id = str(item["id"]) if isinstance(item.get("id"), str) else new_id("item")
        previous, self.last_item = self.last_item, item_id
        if audio is not None:
            pending = PendingInput(await self._live().final(audio, len(audio)), audio=audio)
        else:
            pending = PendingInput(" ".join(texts).strip())
            if not pending.transcript:
                raise ClientError("the message has no text", param="item.content")
        public: dict[str, Any] = {"id": item_id, "type": "message", "object": "realtime.item", "role": "user"}
        content = [
            {**part, "audio": None, "transcript": pending.transcript} if part["type"] == "input_audio" else part
            for part in item["content"]
        ]  # the audio is not sent back
        public.update(status="completed", content=content)
        await self.send(ev("conversation.item.added", previous_item_id=previous, item=public))
        await self.send(ev("conversation.item.done", previous_item_id=previous, item=public))
        self.pending = pending

    async def _function_output(self, item: dict[str, Any]) -> None:
        call_id, output = function_output(item)
        if self.pending is not None and not self.pending.outputs:
            raise ClientError("a user message is waiting for its response: send response.create first", param="item")
        self.pending = self.pending or PendingInput("")
        self.pending.outputs.append((call_id, output))
        item_id = str(item["id"]) if isinstance(item.get("id"), str) else new_id("item")
        previous, self.last_item = self.last_item, item_id
        public = {"id": item_id, "type": "function_call_output", "object": "realtime.item", "call_id": call_id}
        public.update(output=output, status="completed")
        await self.send(ev("conversation.item.added", previous_item_id=previous, item=public))
        await self.send(ev("conversation.item.done", previous_item_id=previous, item=public))

    async def _truncate(self, event: dict[str, Any]) -> None:
        item_id, end = event.get("item_id"), event.get("audio_end_ms")
        if not isinstance(end, int) or end < 0:
            raise ClientError("audio_end_ms must be a whole number of ms, 0 or more", param="audio_end_ms")
        if self.answered is None or self.answered[0] != item_id:
            raise ClientError("only the last answer's audio can be truncated", param="item_id")
        spoken = self.answered[1]
        if end > spoken.sent_ms + 1:
            raise ClientError(
                f"audio_end_ms is past the answer's {spoken.sent_ms:.0f} ms of audio", param="audio_end_ms"
            )
        await self.agent.amend_answer(self.tenant, self.session_id, spoken.heard(end))
        await self.send(ev("conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end))

    # -- responses ----------------------------------------------------------------------

    async def _response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            raise ClientError("a response is already in progress", code="conversation_already_has_active_response")
        if self.pending is None:
            raise ClientError("there is no new user message to respond to", code="no_input")
        await self._start_response()

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        if self.response is None:
            raise ClientError("no response is in progress", code="response_cancel_not_active")
        await self._stop_response("client_cancelled")

    async def _start_response(self) -> None:
        assert self.pending is not None
        pending, self.pending = self.pending, None
        response = self.response = self._response(pending, self.send, self.last_item)
        await self.send(ev("response.created", response=response.public()))
        self.response_task = asyncio.create_task(self._respond(response))

    def _response(
        self, pending: PendingInput, send: Callable[[dict[str, Any]], Awaitable[None]], previous: str | None
    ) -> Response:
        """A response to `pending`, sending through `send`, after item `previous`."""
        tools = {tool.name for tool in self.config.tools}
        request = pending.request(self.config, session_id=self.session_id, tenant=self.tenant)
        return Response(new_id("resp"), request, pending.transcript, send, tools, previous, self._completed)

    async def _respond(self, response: Response) -> None:
        try:
            async with contextlib.aclosing(self.agent.stream_turn(response.request)) as events:
                async for event in events:
                    await response.on_event(event)
        except Exception as error:  # refused before it started: a busy session, memory down
            await response.failed(error)
        if self.response is response:
            self.response = None

    def _completed(self, response: Response) -> None:
        """A response's answer landed whole: it is the one a truncation may cut."""
        if self.response is response:
            self.response = None
        if response.message is not None:
            self.answered = (response.message["id"], response.spoken)
            self.last_item = response.message["id"]

    async def _drop_early(self) -> None:
        early, self.early = self.early, None
        if early is not None:
            await early.drop()

    async def _adopt(self, early: EarlyAnswer) -> None:
        """The early answer is the answer: out with what it held, and on as the response."""
        self.response, self.response_task = early.response, early.task
        await self.send(ev("response.created", response=early.response.public()))
        early.held.release()

    async def _stop_response(self, reason: str, *, notify: bool = True) -> None:
        """Cancel the response now; keep in the session what the user heard of it."""
        response, task, self.response = self.response, self.response_task, None
        if response is None or task is None:
            return
        response.spoken.stop()
        heard = response.spoken.heard_so_far()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if notify:
            await response.cancelled(reason)
        try:
            if response.transcript:  # a user's message (not a client's tool outputs) and what was heard of the answer
                await self.agent.record_exchange(response.request, response.transcript, heard)
        except Exception:
            log.warning("could not keep the heard part of a cut answer in %s", self.session_id, exc_info=True)
        if response.message is not None:
            self.answered = (response.message["id"], response.spoken)
            self.last_item = response.message["id"]
