"""/v1/voices, the turn's `voice` option and `voicegraph voices` on a real server and library.

The planner is scripted (the real one is in test_voice_e2e_real.py); Chroma, resemblyzer,
Piper and espeak-ng are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner, call, reply
from tests.http_server import running_server
from tests.speech import espeak_wav

SCOTTISH = "espeak:en-gb-scotland+m3:deep-slow"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    planner = ScriptedPlanner(
        [call("audio_search", description="deep slow Scottish accent"), reply("Och aye, hello."), reply("Paris.")],
        fallback="Fine.",
    )
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), web_search="off")
    with running_server(create_app(settings, lambda s: open_services(s, planner=planner))) as url:
        yield url


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=120)


def test_audio_search_sets_the_voice_for_this_and_later_turns(base_url: str) -> None:
    with _client(base_url) as client:
        first = client.post("/v1/sessions/v1/turns", json={"text": "Speak Scottish"}).json()
        second = client.post("/v1/sessions/v1/turns", json={"text": "Capital of France?"}).json()
        session = client.get("/v1/sessions/v1").json()
    assert [c["name"] for c in first["tool_calls"]] == ["audio_search"] and first["voice"] == SCOTTISH
    assert first["audio_wav_b64"] and second["voice"] == SCOTTISH and session["voice"] == SCOTTISH


def test_turn_voice_option(base_url: str) -> None:
    with _client(base_url) as client:
        chosen = client.post("/v1/sessions/v2/turns", json={"text": "hi", "voice": "piper:joe:deep", "speak": False})
        kept = client.post("/v1/sessions/v2/turns", json={"text": "hi", "speak": False})
        reset = client.post("/v1/sessions/v2/turns", json={"text": "hi", "voice": "", "speak": False})
        bad = client.post("/v1/sessions/v2/turns", json={"text": "hi", "voice": "festival:kal"})
        spoken = client.post(
            "/v1/sessions/v3/turns",
            files={"audio": ("q.wav", espeak_wav("Hello there, how are you today?"), "audio/wav")},
            data={"voice": "espeak:en-us+m4", "speak": "false"},
        )
    assert chosen.json()["voice"] == "piper:joe:deep" and kept.json()["voice"] == "piper:joe:deep"
    assert reset.json()["voice"] is None
    assert bad.status_code == 422 and "voice" in bad.json()["detail"]
    assert spoken.status_code == 200 and spoken.json()["voice"] == "espeak:en-us+m4", spoken.text


def test_list_search_add_and_hear_voices(base_url: str) -> None:
    clip = espeak_wav("This is my own voice, a little sample of how I speak to people.")
    with _client(base_url) as client:
        voices = client.get("/v1/voices").json()
        found = client.get("/v1/voices", params={"q": "a whispering voice"}).json()
        added = client.post(
            "/v1/voices",
            files={"sample": ("me.wav", clip, "audio/wav")},
            data={"description": "my voice", "name": "Me"},
        )
        by_example = client.post("/v1/voices/search", files={"sample": ("me.wav", clip, "audio/wav")}).json()
        sample = client.get("/v1/voices/sample", params={"voice": SCOTTISH})
        missing = client.get("/v1/voices/sample", params={"voice": "espeak:xx"})
        no_clip = client.post("/v1/voices", data={"description": "nothing"})
        after = client.get("/v1/voices").json()
    assert SCOTTISH in [v["id"] for v in voices] and all(v["builtin"] for v in voices)
    assert found[0]["id"] == "espeak:en+whisper" and found[0]["score"] > 0
    assert added.status_code == 201, added.text
    mine = added.json()
    assert mine["name"] == "Me" and not mine["builtin"] and mine["engine"] == "espeak"  # espeak-ng clip: espeak timbre
    assert mine["id"] in [v["id"] for v in after]
    assert by_example[0]["engine"] == "espeak"
    assert sample.status_code == 200 and sample.content[:4] == b"RIFF"
    assert missing.status_code == 404 and no_clip.status_code in (400, 415)


def test_voices_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VOICEGRAPH_CHROMA_URL", raising=False)
    runner = CliRunner()
    listed = runner.invoke(app, ["voices", "list"])
    assert listed.exit_code == 0 and SCOTTISH in listed.output
    found = runner.invoke(app, ["voices", "search", "deep slow Scottish accent"])
    assert found.exit_code == 0 and found.output.split()[1] == SCOTTISH
    clip = tmp_path / "me.wav"
    clip.write_bytes(espeak_wav("This is my own voice, a little sample of how I speak to people."))
    added = runner.invoke(app, ["voices", "add", str(clip), "--description", "my voice", "--tenant", "acme"])
    assert added.exit_code == 0 and "(yours)" in added.output, added.output
    assert "(yours)" in runner.invoke(app, ["voices", "list", "--tenant", "acme"]).output
    assert runner.invoke(app, ["voices", "search"]).exit_code == 2
