"""Hands-free mode in the web playground: Chromium's fake microphone talks to /v1/realtime.

The page streams the microphone as pcm16 over the OpenAI Realtime protocol; the server's real
hearing (Silero VAD, Whisper) finds the turns and its real voice (Piper) says the scripted
planner's answers, which the page plays with Web Audio. Chromium's fake microphone plays a
spoken question followed by silence, once, or over and over: then each repeat of the question
speaks over the answer to the one before (barge-in).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from playwright.sync_api import Browser, Locator, Page, WebSocket, expect
from pydantic import SecretStr

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner, Step, call, reply
from tests.browser import chromium, fake_microphone, open_page
from tests.http_server import running_server
from tests.speech import piper_wav

KEY = "handsfree-key-5d2a9c"
QUESTION = "What time is it in Tokyo?"
TOOL_LINE = "Let me check the time in Tokyo."
ANSWER = "It is noon in Tokyo. Have a nice day."
STORY = " ".join(f"Part {n} of the story is about a fox who walks through the quiet forest." for n in range(1, 7))
LONG = " ".join(f"Sentence number {n} of a long story goes on for a while." for n in range(1, 30))
TIMEOUT_MS = 120_000
CHUNK_BYTES = 24_000 * 2 // 10
"""100 ms of pcm16 at 24 kHz: what the page sends in each input_audio_buffer.append."""

_RECORD = """() => {
    window.audioStarts = [];
    const start = AudioBufferSourceNode.prototype.start;
    AudioBufferSourceNode.prototype.start = function (when = 0, ...rest) {
        window.audioStarts.push({when, duration: this.buffer.duration, now: this.context.currentTime});
        return start.call(this, when, ...rest);
    };
    window.micStreams = [];
    const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
        const stream = await getUserMedia(constraints);
        window.micStreams.push(stream);
        return stream;
    };
}"""
"""Keep what the page starts playing (when, for how long) and the microphone streams it opens."""


@pytest.fixture(scope="module")
def planner() -> ScriptedPlanner:
    return ScriptedPlanner()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, planner: ScriptedPlanner) -> Iterator[str]:
    data = tmp_path_factory.mktemp("handsfree")
    settings = Settings(data_dir=data, voices=False, web_search="off", api_keys=SecretStr(f"{KEY}:local"))
    with running_server(create_app(settings, lambda s: open_services(s, planner=planner))) as url:
        yield url


@pytest.fixture(scope="module")
def question_wav() -> bytes:
    return piper_wav(QUESTION)


def _script(planner: ScriptedPlanner, *steps: Step, seconds_per_word: float = 0.0) -> None:
    """The planner's next steps (after those it has taken), each word written in `seconds_per_word`."""
    planner.steps = [*planner.steps[: len(planner.requests)], *steps]
    planner.seconds_per_word = seconds_per_word


def _microphone(question_wav: bytes, silence_s: float, path: Path) -> Path:
    """The question, then `silence_s` of silence, as Chromium's fake microphone plays it."""
    audio, rate = soundfile.read(io.BytesIO(question_wav), dtype="float32")
    padded = np.concatenate([audio, np.zeros(int(silence_s * rate), np.float32)])
    out = io.BytesIO()
    soundfile.write(out, padded, rate, format="WAV", subtype="PCM_16")
    return fake_microphone(out.getvalue(), path)


@dataclass
class HandsFree:
    page: Page
    sockets: list[WebSocket] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    """The client events the page sent, in order."""
    received: list[dict[str, Any]] = field(default_factory=list)
    """The server events the page was sent, in order."""

    def card(self, index: int) -> Locator:
        return self.page.get_by_test_id("handsfree-turn").nth(index)

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.sent if event["type"] == kind]

    def received_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.received if event["type"] == kind]


@contextmanager
def _hands_free(browser: Browser, base_url: str, key: str = KEY) -> Iterator[HandsFree]:
    """The playground with the API key typed in and hands-free turned on."""
    with open_page(browser, base_url) as page:
        watched = HandsFree(page)

        def opened(socket: WebSocket) -> None:
            watched.sockets.append(socket)
            socket.on("framesent", lambda payload: watched.sent.append(json.loads(payload)))
            socket.on("framereceived", lambda payload: watched.received.append(json.loads(payload)))

        page.on("websocket", opened)
        page.evaluate(_RECORD)
        page.get_by_test_id("api-key").fill(key)
        page.get_by_test_id("handsfree").click()
        yield watched


def _assert_turned_off(watched: HandsFree) -> None:
    """The toggle is off, the microphone closed, the socket too, and the other ways to talk are back."""
    page = watched.page
    expect(page.get_by_test_id("handsfree")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("handsfree")).to_have_text("Hands-free")
    expect(page.get_by_test_id("handsfree-state")).to_be_hidden()
    page.wait_for_function("window.micStreams.length > 0")
    page.wait_for_function("window.micStreams.every(s => s.getTracks().every(t => t.readyState === 'ended'))")
    for socket in watched.sockets:
        if not socket.is_closed():
            socket.wait_for_event("close")
    for control in ("ptt", "text-input", "send", "new-session"):
        expect(page.get_by_test_id(control)).to_be_enabled()


def _audio_ms(card: Locator, name: str) -> int:
    return int(card.get_attribute(name) or "0")


def test_a_spoken_question_is_heard_answered_and_played(
    base_url: str, planner: ScriptedPlanner, question_wav: bytes, tmp_path: Path
) -> None:
    """Turned on, the page sends its settings, then the microphone in 100 ms chunks; the turn's
    card shows what was heard, the tool call, the answer and its timeline, and the answer's
    audio plays to its end, chunk after chunk with no gap. Turned off, it closes it all."""
    _script(planner, call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER))
    microphone = _microphone(question_wav, 2.0, tmp_path / "question.wav")
    with chromium(microphone) as browser, _hands_free(browser, base_url) as watched:
        page = watched.page
        expect(page.get_by_test_id("handsfree")).to_have_attribute("aria-pressed", "true")
        for control in ("ptt", "text-input", "send", "new-session"):
            expect(page.get_by_test_id(control)).to_be_disabled()
        card = watched.card(0)
        expect(card).to_have_attribute("data-response-status", "completed", timeout=TIMEOUT_MS)
        expect(card.get_by_test_id("transcript")).to_have_text(re.compile("tokyo", re.IGNORECASE))
        tool = card.get_by_test_id("tool-call")
        expect(tool).to_have_count(1)
        expect(tool).to_have_attribute("data-status", "ok")
        expect(tool).to_contain_text(re.compile(r"^get_date_time .* · completed$"))
        expect(tool.get_by_test_id("tool-arguments")).to_have_text('{"timezone": "Asia/Tokyo"}')
        expect(card.get_by_test_id("answer")).to_have_text(f"{TOOL_LINE} {ANSWER}")
        expect(card.get_by_test_id("response-status")).to_have_text("completed")
        page.wait_for_function(
            "c => c.dataset.audioChunks > 0 && c.dataset.audioPlayed === c.dataset.audioChunks",
            arg=card.element_handle(),
            timeout=TIMEOUT_MS,
        )
        assert _audio_ms(card, "data-audio-ms") > 2000  # seconds of speech, heard to the end
        for event in ("speech_started", "speech_stopped", "transcribed", "response_created", "first_audio"):
            expect(card.locator(f"[data-event='{event}']")).to_have_count(1)
        expect(card.locator("[data-event='response_done']")).to_have_text(
            re.compile(r"^\+[\d,.]+ ms response completed$")
        )
        expect(card.get_by_test_id("latency")).to_contain_text("after you stopped")
        expect(page.get_by_test_id("handsfree-turn")).to_have_count(1)  # the microphone played the question once
        expect(page.get_by_test_id("error")).to_be_hidden()

        starts = page.evaluate("window.audioStarts")
        assert len(starts) == int(card.get_attribute("data-audio-chunks") or "0")
        for first, second in itertools.pairwise(starts):
            first_ends = first["when"] + first["duration"]
            assert second["when"] >= first_ends - 1e-6, "the chunks overlap"
            if second["now"] < first_ends:  # it came while the one before played: it starts where that ends
                assert second["when"] == pytest.approx(first_ends, abs=1e-6)

        update = watched.sent[0]
        assert update == {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"voice": None},
                },
            },
        }
        appends = watched.sent_of("input_audio_buffer.append")
        assert len(appends) > 30 and all(len(base64.b64decode(e["audio"])) == CHUNK_BYTES for e in appends)
        assert watched.sockets[0].url.endswith(
            f"/v1/realtime?session_id={page.get_by_test_id('session-id').inner_text()}"
        )

        page.get_by_test_id("handsfree").click()
        _assert_turned_off(watched)
        session = page.get_by_test_id("session-id").inner_text()
    stored = httpx.get(f"{base_url}/v1/sessions/{session}", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert stored.json()["turns"][0]["answer"] == ANSWER  # the hands-free turn is the page's session's


def test_speaking_over_an_unfinished_answer_cancels_it(
    base_url: str, planner: ScriptedPlanner, question_wav: bytes, tmp_path: Path
) -> None:
    """The answer is long and slow to write; the microphone says the question again while it
    plays: the page stops the answer at once, and the server cancels it. The page sends no
    truncation (the server keeps what it reckons was heard of an unfinished answer)."""
    # About 10 s to write, so the repeat (2.5 s of silence on) comes while it is written; its
    # first sentence is said after a third of a second, so it is playing by then.
    _script(planner, reply(LONG), reply(ANSWER), seconds_per_word=0.03)
    microphone = _microphone(question_wav, 2.5, tmp_path / "question-loop.wav")
    with chromium(microphone, loop=True) as browser, _hands_free(browser, base_url) as watched:
        page = watched.page
        first = watched.card(0)
        expect(first).to_have_attribute("data-response-status", "cancelled", timeout=TIMEOUT_MS)
        expect(first.get_by_test_id("response-status")).to_have_text("cancelled: turn_detected")
        expect(first).to_have_attribute("data-interrupted-ms", re.compile(r"^[1-9]\d*$"))
        expect(first.locator("[data-event='interrupted']")).to_have_count(1)
        # all that was heard of it is what had played at the cut: nothing after
        assert _audio_ms(first, "data-audio-ms") == pytest.approx(_audio_ms(first, "data-interrupted-ms"), abs=1)
        second = watched.card(1)
        expect(second.get_by_test_id("transcript")).to_have_text(re.compile("tokyo", re.IGNORECASE))
        expect(second.locator("[data-event='speech_started']")).to_have_count(1)
        assert watched.sent_of("conversation.item.truncate") == []
        expect(page.get_by_test_id("error")).to_be_hidden()
        page.get_by_test_id("handsfree").click()
        _assert_turned_off(watched)


def test_speaking_over_a_finished_answer_truncates_it_where_it_was_heard(
    base_url: str, planner: ScriptedPlanner, question_wav: bytes, tmp_path: Path
) -> None:
    """The answer is written at once but takes a while to say; the question comes again while
    it plays: the page stops it and tells the server how much was heard, and the server keeps
    only that much of the answer, as the next turn's history shows."""
    # Written at once and said in about 23 s: done long before the repeat (6 s of silence on),
    # and playing still when it comes.
    _script(planner, reply(STORY), reply(ANSWER))
    asked = len(planner.requests)
    microphone = _microphone(question_wav, 6.0, tmp_path / "question-pause-loop.wav")
    with chromium(microphone, loop=True) as browser, _hands_free(browser, base_url) as watched:
        page = watched.page
        first = watched.card(0)
        expect(first).to_have_attribute("data-truncated-ms", re.compile(r"^[1-9]\d*$"), timeout=TIMEOUT_MS)
        expect(first).to_have_attribute("data-response-status", "completed")
        heard = _audio_ms(first, "data-truncated-ms")
        assert heard == _audio_ms(first, "data-interrupted-ms")
        [truncate] = watched.sent_of("conversation.item.truncate")
        added = [event["item"] for event in watched.received_of("response.output_item.added")]
        answers = [item for item in added if item["type"] == "message"]
        assert truncate == {
            "type": "conversation.item.truncate",
            "item_id": answers[0]["id"],  # the first answer's
            "content_index": 0,
            "audio_end_ms": heard,
        }
        expect(first.locator("[data-event='truncated']")).to_have_count(1)
        expect(watched.card(1)).to_have_attribute("data-response-status", "completed", timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("error")).to_be_hidden()
        page.get_by_test_id("handsfree").click()
        _assert_turned_off(watched)
    kept = str([m for m in planner.requests[asked + 1].messages if m["role"] == "assistant"][-1]["content"])
    assert kept and STORY.startswith(kept) and len(kept) < len(STORY)  # only what was heard


def test_a_refused_key_turns_hands_free_off_with_the_reason(base_url: str) -> None:
    with chromium() as browser, _hands_free(browser, base_url, key="not-the-key") as watched:
        expect(watched.page.get_by_test_id("error")).to_contain_text("the realtime connection was refused")
        _assert_turned_off(watched)
        expect(watched.page.get_by_test_id("handsfree-turn")).to_have_count(0)
