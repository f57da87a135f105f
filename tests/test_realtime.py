"""/v1/realtime with the openai SDK as the client: real hearing (Silero, Whisper) and voice
(Piper), a scripted planner, so what is checked is the protocol and the conversation. The
recognizer is the service's own, noting the hint each transcription was told."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.asr import packaged_recognizer
from model.base import SpeechRecognizer
from model.testing import ScriptedPlanner, call, reply
from tests.http_server import running_server
from tests.realtime_client import collect, connect, pcm16_chunks, send_speech, silence_pcm16
from tests.speech import espeak_wav, piper_wav

pytestmark = pytest.mark.anyio

LONG = " ".join(f"Sentence number {n} of a long story goes on for a while." for n in range(1, 30))


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner(seconds_per_word=0.02)


class HintsNoted(SpeechRecognizer):
    """A recognizer that notes the hint of each transcription, then hears with `inner`."""

    def __init__(self, inner: SpeechRecognizer) -> None:
        self.inner, self.name = inner, inner.name
        self.hints: list[str] = []
        self.delay_s = 0.0
        """Time each transcription takes on top of hearing (a busy machine)."""

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        self.hints.append(hint)
        time.sleep(self.delay_s)
        return self.inner.transcribe(audio, hint)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("realtime"), voices=False, web_search="off", api_keys="local:local,k2:other"
    )


@pytest.fixture(scope="module")
def asr(settings: Settings) -> HintsNoted:
    return HintsNoted(packaged_recognizer(settings.asr_model, settings.models_root, beam_size=settings.asr_beam))


@pytest.fixture(scope="module")
def server(settings: Settings, planner: ScriptedPlanner, asr: HintsNoted) -> Iterator[str]:
    def services(s: Settings) -> Any:
        return open_services(s, planner=planner, asr=asr)

    with running_server(create_app(settings, services)) as url:
        yield url


def _script(planner: ScriptedPlanner, *steps: Any) -> None:
    planner.steps = [*planner.steps[: len(planner.requests)], *steps]


def _types(events: list[Any]) -> list[str]:
    return [event.type for event in events]


async def test_a_spoken_question_is_heard_answered_and_remembered(server: str, planner: ScriptedPlanner) -> None:
    def tokyo(request: Any) -> Any:  # by what was asked: an answer begun early in a pause asks too
        if request.messages[-1]["role"] == "tool":
            return reply("It is noon in Tokyo. Have a nice day.")
        return call("get_date_time", timezone="Asia/Tokyo")

    _script(planner, *[tokyo] * 6)
    async with connect(server, session_id="rt-tokyo") as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        await connection.session.update(
            session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper"}}}}
        )
        await send_speech(connection, piper_wav("What time is it in Tokyo?"))
        events = await collect(connection)
    kinds = _types(events)
    for kind in (
        "session.updated",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.mcp_call.completed",
        "response.output_audio.delta",
        "response.output_audio_transcript.done",
    ):
        assert kind in kinds, kind
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    heard = next(e for e in events if e.type == "conversation.item.input_audio_transcription.completed")
    assert "tokyo" in heard.transcript.lower()
    assert "tokyo" in str(planner.requests[-2].messages[-1]["content"]).lower()  # the turn heard the same
    tool = next(e for e in events if e.type == "response.output_item.done" and e.item.type == "mcp_call")
    assert tool.item.name == "get_date_time" and json.loads(tool.item.arguments) == {"timezone": "Asia/Tokyo"}
    said = next(e for e in events if e.type == "response.output_audio_transcript.done").transcript
    assert said == "Let me check the time in Tokyo. It is noon in Tokyo. Have a nice day."
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    assert len(audio) / 2 / 24_000 > 2.0  # seconds of 24 kHz pcm16 speech
    done = events[-1]
    assert done.response.status == "completed" and [item.type for item in done.response.output] == [
        "mcp_call",
        "message",
    ]
    async with httpx.AsyncClient(base_url=server, headers={"Authorization": "Bearer local"}) as http:
        stored = (await http.get("/v1/sessions/rt-tokyo")).json()
    assert stored["turns"][0]["answer"] == "It is noon in Tokyo. Have a nice day."
    heard = stored["turns"][0]["paralinguistics"]  # measured from the streamed audio as well
    assert heard["pitch_hz"] > 50 and heard["rate_wps"] > 1 and heard["loudness_dbfs"] < 0


async def test_typed_messages_and_manual_commit_in_text(server: str, planner: ScriptedPlanner) -> None:
    _script(planner, reply("Hello Ada."))
    async with connect(server) as connection:
        await connection.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}
        )
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "My name is Ada."}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        events = await collect(connection)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello Ada." and "response.output_audio.delta" not in _types(events)
    assert events[-1].response.status == "completed"


async def test_speaking_over_an_answer_cancels_it_and_keeps_what_was_heard(
    server: str, planner: ScriptedPlanner
) -> None:
    _script(planner, *[lambda r: reply(LONG if "story" in str(r.messages[-1]["content"]) else "Sure.")] * 6)
    async with connect(server, session_id="rt-barge") as connection:
        await send_speech(connection, piper_wav("Tell me a long story."))
        events = await collect(connection, until="response.output_audio.delta")
        await asyncio.sleep(1.5)  # the user listens a while, then speaks over the answer
        await send_speech(connection, espeak_wav("Stop, stop."), real_time=True)
        events += await collect(connection, until="response.done")
        cancelled = events[-1]
        rest = await collect(connection, until="response.done")
    kinds = _types(events)
    barge = len(kinds) - 1 - kinds[::-1].index("input_audio_buffer.speech_started")
    assert "response.output_audio.delta" not in kinds[barge + 1 :]  # the voice stopped at once
    assert cancelled.response.status == "cancelled" and cancelled.response.status_details.reason == "turn_detected"
    heard_before = [m for m in planner.requests[-1].messages if m["role"] == "assistant"][-1]["content"]
    assert heard_before and LONG.startswith(heard_before[: len(heard_before) // 2])
    assert len(heard_before) < len(LONG) / 2  # only what was heard, not the whole story
    assert rest[-1].response.status == "completed"


async def test_a_bad_event_gets_an_error_and_the_socket_lives(server: str, planner: ScriptedPlanner) -> None:
    _script(planner, reply("Still here."))
    async with connect(server) as connection:
        await connection.recv()  # session.created
        await connection.send({"type": "input_audio_buffer.append", "audio": "not base64!!"})
        error = await connection.recv()
        assert error.type == "error" and "base64" in error.error.message
        await connection.send({"type": "no.such.event"})
        assert (await connection.recv()).error.code == "unknown_event"
        await connection.input_audio_buffer.commit()
        assert (await connection.recv()).error.code == "input_audio_buffer_commit_empty"
        await connection.session.update(session={"type": "realtime", "audio": {"input": {"format": {"rate": 8000}}}})
        assert "24000" in (await connection.recv()).error.message
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Are you there?"}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        assert (await collect(connection))[-1].response.status == "completed"


async def test_a_wrong_key_is_refused_at_the_handshake(server: str) -> None:
    ws_url = server.replace("http://", "ws://") + "/v1/realtime"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with connect(server, key="wrong"):
            pass
    assert refused.value.response.status_code == 401
    async with websockets.connect(ws_url, subprotocols=["realtime", "openai-insecure-api-key.k2"]) as browser:
        assert browser.subprotocol == "realtime"
        assert json.loads(await browser.recv())["type"] == "session.created"


STOCK = {
    "type": "function",
    "name": "get_stock_price",
    "description": "The latest price of a stock, by ticker symbol.",
    "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
}


async def test_a_function_the_client_runs_makes_a_round_trip(server: str, planner: ScriptedPlanner) -> None:
    def stock(request: Any) -> Any:  # an early answer begun in a pause may ask too: answer by what was asked
        if request.messages[-1]["role"] == "tool":
            return reply("ACME trades at 42 dollars.")
        return call("get_stock_price", symbol="ACME")

    _script(planner, *[stock] * 6)
    async with connect(server, session_id="rt-stock") as connection:
        await connection.session.update(
            session={"type": "realtime", "instructions": "Answer in one sentence.", "tools": [STOCK]}
        )
        await send_speech(connection, piper_wav("What is the price of ACME stock?"))
        first = await collect(connection)
        asked = next(e for e in first if e.type == "response.function_call_arguments.done")
        assert asked.name == "get_stock_price" and json.loads(asked.arguments) == {"symbol": "ACME"}
        assert [item.type for item in first[-1].response.output] == ["function_call"]
        assert "response.mcp_call.in_progress" not in _types(first)  # the server did not run it
        output = {"type": "function_call_output", "call_id": asked.call_id, "output": '{"price": 42}'}
        await connection.conversation.item.create(item=output)
        await connection.response.create()
        second = await collect(connection)
    said = next(e for e in second if e.type == "response.output_audio_transcript.done").transcript
    assert said == "ACME trades at 42 dollars." and second[-1].response.status == "completed"
    asking, answering = planner.requests[-2], planner.requests[-1]
    assert asking.instructions == "Answer in one sentence."
    assert "get_stock_price" in [tool["name"] for tool in asking.tools]
    last = answering.messages[-1]
    assert last["role"] == "tool" and last["content"] == '{"price": 42}' and last["tool_call_id"] == asked.call_id


async def test_an_output_for_no_waiting_call_fails_that_response_only(server: str, planner: ScriptedPlanner) -> None:
    _script(planner, reply("Fine."))
    async with connect(server) as connection:
        output = {"type": "function_call_output", "call_id": "call_nobody", "output": "{}"}
        await connection.conversation.item.create(item=output)
        await connection.response.create()
        events = await collect(connection)
        error = next(e for e in events if e.type == "error")
        assert "call_nobody" in error.error.message and events[-1].response.status == "failed"
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello?"}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        assert (await collect(connection))[-1].response.status == "completed"


async def _end_turns_after_long_silence(connection: Any) -> None:
    """1.5 s of silence ends a turn: time enough for an answer to begin early, whatever the load."""
    detection = {"type": "server_vad", "silence_duration_ms": 1500}
    await connection.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": detection}}})


def _echo(heard_at: list[float]) -> Any:
    """A step that answers with what it was asked, noting when it was asked."""

    def step(request: Any) -> Any:
        heard_at.append(time.monotonic())
        return reply(f"You said {str(request.messages[-1]['content']).strip().rstrip('.?!')}.")

    return step


async def test_the_answer_starts_while_the_server_waits_out_the_silence(server: str, planner: ScriptedPlanner) -> None:
    asked: list[float] = []
    _script(planner, *[_echo(asked)] * 4)
    async with connect(server, session_id="rt-early") as connection:
        await _end_turns_after_long_silence(connection)
        speaking = asyncio.create_task(
            send_speech(connection, piper_wav("What time is it in Tokyo?"), silence_after_ms=2500, real_time=True)
        )
        stopped = await collect(connection, until="input_audio_buffer.speech_stopped")
        stopped_at = time.monotonic()
        events = stopped + await collect(connection)
        await speaking
    kinds = _types(events)
    assert kinds.count("response.created") == 1
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    assert len(asked) == 1 and asked[0] < stopped_at
    said = next(e for e in events if e.type == "response.output_audio_transcript.done").transcript
    assert "tokyo" in said.lower()


async def test_an_early_answer_is_dropped_unheard_when_the_user_goes_on(server: str, planner: ScriptedPlanner) -> None:
    asked: list[float] = []
    _script(planner, *[_echo(asked)] * 4)
    async with connect(server, session_id="rt-goes-on") as connection:
        await _end_turns_after_long_silence(connection)
        await send_speech(connection, piper_wav("What is the time"), silence_after_ms=900, real_time=True)
        await send_speech(connection, piper_wav("in Tokyo right now?"), silence_after_ms=2500, real_time=True)
        events = await collect(connection)
    kinds = _types(events)
    assert kinds.count("input_audio_buffer.speech_started") == 1 and kinds.count("response.created") == 1
    said = next(e for e in events if e.type == "response.output_audio_transcript.done").transcript.lower()
    assert "time" in said and "tokyo" in said  # the whole question, not its first half
    assert len(asked) >= 2  # an answer to the first half was begun in the pause, and dropped
    async with httpx.AsyncClient(base_url=server, headers={"Authorization": "Bearer local"}) as http:
        turns = (await http.get("/v1/sessions/rt-goes-on")).json()["turns"]
    assert len(turns) == 1 and "tokyo" in turns[0]["transcript"].lower()


async def test_a_truncated_answer_is_kept_as_far_as_it_was_played(server: str, planner: ScriptedPlanner) -> None:
    answer = "A short first sentence. The second one is much longer and goes on for quite a while."
    _script(planner, reply(answer))
    async with connect(server, session_id="rt-truncate") as connection:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Talk to me."}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        events = await collect(connection)
        message = next(e.item for e in events if e.type == "response.output_item.done" and e.item.type == "message")
        pieces = [e for e in events if e.type == "response.output_audio_transcript.delta"]
        assert len(pieces) == 2  # one per sentence, each with its audio
        first_ms = len(base64.b64decode(next(e.delta for e in events if e.type == "response.output_audio.delta")))
        await connection.conversation.item.truncate(item_id=message.id, content_index=0, audio_end_ms=10**7)
        assert "past the answer" in (await connection.recv()).error.message
        await connection.conversation.item.truncate(item_id=message.id, content_index=0, audio_end_ms=first_ms // 48)
        truncated = await connection.recv()
        assert truncated.type == "conversation.item.truncated" and truncated.item_id == message.id
    async with httpx.AsyncClient(base_url=server, headers={"Authorization": "Bearer local"}) as http:
        kept = (await http.get("/v1/sessions/rt-truncate")).json()["turns"][-1]["answer"]
    assert kept and answer.startswith(kept) and len(kept) < len("A short first sentence.") + 1


async def test_speech_is_heard_with_the_sessions_last_words_as_the_hint(
    server: str, planner: ScriptedPlanner, asr: HintsNoted
) -> None:
    def answer(request: Any) -> Any:  # by what was asked: an answer begun early in a pause asks too
        said = str(request.messages[-1]["content"]).lower()
        return reply("You are Marguerite Dubois." if "name" in said else "Nice to meet you.")

    _script(planner, *[answer] * 6)
    async with connect(server, session_id="rt-hint") as connection:
        await connection.session.update(
            session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper"}}}}
        )
        typed = {"type": "input_text", "text": "I am Marguerite Dubois."}
        item = {"type": "message", "role": "user", "content": [typed]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        assert (await collect(connection))[-1].response.status == "completed"
        before = len(asr.hints)
        await send_speech(connection, piper_wav("What is my name?"))
        events = await collect(connection)
        heard = next(e for e in events if e.type == "conversation.item.input_audio_transcription.completed")
        assert "name" in heard.transcript.lower()
        hints = asr.hints[before:]
        assert hints and all(hint == "I am Marguerite Dubois." for hint in hints)  # each transcription of the speech
        said = next(e for e in events if e.type == "response.output_audio_transcript.done").transcript
        assert said == "You are Marguerite Dubois."

        # Committed by hand (push to talk): heard with the hint as well, now the spoken turn's words.
        await connection.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        for chunk in pcm16_chunks(piper_wav("Thank you.")):
            await connection.input_audio_buffer.append(audio=chunk)
        before = len(asr.hints)
        await connection.input_audio_buffer.commit()
        await collect(connection, until="conversation.item.done")
    assert asr.hints[before:] == [heard.transcript]


async def test_speech_cleared_while_it_is_heard_tells_nothing_more(server: str, asr: HintsNoted) -> None:
    """The client clears the buffer while its speech is being transcribed (the VAD began a
    live transcript): that transcription stops, and no delta of it reaches the next item."""
    wav = piper_wav("Please tell me everything about the old lighthouse keeper and his dog.")
    asr.delay_s = 1.0
    try:
        async with connect(server, session_id="rt-clear") as connection:
            await connection.session.update(
                session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper"}}}}
            )
            before = len(asr.hints)
            for chunk in [*silence_pcm16(300), *pcm16_chunks(wav)[:15]]:  # 1.5 s of it, in real time
                await connection.input_audio_buffer.append(audio=chunk)
                await asyncio.sleep(0.1)
            assert len(asr.hints) > before  # a live transcription is under way
            await connection.input_audio_buffer.clear()
            events = await collect(connection, until="input_audio_buffer.cleared")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):  # as long again as the transcription takes
                    async for event in connection:
                        events.append(event)
    finally:
        asr.delay_s = 0.0
    kinds = _types(events)
    assert "input_audio_buffer.speech_started" in kinds
    after = kinds[kinds.index("input_audio_buffer.cleared") :]
    assert not [kind for kind in after if kind.startswith("conversation.item.input_audio_transcription")]
