"""The issue's "done when" for timbre search, with the real planner (slow on CPU).

"Answer me in a deep, slow voice with a Scottish accent" makes the model call
audio_search; that reply and the next turn's are spoken in the chosen voice (the reply's
speaker embedding is nearer to the voice's sample than to the default voice's), and the
session reports the voice.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from api.app import create_app
from api.settings import Settings
from model.speaker import SpeakerEncoder
from model.voices import DEFAULT_VOICE_ID
from tests.http_server import running_server

pytestmark = pytest.mark.real


def _embed(encoder: SpeakerEncoder, wav: bytes) -> np.ndarray:
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return encoder.embed(audio, int(rate))


def _reply_audio(body: dict[str, Any]) -> bytes:
    assert body.get("audio_wav_b64"), body
    return base64.b64decode(body["audio_wav_b64"])


def test_asked_for_voice_is_chosen_spoken_and_kept(tmp_path: Path, data_dir: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", model_dir=data_dir, web_search="off")
    encoder = SpeakerEncoder()
    with running_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=900) as client:
        first = client.post(
            "/v1/sessions/scot/turns", json={"text": "Answer me in a deep, slow voice with a Scottish accent"}
        )
        assert first.status_code == 200, first.text
        body = first.json()
        assert "audio_search" in [c["name"] for c in body["tool_calls"]], body["tool_calls"]
        voice = body["voice"]
        assert voice and voice.startswith("espeak:en-gb-scotland"), body
        second = client.post("/v1/sessions/scot/turns", json={"text": "What is the capital of France?"})
        assert second.status_code == 200, second.text
        assert second.json()["voice"] == voice
        session = client.get("/v1/sessions/scot").json()
        samples = {v: client.get("/v1/voices/sample", params={"voice": v}) for v in (voice, DEFAULT_VOICE_ID)}
    assert all(r.status_code == 200 for r in samples.values())
    chosen, default = (_embed(encoder, samples[v].content) for v in (voice, DEFAULT_VOICE_ID))
    for reply in (body, second.json()):
        heard = _embed(encoder, _reply_audio(reply))
        assert float(heard @ chosen) > float(heard @ default), reply["answer"]
    assert session["voice"] == voice, session
