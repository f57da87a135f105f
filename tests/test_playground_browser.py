"""The web playground at `/`, in Debian's Chromium with a fake microphone, against a real server.

The fast tests run the scripted planner behind the real ASR and TTS: every question gets
the clock in Tokyo, a place that is no timezone (a failed tool call) and the knowledge
base, then an answer citing it. Turns stream (server-sent events): a live card fills in as
the turn runs and its speech plays chunk by chunk, then the turn's card replaces it. The
`real` test is the whole product as a new user meets it: the real models, a question
spoken into the microphone with push-to-talk.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from agent.tracing import iter_spans
from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.base import PlanRequest, ToolCall
from model.errors import PlannerError
from model.testing import ScriptedPlanner, Step, reply
from model.voices import VoiceSynthesizer
from tests.browser import chromium, fake_microphone, open_page, wav_seconds
from tests.http_server import running_server
from tests.otlp_receiver import OtlpReceiver, running_otlp_receiver
from tests.speech import piper_wav

KEY = "playground-key-3e1b7c"
QUESTION = "What time is it in Tokyo?"
OFFICE = "The Tokyo office opens at nine in the morning, Monday to Friday."
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"
TURN_TIMEOUT_MS = 60_000
OUTAGE = "planner outage"
LAST_SENTENCE = "The Tokyo office opens at nine [1]."


def _script(request: PlanRequest) -> Step:
    """Round 1 calls the tools; once their results are in, answer from them, citing [1].

    A question that mentions the outage fails the way an unreachable planner server does.
    """
    if OUTAGE in str(request.messages[-1]["content"]):
        raise PlannerError("the planner server is unreachable")
    results = {m.get("tool_call_id"): str(m["content"]) for m in request.messages if m["role"] == "tool"}
    if request.messages[-1]["role"] == "tool":
        return reply(f"{results.get('call_tokyo', '')} {LAST_SENTENCE}")
    calls = (
        ToolCall(id="call_tokyo", name="get_date_time", arguments={"timezone": "Asia/Tokyo"}),
        ToolCall(id="call_nowhere", name="get_date_time", arguments={"timezone": "Atlantis/Nowhere"}),
        ToolCall(id="call_kb", name="knowledge_search", arguments={"query": "When does the Tokyo office open?"}),
    )
    return Step(calls=calls)


class GatedVoices(VoiceSynthesizer):
    """The real voices; while `gate` is clear, the answer's last sentence waits for it to be set.

    The scripted planner answers in a blink, so a test could not otherwise be sure to see a
    turn in the middle of its stream: holding the last sentence's speech back holds the turn
    there (its text, tool calls and first sentence's audio already sent) for as long as the
    test needs, and setting the gate lets it finish.
    """

    def __init__(self, piper: Any, espeak: Any = None) -> None:
        super().__init__(piper, espeak)
        self.gate = threading.Event()
        self.gate.set()

    def synthesize(self, text: str, voice: str | None = None) -> Iterator[np.ndarray]:
        if LAST_SENTENCE in text:
            self.gate.wait(TURN_TIMEOUT_MS / 1000)
        yield from super().synthesize(text, voice)


@pytest.fixture(scope="module")
def voices() -> GatedVoices:
    synthesizer = GatedVoices.default()
    assert isinstance(synthesizer, GatedVoices)
    return synthesizer


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, voices: GatedVoices) -> Iterator[str]:
    kb = tmp_path_factory.mktemp("kb")
    (kb / "office.md").write_text(f"# Office hours\n\n{OFFICE}\n")
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), kb_dir=kb, api_keys=f"{KEY}:local")  # type: ignore[arg-type]
    planner = ScriptedPlanner([_script] * 200)
    with running_server(create_app(settings, lambda s: open_services(s, planner=planner, tts=voices))) as url:
        yield url


@pytest.fixture(scope="module")
def question_wav() -> bytes:
    return piper_wav(QUESTION)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, question_wav: bytes) -> Iterator[Browser]:
    microphone = fake_microphone(question_wav, tmp_path_factory.mktemp("mic") / "question.wav")
    with chromium(microphone) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    with open_page(browser, base_url) as opened:
        opened.get_by_test_id("api-key").fill(KEY)
        yield opened


# ---- helpers -----------------------------------------------------------------------------


def _last_turn(page: Page, count: int, timeout_ms: float = TURN_TIMEOUT_MS) -> Locator:
    """Wait for the page to show `count` turns and return the newest."""
    turns = page.get_by_test_id("turn")
    expect(turns).to_have_count(count, timeout=timeout_ms)
    return turns.nth(count - 1)


def _assert_audio_plays(turn: Locator) -> None:
    audio = turn.get_by_test_id("audio")
    expect(audio).to_have_count(1)
    audio.evaluate("a => a.readyState >= 1 || new Promise(r => a.addEventListener('loadedmetadata', r))")
    assert audio.evaluate("a => a.duration") > 0
    # A streamed answer was heard chunk by chunk, so its player waits to replay it: play it here.
    audio.evaluate("a => a.played.length > 0 || a.play()")
    audio.page.wait_for_function("a => a.played.length > 0 && a.currentTime > 0", arg=audio.element_handle())


def _tool_span(turn: Locator, name: str = "execute_tool get_date_time") -> Locator:
    """The timeline row of the first `name` span, opened to show its details."""
    span = turn.locator(f"[data-testid='span'][data-span-name='{name}']").first
    expect(span).to_be_visible(timeout=TURN_TIMEOUT_MS)
    span.locator("summary").click()
    expect(span.get_by_test_id("span-details")).to_be_visible()
    return span


def _hold_to_talk(page: Page, seconds: float) -> None:
    """Press the push-to-talk button, hold it while the microphone plays, then release it."""
    page.get_by_test_id("ptt").hover()
    page.mouse.down()
    expect(page.get_by_test_id("recording")).to_be_visible()
    time.sleep(seconds)  # holding the button is the user's part: the clip has to play into it
    page.mouse.up()
    expect(page.get_by_test_id("recording")).to_be_hidden()


_RECORD_AUDIO_STARTS = """() => {
    window.audioStarts = [];
    const start = AudioBufferSourceNode.prototype.start;
    AudioBufferSourceNode.prototype.start = function (when = 0, ...rest) {
        window.audioStarts.push({when, duration: this.buffer.duration, now: this.context.currentTime});
        window.audioContext = this.context;
        return start.call(this, when, ...rest);
    };
}"""


def _screenshot(page: Page, name: str, tmp_path: Path) -> None:
    """The whole page, in a viewport as tall as the page so the sticky composer lands at the bottom."""
    width = (page.viewport_size or {"width": 1100})["width"]
    page.set_viewport_size({"width": width, "height": page.evaluate("document.documentElement.scrollHeight")})
    ARTIFACTS.mkdir(exist_ok=True)
    for folder in (ARTIFACTS, tmp_path):
        path = folder / name
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0


# ---- served as it is ---------------------------------------------------------------------


def test_page_and_assets_are_served(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/")
        script = client.get("/static/app.js")
        module = client.get("/static/js/dom.js")  # app.js imports the page's modules from js/
        style = client.get("/static/style.css")
        unknown = client.get("/static/nothing.js")
        outside = [client.get(path) for path in ("/static/js/%2e%2e/%2e%2e/app.py", "/static/%2fetc%2fpasswd")]
        schema = client.get("/openapi.json").json()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>voicegraph playground</title>" in page.text
    assert '<script type="module" src="/static/app.js">' in page.text
    for asset in (script, module):
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert unknown.status_code == 404 and [r.status_code for r in outside] == [404, 404]
    assert "/" not in schema["paths"] and not any(p.startswith("/static") for p in schema["paths"])
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), "the page must load nothing from elsewhere"


# ---- in the browser ----------------------------------------------------------------------


def test_text_turn_shows_answer_citations_audio_and_timeline(page: Page, tmp_path: Path) -> None:
    session = page.get_by_test_id("session-id").inner_text()
    assert re.fullmatch(r"web-[0-9a-f]{12}", session) and page.url.endswith(f"#session={session}")
    held: list[Route] = []

    def hold(route: Route) -> None:  # the turn waits, so the test sees the page while it runs
        held.append(route)

    page.route("**/turns", hold)
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("text-input").press("Enter")
    expect(page.get_by_test_id("status")).to_have_text("thinking…")
    for control in ("text-input", "send", "ptt", "file-input", "new-session"):
        expect(page.get_by_test_id(control)).to_be_disabled()
    while not held:
        page.wait_for_timeout(20)
    held[0].continue_()
    page.unroute("**/turns")
    turn = _last_turn(page, 1)
    expect(page.get_by_test_id("status")).to_be_hidden()
    expect(page.get_by_test_id("text-input")).to_be_enabled()
    expect(page.get_by_test_id("text-input")).to_have_value("")

    expect(turn.get_by_test_id("transcript")).to_have_text(QUESTION)
    expect(turn.get_by_test_id("how-said")).to_have_count(0)  # typed: nothing was heard
    expect(turn.get_by_test_id("answer")).to_contain_text("The Tokyo office opens at nine [1].")
    expect(turn.get_by_test_id("answer")).to_contain_text("in Tokyo")
    marker = turn.get_by_test_id("cite-marker")
    expect(marker).to_have_text("[1]")
    citation = turn.get_by_test_id("citations").get_by_test_id("citation").first
    expect(citation).to_contain_text("office.md")
    expect(citation).to_contain_text("opens at nine")
    assert marker.get_attribute("href") == "#" + (citation.get_attribute("id") or "")
    expect(turn.get_by_test_id("voice")).to_have_text("default voice")
    expect(turn.get_by_test_id("timings")).to_contain_text("total")
    expect(turn.get_by_test_id("tool-call")).to_have_count(3)
    _assert_audio_plays(turn)

    timeline = turn.get_by_test_id("timeline")
    names = timeline.get_by_test_id("span").evaluate_all("rows => rows.map(r => r.dataset.spanName)")
    assert names[0] == "turn" and {"listen", "plan", "speak", "execute_tool knowledge_search"} <= set(names)
    tokyo = _tool_span(turn)
    details = tokyo.get_by_test_id("span-details")
    expect(details.get_by_test_id("tool-arguments")).to_contain_text('"timezone": "Asia/Tokyo"')
    expect(details.get_by_test_id("tool-result")).to_contain_text("in Tokyo")
    expect(details).to_contain_text(re.compile(r"lasts \d+(\.\d)? ms"))
    expect(tokyo.get_by_test_id("span-duration")).to_have_text(re.compile(r"^[\d,.]+ ms$"))
    failed = timeline.locator("[data-testid='span'][data-status='error']")
    expect(failed).to_have_count(1)
    expect(failed).to_have_attribute("data-span-name", "execute_tool get_date_time")
    expect(failed).to_have_class(re.compile(r"\bfailed\b"))
    expect(failed.locator(".badge")).to_have_text("error")
    _screenshot(page, "playground.png", tmp_path)


def test_a_turn_streams_into_a_live_card_and_speaks_as_it_goes(page: Page, voices: GatedVoices, tmp_path: Path) -> None:
    """While the turn runs, a live card shows what is heard, the tool calls and the answer as
    they come, and the first sentence's speech plays before the last one is even said; then
    the turn's card replaces it. The last sentence's speech is held (GatedVoices) so the test
    sees the turn mid-stream for certain, however fast the scripted planner is."""
    page.evaluate(_RECORD_AUDIO_STARTS)  # when and for how long each chunk was set to play
    voices.gate.clear()
    try:
        page.get_by_test_id("text-input").fill(QUESTION)
        page.get_by_test_id("text-input").press("Enter")
        live = page.get_by_test_id("pending-turn")
        expect(live).to_be_visible(timeout=TURN_TIMEOUT_MS)
        expect(live.get_by_test_id("transcript")).to_have_text(QUESTION)
        expect(live.get_by_test_id("tool-call")).to_have_count(3)
        expect(live.locator("[data-testid='tool-call'][data-status='ok']")).to_have_count(2)
        expect(live.locator("[data-testid='tool-call'][data-status='error']")).to_have_count(1)
        expect(live.get_by_test_id("answer")).to_contain_text(
            re.compile(r"^It is .* in Tokyo\. .*opens at nine \[1\]\.$")
        )
        # the line said while the tools ran, the first sentence (its first clause on its own,
        # "It is 10:02 PM on Friday,"), and no more yet
        expect(live).to_have_attribute("data-audio-chunks", "3")
        expect(page.get_by_test_id("turn")).to_have_count(0)
        expect(page.get_by_test_id("status")).to_have_text("thinking…")
        _screenshot(page, "playground-streaming.png", tmp_path)
    finally:
        voices.gate.set()

    turn = _last_turn(page, 1)
    expect(live).to_have_count(0)
    expect(turn.get_by_test_id("answer")).to_contain_text(LAST_SENTENCE)
    expect(turn.get_by_test_id("tool-call")).to_have_count(3)
    expect(turn).to_have_attribute("data-audio-chunks", "4")  # counted on the turn's card from here on
    audio = turn.get_by_test_id("audio")
    expect(audio).to_have_count(1)  # the whole answer, to hear again, but not played twice
    assert audio.evaluate("a => a.paused && a.played.length === 0")

    starts = page.evaluate("window.audioStarts")
    assert len(starts) == 4
    for first, second in itertools.pairwise(starts):
        first_ends = first["when"] + first["duration"]
        assert second["when"] >= first_ends - 1e-6, "the chunks overlap"
        if second["now"] < first_ends:  # it came while the first still played: it starts right where that ends
            assert second["when"] == pytest.approx(first_ends, abs=1e-6)
    clock = page.evaluate("window.audioContext.currentTime")
    page.wait_for_timeout(300)
    assert page.evaluate("window.audioContext.state") == "running"
    assert page.evaluate("window.audioContext.currentTime") > clock + 0.1  # it plays, in real time
    expect(turn.locator("[data-testid='span'][data-span-name='speak']")).to_have_count(1, timeout=TURN_TIMEOUT_MS)


def test_a_server_that_answers_json_is_waited_for_as_before(page: Page) -> None:
    """A server that does not stream answers the turn as JSON: the page shows it when it comes."""
    asked: list[str] = []

    def without_streaming(route: Route) -> None:  # as a server from before streaming answers
        headers = route.request.all_headers()
        asked.append(headers.get("accept", ""))
        route.fulfill(response=route.fetch(headers={**headers, "accept": "application/json"}))

    page.route("**/turns", without_streaming)
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("text-input").press("Enter")
    turn = _last_turn(page, 1)
    assert asked == ["text/event-stream"]
    expect(page.get_by_test_id("pending-turn")).to_have_count(0)
    expect(turn.get_by_test_id("answer")).to_contain_text(LAST_SENTENCE)
    assert turn.get_attribute("data-audio-chunks") is None
    audio = turn.get_by_test_id("audio")
    expect(audio).to_have_count(1)
    page.wait_for_function("a => a.played.length > 0", arg=audio.element_handle())  # it autoplays, as before
    _tool_span(turn)


def test_file_upload_turn(page: Page, question_wav: bytes) -> None:
    expect(page.get_by_test_id("file-send")).to_be_disabled()
    page.get_by_test_id("file-input").set_input_files(
        {"name": "question.wav", "mimeType": "audio/wav", "buffer": question_wav}
    )
    page.get_by_test_id("file-send").click()
    turn = _last_turn(page, 1)
    expect(turn.get_by_test_id("transcript")).to_contain_text("Tokyo")
    expect(turn).to_contain_text("file: question.wav")
    expect(turn.get_by_test_id("how-said")).to_contain_text(re.compile(r"pitch \d+ Hz · [\d.]+ words/s · -\d+ dBFS"))
    _assert_audio_plays(turn)
    expect(turn.locator("[data-testid='span'][data-span-name='asr']")).to_have_count(1)


def test_push_to_talk_records_the_microphone(page: Page, question_wav: bytes) -> None:
    _hold_to_talk(page, wav_seconds(question_wav) + 0.8)
    turn = _last_turn(page, 1)
    expect(turn.get_by_test_id("transcript")).to_contain_text("Tokyo")
    expect(turn).to_contain_text("spoken")
    _assert_audio_plays(turn)
    _tool_span(turn)


def test_space_key_pushes_to_talk_too(page: Page, question_wav: bytes) -> None:
    button = page.get_by_test_id("ptt")
    button.focus()
    page.keyboard.down("Space")
    expect(page.get_by_test_id("recording")).to_be_visible()
    time.sleep(wav_seconds(question_wav) + 0.8)  # held while the clip plays
    page.keyboard.up("Space")
    turn = _last_turn(page, 1)
    expect(turn.get_by_test_id("transcript")).to_contain_text("Tokyo")


def test_a_tap_too_short_to_be_speech_is_ignored_with_a_hint(page: Page) -> None:
    page.get_by_test_id("ptt").click()
    expect(page.get_by_test_id("hint")).to_contain_text("Too short")
    expect(page.get_by_test_id("recording")).to_be_hidden()
    expect(page.get_by_test_id("ptt")).to_be_enabled()
    expect(page.get_by_test_id("turn")).to_have_count(0)


def test_server_errors_are_shown(page: Page) -> None:
    page.get_by_test_id("api-key").fill("not-the-key")
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("send").click()
    error = page.get_by_test_id("error")
    expect(error).to_have_text("Error 401: the API key is not valid")
    expect(page.get_by_test_id("text-input")).to_have_value(QUESTION)  # kept, to send again

    page.get_by_test_id("api-key").fill(KEY)
    # Longer than the server takes (the page's maxlength stops typing there, not a script).
    page.get_by_test_id("text-input").evaluate("i => { i.removeAttribute('maxlength'); i.value = 'x'.repeat(5000); }")
    page.get_by_test_id("send").click()
    expect(error).to_contain_text("Error 422: text")
    expect(page.get_by_test_id("turn")).to_have_count(0)

    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("send").click()
    _last_turn(page, 1)
    expect(error).to_be_hidden()


def test_a_failed_turn_shows_why_in_its_timeline(page: Page) -> None:
    page.get_by_test_id("text-input").fill(f"Pretend there is a {OUTAGE}.")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("error")).to_contain_text("Error 503")  # an `error` event, mid-stream
    expect(page.get_by_test_id("pending-turn")).to_have_count(0)
    failed = page.get_by_test_id("failed-turn")
    expect(failed).to_have_count(1, timeout=TURN_TIMEOUT_MS)
    expect(failed.get_by_test_id("failure")).to_contain_text("the planner server is unreachable")
    plan = failed.locator('[data-testid="span"][data-span-name="plan"]')
    expect(plan).to_have_count(1)
    expect(plan).to_have_class(re.compile(r"\bfailed\b"))
    expect(page.get_by_test_id("turn")).to_have_count(0)  # nothing was kept

    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("send").click()
    expect(_last_turn(page, 1)).to_have_attribute("data-turn", "1")  # the session is as it was
    expect(failed).to_have_count(1)


def test_the_chosen_voice_is_shown_with_its_description(page: Page, base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        voices = {v["id"]: v["description"] for v in client.get("/v1/voices").json()}
    deep = f"piper:joe:deep — {voices['piper:joe:deep']}"
    select = page.get_by_test_id("voice-select")
    expect(select.locator("option[value='piper:joe:deep']")).to_have_text("Joe, deep")
    select.select_option("piper:joe:deep")
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("text-input").press("Enter")
    expect(_last_turn(page, 1).get_by_test_id("voice")).to_have_text(deep)
    expect(page.get_by_test_id("current-voice")).to_have_text(deep)

    select.select_option("keep")  # the session keeps its voice
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("text-input").press("Enter")
    expect(_last_turn(page, 2).get_by_test_id("voice")).to_have_text(deep)

    select.select_option("")  # back to the default
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("text-input").press("Enter")
    expect(_last_turn(page, 3).get_by_test_id("voice")).to_have_text("default voice")
    expect(page.get_by_test_id("current-voice")).to_have_text("default voice")


def test_reload_shows_the_session_so_far_and_new_session_starts_afresh(page: Page) -> None:
    page.get_by_test_id("text-input").fill(QUESTION)
    page.get_by_test_id("text-input").press("Enter")
    _last_turn(page, 1)
    session = page.get_by_test_id("session-id").inner_text()

    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.get_by_test_id("session-id")).to_have_text(session)
    turn = _last_turn(page, 1)
    expect(turn.get_by_test_id("answer")).to_contain_text("opens at nine [1]")
    expect(turn.get_by_test_id("citations")).to_contain_text("office.md")
    expect(turn.get_by_test_id("audio")).to_have_count(0)  # a kept turn has no audio
    _tool_span(turn)

    page.get_by_test_id("new-session").click()
    expect(page.get_by_test_id("session-id")).not_to_have_text(session)
    expect(page.get_by_test_id("turn")).to_have_count(0)


def test_answers_are_text_not_html(page: Page) -> None:
    """Server text goes in as text: markup in a question is shown, never run or parsed."""
    attack = "<img src=x onerror=\"document.body.dataset.pwned='1'\"> <b>bold</b>"
    page.get_by_test_id("text-input").fill(attack)
    page.get_by_test_id("text-input").press("Enter")
    turn = _last_turn(page, 1)
    expect(turn.get_by_test_id("transcript")).to_have_text(attack)
    assert turn.locator("img, b").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None


# ---- the real thing ----------------------------------------------------------------------


@dataclass(frozen=True)
class RealService:
    url: str
    data_dir: Path
    otlp: OtlpReceiver


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[RealService]:
    data = tmp_path_factory.mktemp("real-data")
    with running_otlp_receiver() as otlp:
        settings = Settings(data_dir=data, model_dir=data_dir, otlp_endpoint=otlp.url)
        with running_server(create_app(settings)) as url:
            yield RealService(url, data, otlp)


def _same_trace_from_api_cli_and_otlp(real: RealService, session: str) -> None:
    """The turn's trace, with its GenAI attributes, as the API, `voicegraph trace` and OTLP give it."""
    [trace] = httpx.get(f"{real.url}/v1/sessions/{session}/traces", timeout=30).json()["traces"]
    spans = {span["span_id"]: span for span in iter_spans(trace["root"])}
    [tool] = [span for span in spans.values() if span["name"] == "execute_tool get_date_time"]
    assert tool["attributes"]["gen_ai.tool.name"] == "get_date_time"
    assert "Tokyo" in tool["attributes"]["gen_ai.tool.call.arguments"]
    assert trace["root"]["attributes"]["gen_ai.conversation.id"] == session

    env = {**os.environ, "VOICEGRAPH_DATA_DIR": str(real.data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "trace", session, "--json"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["traces"] == [trace]
    tree = subprocess.run([sys.executable, "-m", "api.cli", "trace", session], capture_output=True, text=True, env=env)
    assert re.search(r"execute_tool get_date_time\s+[\d.]+ ms", tree.stdout), tree.stdout

    assert real.otlp.wait_for(lambda r: len(r.of_trace(trace["trace_id"])) == len(spans)), real.otlp.spans
    for received in real.otlp.of_trace(trace["trace_id"]):
        assert received.name == spans[received.span_id]["name"]
        assert received.attributes == spans[received.span_id]["attributes"]


@pytest.mark.real
def test_a_new_user_asks_by_voice_and_sees_the_answer_and_its_timeline(
    browser: Browser, real: RealService, question_wav: bytes, tmp_path: Path
) -> None:
    """The issue's "done when": ask by voice in the playground, hear the answer, see the tool
    call with its arguments and duration; the same trace comes from the API, the CLI and OTLP."""
    with open_page(browser, real.url) as page:
        expect(page.get_by_test_id("turn")).to_have_count(0)
        _hold_to_talk(page, wav_seconds(question_wav) + 1.0)
        expect(page.get_by_test_id("status")).to_have_text("thinking…")
        turn = _last_turn(page, 1, timeout_ms=180_000)
        expect(page.get_by_test_id("error")).to_be_hidden()
        expect(turn.get_by_test_id("transcript")).to_contain_text("Tokyo")
        expect(turn.get_by_test_id("answer")).not_to_be_empty()
        expect(turn).to_have_attribute("data-audio-chunks", re.compile(r"^[1-9]\d*$"))  # spoken as it streamed
        _assert_audio_plays(turn)
        span = _tool_span(turn)
        details = span.get_by_test_id("span-details")
        expect(details.get_by_test_id("tool-arguments")).to_contain_text("Tokyo")
        expect(details).to_contain_text(re.compile(r"lasts \d+(\.\d)? ms"))
        expect(span.get_by_test_id("span-duration")).to_have_text(re.compile(r"^[\d,.]+ ms$"))
        _screenshot(page, "playground-real.png", tmp_path)
        session = page.get_by_test_id("session-id").inner_text().strip()
    _same_trace_from_api_cli_and_otlp(real, session)
